package tmpl

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Template is a parsed template, rewritten to check its budget. It is rendered once: Execute sets the
// functions of that one render.
type Template struct {
	name   string
	t      *template.Template
	funcs  template.FuncMap // the functions it was parsed with, besides text/template's own
	called map[string]bool  // the names of the functions its actions call
}

// Parse parses text as the template name, with funcs (nil for text/template's own functions only) and a
// missing map key an error, and rewrites it as the package comment says. Its errors are text/template's.
func Parse(name, text string, funcs template.FuncMap) (*Template, error) {
	t := template.New(name).Option("missingkey=error").Funcs(funcs).Funcs(declared)
	if _, err := t.Parse(text); err != nil {
		return nil, err
	}
	called := map[string]bool{}
	for _, tt := range t.Templates() {
		if tt.Tree != nil && tt.Root != nil {
			if err := guard(tt.Tree, called); err != nil {
				return nil, err
			}
		}
	}
	return &Template{name: name, t: t, funcs: funcs, called: called}, nil
}

// declared names the guards for parsing: a template may call them, and Execute gives them their bodies.
var declared = template.FuncMap{
	tickFunc:  func() string { return "" },
	rangeFunc: func(v any) any { return v },
	printFunc: func(v any) any { return v },
	passFunc:  func(v any) any { return v },
}

// Templates returns the templates of the set, {{define}}d ones included, for callers that read their trees.
func (t *Template) Templates() []*template.Template {
	return t.t.Templates()
}

// workers are the render slots: a render holds one while its goroutine runs.
var workers = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// grace is how long Execute waits, once the limit has passed, for the render to stop at its next check and
// say where it was.
const grace = 100 * time.Millisecond

// Execute renders t on data under lim, and returns the text. A limit passed is a *LimitError; any other
// failure is text/template's error. ctx cancels the render.
func (t *Template) Execute(ctx context.Context, data any, lim Limits) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.Time)
	defer cancel()
	b := newBudget(lim)
	select {
	case workers <- struct{}{}:
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return "", &LimitError{Template: t.name, Msg: "every template worker stayed busy for " + lim.Time.String(), busy: true}
		}
		return "", &LimitError{Template: t.name, Msg: "rendering was canceled"}
	}
	defer context.AfterFunc(ctx, func() { b.stop(context.Cause(ctx)) })()
	t.t.Funcs(t.funcsFor(b))

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-workers }()
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("rendering %s: %v", t.name, r)}
			}
		}()
		w := &limitWriter{b: b}
		err := t.t.Execute(w, data)
		done <- result{out: w.buf.String(), err: err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		b.stop(context.Cause(ctx))
		select {
		case r = <-done:
		case <-time.After(grace):
			r.err = b.stopErr()
		}
	}
	if r.err != nil {
		return "", t.limitError(r.err)
	}
	return r.out, nil
}

// funcsFor returns the functions of one render: the guards, and every function the template calls, bounded
// where bounded has it, each wrapped to check b.
func (t *Template) funcsFor(b *budget) template.FuncMap {
	fm := template.FuncMap{}
	for name, fn := range b.guards() {
		fm[name] = fn
	}
	for name := range t.called {
		if _, guard := fm[name]; guard {
			continue
		}
		fn, ok := t.funcs[name]
		if mk, isBounded := bounded[name]; isBounded && (ok || builtin[name]) {
			fn, ok = mk(b), true
		}
		if ok {
			fm[name] = b.wrap(name, fn)
		}
	}
	return fm
}

// builtin names text/template's functions bounded replaces; its others (and, or, not, len, index, slice,
// eq, ...) make no value larger than their arguments and stay as they are.
var builtin = map[string]bool{"print": true, "printf": true, "println": true, "html": true, "js": true, "urlquery": true}

// maxRegexWork bounds a regular expression's length times the length of the text it searches: Go's regexp
// takes time in proportion to both.
const maxRegexWork = 1 << 26

// wrap returns fn, which must be a function, checking b before each call, measuring the arguments, and
// charging its result.
func (b *budget) wrap(name string, fn any) any {
	v := reflect.ValueOf(fn)
	typ := v.Type()
	regex := strings.HasPrefix(name, "regex") || strings.HasPrefix(name, "mustRegex")
	return reflect.MakeFunc(typ, func(args []reflect.Value) []reflect.Value {
		b.check()
		total := 0
		for _, a := range args {
			total += b.size(a, b.lim.Output-total, "the arguments of "+name)
		}
		if regex && len(args) >= 2 && args[0].Kind() == reflect.String && args[1].Kind() == reflect.String &&
			int64(args[0].Len())*int64(args[1].Len()) > maxRegexWork {
			panic(limitf("%s: a pattern of %d bytes over a text of %d bytes is too much work", name, args[0].Len(), args[1].Len()))
		}
		var out []reflect.Value
		if typ.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) == 2 && !out[1].IsNil() {
			return out
		}
		if len(out) > 0 {
			b.charge(out[0], "the value "+name+" made")
		}
		return out
	}).Interface()
}

// limitWriter keeps what a render writes, failing once it would pass the output limit or the render must stop.
type limitWriter struct {
	b   *budget
	buf strings.Builder
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // a tick's empty text: the tick itself checks, and its error says where it was
	}
	if err := w.b.stopErr(); err != nil {
		return 0, err
	}
	if w.buf.Len()+len(p) > w.b.lim.Output {
		return 0, limitf("the rendered text is over the %s limit", Size(w.b.lim.Output))
	}
	return w.buf.Write(p)
}

// limitError returns err as a *LimitError of t, with the line text/template gave it, when a limit caused it,
// and err itself otherwise.
func (t *Template) limitError(err error) error {
	var le *LimitError
	if !errors.As(err, &le) {
		return err
	}
	out := *le
	out.Template = t.name
	// text/template's message begins "template: NAME:LINE:COL: " when it knows where it was.
	if rest, ok := strings.CutPrefix(err.Error(), "template: "+t.name+":"); ok {
		if line, _, ok := strings.Cut(rest, ":"); ok {
			out.Line, _ = strconv.Atoi(line)
		}
	}
	return &out
}
