package tmpl

import (
	"reflect"
	"text/template/parse"
)

// The functions Parse inserts into the parse tree. A template may name them too: they do nothing but check.
const (
	tickFunc  = "kilnTick"  // at the start of every range body and template body: checks the budget
	rangeFunc = "kilnRange" // at the end of every range's pipeline: refuses a range over too many items
	printFunc = "kilnPrint" // at the end of every action that prints: measures the value printed
)

// guard rewrites tree as the package comment says, and adds the name of every function it calls to called.
func guard(tree *parse.Tree, called map[string]bool) {
	tree.Root.Nodes = append([]parse.Node{tick(tree, tree.Root.Position())}, tree.Root.Nodes...)
	guardList(tree, tree.Root, called)
}

func guardList(tree *parse.Tree, list *parse.ListNode, called map[string]bool) {
	if list == nil {
		return
	}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			idents(n.Pipe, called)
			if len(n.Pipe.Decl) == 0 {
				n.Pipe.Cmds = append(n.Pipe.Cmds, call(tree, n.Position(), printFunc))
			}
		case *parse.IfNode:
			guardBranch(tree, &n.BranchNode, called)
		case *parse.WithNode:
			guardBranch(tree, &n.BranchNode, called)
		case *parse.RangeNode:
			guardBranch(tree, &n.BranchNode, called)
			n.Pipe.Cmds = append(n.Pipe.Cmds, call(tree, n.Position(), rangeFunc))
			n.List.Nodes = append([]parse.Node{tick(tree, n.Position())}, n.List.Nodes...)
		case *parse.TemplateNode:
			idents(n.Pipe, called)
		}
	}
}

func guardBranch(tree *parse.Tree, b *parse.BranchNode, called map[string]bool) {
	idents(b.Pipe, called)
	guardList(tree, b.List, called)
	guardList(tree, b.ElseList, called)
}

// idents adds the name of every function pipe calls to called, in its subexpressions too.
func idents(pipe *parse.PipeNode, called map[string]bool) {
	if pipe == nil {
		return
	}
	for _, c := range pipe.Cmds {
		for _, a := range c.Args {
			switch a := a.(type) {
			case *parse.IdentifierNode:
				called[a.Ident] = true
			case *parse.PipeNode:
				idents(a, called)
			case *parse.ChainNode:
				if p, ok := a.Node.(*parse.PipeNode); ok {
					idents(p, called)
				}
			}
		}
	}
}

// call returns the command that calls the function fn, at pos.
func call(tree *parse.Tree, pos parse.Pos, fn string) *parse.CommandNode {
	id := parse.NewIdentifier(fn).SetTree(tree).SetPos(pos)
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{id}}
}

// tick returns the action {{kilnTick}}, at pos; it prints nothing.
func tick(tree *parse.Tree, pos parse.Pos) *parse.ActionNode {
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{call(tree, pos, tickFunc)}}
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Pipe: pipe}
}

// guards returns the functions the rewritten tree calls, checking b.
func (b *budget) guards() map[string]any {
	return map[string]any{
		tickFunc: func() string {
			b.check()
			return ""
		},
		rangeFunc: func(v any) any {
			b.check()
			b.rangeable(reflect.ValueOf(v))
			return v
		},
		printFunc: func(v any) any {
			b.check()
			b.size(reflect.ValueOf(v), b.lim.Output, "a value printed")
			return v
		},
	}
}

// rangeable panics with a *LimitError when a range over v would make more than Limits.Range iterations.
func (b *budget) rangeable(v reflect.Value) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	n := int64(0)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n = int64(min(v.Uint(), uint64(b.lim.Range)+1))
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Chan:
		n = int64(v.Len())
	}
	if n > int64(b.lim.Range) {
		panic(limitf("range over %d items: a range may make at most %d iterations", n, b.lim.Range))
	}
}
