package taskfile

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"text/template/parse"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// funcs are the functions templates can call: Sprig's, as in ACR, less those tmpl.Dropped lists: the ones that
// reach outside the file (the environment of the Kiln process, its tokens among it, and DNS) and the ones that
// cost far more than a build file has use for (key generation, bcrypt). Kiln renders task files in its server,
// not in a throwaway agent as ACR does.
var funcs = tmpl.Sprig()

// secretPlaceholder is the value a secret has when there is none to give: in Check, and in Load for a secret
// that has no value, which is reported once the file is read.
const secretPlaceholder = "secret"

// secretRef is one place a template reads a secret: {{.Secrets.ID}}, {{$.Secrets.ID}} or
// {{index .Secrets "ID"}}.
type secretRef struct {
	id   string
	line int
}

// render executes text as a Go template on the loader's data, with missing keys an error, under
// tmpl.FileLimits, and remembers which secrets it read. Only those secrets are given to the template.
func (l *loader) render(text string) (string, error) {
	t, err := tmpl.Parse(l.name, text, funcs)
	if err != nil {
		return "", l.templateError(err)
	}
	secrets := map[string]string{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		var dynamic parse.Node
		walkSecrets(tt.Root, func(id string, n parse.Node) {
			if id == "" {
				if dynamic == nil {
					dynamic = n
				}
				return
			}
			l.refs = append(l.refs, secretRef{id: id, line: nodeLine(tt.Tree, n)})
			v, ok := l.data.Secrets[id]
			if l.check || !ok {
				v = secretPlaceholder
			}
			secrets[id] = v
		})
		if dynamic != nil {
			return "", &Error{File: l.name, Line: nodeLine(tt.Tree, dynamic), Msg: "{{" + dynamic.String() + "}}: " +
				"read a secret by its name written out, as {{.Secrets.NAME}} or {{index .Secrets \"NAME\"}}, " +
				"so that Kiln knows which secrets the file needs"}
		}
	}
	out, err := t.Execute(context.Background(), l.data.templateData(secrets), tmpl.FileLimits)
	if err != nil {
		var le *tmpl.LimitError
		if errors.As(err, &le) {
			if proto.ErrorCode(le) == proto.Unavailable {
				return "", le // no worker was free: not the file's fault, and retrying may work
			}
			return "", &Error{File: l.name, Line: le.Line, Msg: le.Msg}
		}
		return "", l.templateError(err)
	}
	return out, nil
}

// nodeLine returns the line of n in its template.
func nodeLine(tree *parse.Tree, n parse.Node) int {
	loc, _ := tree.ErrorContext(n)
	// loc is NAME:LINE:COL; the name may hold colons itself.
	parts := strings.Split(loc, ":")
	if len(parts) < 3 {
		return 0
	}
	line, _ := strconv.Atoi(parts[len(parts)-2])
	return line
}

// walkSecrets calls found for every secret n reads by a name written in the template, and with the id "" for
// every secret it reads by a name it computes ({{index .Secrets $name}}), which Kiln cannot know in advance.
func walkSecrets(n parse.Node, found func(id string, n parse.Node)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkSecrets(c, found)
		}
	case *parse.ActionNode:
		walkSecrets(n.Pipe, found)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkSecrets(c, found)
		}
	case *parse.CommandNode:
		if len(n.Args) >= 3 {
			if fn, ok := n.Args[0].(*parse.IdentifierNode); ok && fn.Ident == "index" && isSecrets(n.Args[1]) {
				if s, ok := n.Args[2].(*parse.StringNode); ok {
					found(s.Text, n)
				} else {
					found("", n)
				}
			}
		}
		for _, a := range n.Args {
			walkSecrets(a, found)
		}
	case *parse.FieldNode:
		if len(n.Ident) >= 2 && n.Ident[0] == "Secrets" {
			found(n.Ident[1], n)
		}
	case *parse.VariableNode:
		if len(n.Ident) >= 3 && n.Ident[0] == "$" && n.Ident[1] == "Secrets" {
			found(n.Ident[2], n)
		}
	case *parse.ChainNode:
		walkSecrets(n.Node, found)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, found)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, found)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, found)
	case *parse.TemplateNode:
		walkSecrets(n.Pipe, found)
	}
}

func walkBranch(b *parse.BranchNode, found func(id string, n parse.Node)) {
	walkSecrets(b.Pipe, found)
	walkSecrets(b.List, found)
	walkSecrets(b.ElseList, found)
}

// isSecrets reports whether n is .Secrets or $.Secrets itself.
func isSecrets(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.FieldNode:
		return len(n.Ident) == 1 && n.Ident[0] == "Secrets"
	case *parse.VariableNode:
		return len(n.Ident) == 2 && n.Ident[0] == "$" && n.Ident[1] == "Secrets"
	}
	return false
}

var (
	templateLoc  = regexp.MustCompile(`^(\d+)(?::\d+)?: (.*)$`)
	executingAt  = regexp.MustCompile(`^executing "[^"]*" at <(.*?)>: (.*)$`)
	missingEntry = regexp.MustCompile(`^map has no entry for key "(.*)"$`)
	notDefined   = regexp.MustCompile(`^function "(.*)" not defined$`)
	startedAt    = regexp.MustCompile(`started at .*:(\d+)$`)
)

// templateError turns an error of text/template, which reads "template: NAME:LINE:COL: ...", into an *Error
// with its line, and says what to do about a missing value, run variable or secret.
func (l *loader) templateError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "template: "+l.name+":")
	e := &Error{File: l.name, Msg: msg}
	m := templateLoc.FindStringSubmatch(msg)
	if m == nil {
		return e
	}
	e.Line, _ = strconv.Atoi(m[1])
	e.Msg = m[2]
	if s := startedAt.FindStringSubmatch(e.Msg); s != nil {
		e.Line, _ = strconv.Atoi(s[1]) // an unclosed action or block: where it began, not where the file ended
	}
	if f := notDefined.FindStringSubmatch(e.Msg); f != nil {
		if why, ok := tmpl.Dropped[f[1]]; ok {
			e.Msg = "function " + strconv.Quote(f[1]) + " not defined: Kiln leaves this one of Sprig's out, as " + why
		}
	}
	x := executingAt.FindStringSubmatch(e.Msg)
	if x == nil {
		return e
	}
	expr, why := x[1], x[2]
	e.Msg = "{{" + expr + "}}: " + why
	key := missingEntry.FindStringSubmatch(why)
	if key == nil {
		return e
	}
	switch {
	case strings.HasPrefix(expr, ".Values") || strings.HasPrefix(expr, "$.Values"):
		e.Msg = "{{" + expr + "}}: no value named " + strconv.Quote(key[1]) + ": give it with --set " + key[1] +
			"=VALUE or in the --values file, or read it as {{index .Values \"" + key[1] + "\" | default \"...\"}}, which may be missing"
	case strings.HasPrefix(expr, ".Run") || strings.HasPrefix(expr, "$.Run"):
		e.Msg = "{{" + expr + "}}: there is no run variable " + strconv.Quote(key[1]) + ": they are " + runVariableNames
	case strings.Contains(expr, "Secrets"):
		e.Msg = "{{" + expr + "}}: secret " + strconv.Quote(key[1]) + " must be named in the template " +
			"({{.Secrets.NAME}} or {{index .Secrets \"NAME\"}}) and declared under secrets:"
	}
	return e
}
