package tmpl

import (
	"fmt"
	"reflect"
	"text/template/parse"
)

// The functions Parse inserts into the parse tree. A template may name them too: they do nothing but check.
const (
	tickFunc  = "kilnTick"  // at the start of every range body and template body: checks the budget
	rangeFunc = "kilnRange" // at the end of every range's pipeline: refuses a range over too many items
	printFunc = "kilnPrint" // at the end of every action that prints: measures the value printed
	passFunc  = "kilnPass"  // at the end of every other pipeline: checks the budget
)

// maxPipeNodes bounds the arguments, calls and subexpressions of one pipeline ({{...}}, an if's, a range's):
// text/template's own comparisons (eq, lt, ...) take time in proportion to the strings they compare and are
// not wrapped, so a pipeline may make only so many of them before the next check.
const maxPipeNodes = 256

// guarder rewrites the trees of one template set.
type guarder struct {
	tree   *parse.Tree
	called map[string]bool // the names of the functions the pipelines call
}

// guard rewrites tree as the package comment says, and adds the name of every function it calls to called. It
// refuses a pipeline of more than maxPipeNodes nodes.
func guard(tree *parse.Tree, called map[string]bool) error {
	g := &guarder{tree: tree, called: called}
	tree.Root.Nodes = append([]parse.Node{tick(tree, tree.Root.Position())}, tree.Root.Nodes...)
	return g.list(tree.Root)
}

func (g *guarder) list(list *parse.ListNode) error {
	if list == nil {
		return nil
	}
	for _, n := range list.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.ActionNode:
			fn := printFunc
			if len(n.Pipe.Decl) > 0 {
				fn = passFunc
			}
			err = g.pipe(n.Pipe, fn)
		case *parse.IfNode:
			err = g.branch(&n.BranchNode, passFunc)
		case *parse.WithNode:
			err = g.branch(&n.BranchNode, passFunc)
		case *parse.RangeNode:
			err = g.branch(&n.BranchNode, rangeFunc)
			n.List.Nodes = append([]parse.Node{tick(g.tree, n.Position())}, n.List.Nodes...)
		case *parse.TemplateNode:
			if n.Pipe != nil {
				err = g.pipe(n.Pipe, passFunc)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *guarder) branch(b *parse.BranchNode, fn string) error {
	if err := g.pipe(b.Pipe, fn); err != nil {
		return err
	}
	if err := g.list(b.List); err != nil {
		return err
	}
	return g.list(b.ElseList)
}

// pipe counts pipe's nodes, notes the functions it calls, and appends the guard fn to it.
func (g *guarder) pipe(pipe *parse.PipeNode, fn string) error {
	if n := idents(pipe, g.called); n > maxPipeNodes {
		loc, _ := g.tree.ErrorContext(pipe)
		return fmt.Errorf("template: %s: a pipeline of %d arguments and calls is over the limit of %d", loc, n, maxPipeNodes)
	}
	pipe.Cmds = append(pipe.Cmds, call(g.tree, pipe.Position(), fn))
	return nil
}

// idents adds the name of every function pipe calls to called, in its subexpressions too, and returns how many
// nodes it has.
func idents(pipe *parse.PipeNode, called map[string]bool) int {
	if pipe == nil {
		return 0
	}
	n := 0
	for _, c := range pipe.Cmds {
		for _, a := range c.Args {
			n++
			switch a := a.(type) {
			case *parse.IdentifierNode:
				called[a.Ident] = true
			case *parse.PipeNode:
				n += idents(a, called)
			case *parse.ChainNode:
				if p, ok := a.Node.(*parse.PipeNode); ok {
					n += idents(p, called)
				}
			}
		}
	}
	return n
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
		passFunc: func(v any) any {
			b.check()
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
