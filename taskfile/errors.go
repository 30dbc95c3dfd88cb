package taskfile

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// Error is what is wrong with a task file and where: the file, the line and the field. Every error Load, Check
// and ParseCmd return is an *Error, and its kind is proto.Invalid: the same file fails the same way again, so
// an API answers 400 for it and a worker drops the run rather than retrying it.
type Error struct {
	File  string // the file's name as the caller gave it, such as acb.yaml; "" for ParseCmd
	Line  int    // 1-based, in the file as rendered; 0 when the problem is not on one line
	Field string // the field's path, such as steps[1].isolation or secrets[0].keyvault; "" when there is none
	Msg   string
}

// The most bytes of a field's path and of a message an error shows: a message may quote what the file or its
// templates made, and an answer must stay short whatever they made.
const (
	maxField = 200
	maxMsg   = 600
)

// Error returns the problem as FILE:LINE: FIELD: MSG, leaving out the parts that are empty and cutting a long
// field or message short.
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		if loc == "" {
			loc = "line " + strconv.Itoa(e.Line)
		} else {
			loc += ":" + strconv.Itoa(e.Line)
		}
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{loc, tmpl.Short(e.Field, maxField), tmpl.Short(e.Msg, maxMsg)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the error as a proto.Error of kind proto.Invalid, so that proto.ErrorCode finds its kind.
func (e *Error) Unwrap() error {
	return &proto.Error{Code: proto.Invalid, Message: e.Error()}
}

// errorf returns an *Error of the file being loaded, at node n (which may be nil) and field.
func (l *loader) errorf(n *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{File: l.name, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// yamlLine finds the line in a yaml.v3 error message: "yaml: line 7: mapping values are not allowed here".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns an error of the YAML parser into an *Error with the line it names, quoting that line of text
// as rendered: templates and aliases may have made it other than what the file says.
func (l *loader) yamlError(err error, text string) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		e := &Error{File: l.name, Line: line, Msg: "not valid YAML: " + m[2]}
		if lines := strings.Split(text, "\n"); line >= 1 && line <= len(lines) {
			rendered := strings.TrimSpace(lines[line-1])
			if r := []rune(rendered); len(r) > 120 {
				rendered = string(r[:117]) + "..."
			}
			if rendered != "" {
				e.Msg += " (the line reads: " + rendered + ")"
			}
		}
		return e
	}
	return &Error{File: l.name, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// redact replaces every secret value in the error's text, so that an error about a line that held a secret
// never shows the secret itself. Longer values go first, so that one value inside another is not half-replaced.
func redact(err error, secrets map[string]string) error {
	e, ok := err.(*Error)
	if !ok || len(secrets) == 0 {
		return err
	}
	values := make([]string, 0, len(secrets))
	for _, v := range secrets {
		if v != "" {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return err
	}
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	out := *e
	for _, v := range values {
		out.Msg = strings.ReplaceAll(out.Msg, v, "[secret]")
		out.Field = strings.ReplaceAll(out.Field, v, "[secret]")
	}
	return &out
}
