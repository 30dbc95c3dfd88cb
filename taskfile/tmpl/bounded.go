package tmpl

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// sprigFuncs is Sprig's own map, for the functions the bounded versions call once their size is known.
var sprigFuncs = sprig.TxtFuncMap()

// bounded makes, for one render, the versions of the functions whose output can be far larger than their
// input, or whose time far longer: each computes what it would make and refuses it over the budget before it
// makes it. They replace Sprig's and text/template's functions of the same names.
var bounded = map[string]func(b *budget) any{
	"repeat": func(b *budget) any {
		return func(count int, s string) (string, error) {
			if err := b.fits("repeat", int64(count), int64(len(s))); err != nil {
				return "", err
			}
			return strings.Repeat(s, count), nil
		}
	},
	"randAlphaNum": func(b *budget) any { return b.randString("randAlphaNum") },
	"randAlpha":    func(b *budget) any { return b.randString("randAlpha") },
	"randAscii":    func(b *budget) any { return b.randString("randAscii") },
	"randNumeric":  func(b *budget) any { return b.randString("randNumeric") },
	"until": func(b *budget) any {
		return func(count int) ([]int, error) {
			step := 1
			if count < 0 {
				step = -1
			}
			return b.untilStep(0, count, step)
		}
	},
	"untilStep": func(b *budget) any { return b.untilStep },
	"seq":       func(b *budget) any { return b.seq },
	"indent": func(b *budget) any {
		return func(spaces int, v string) (string, error) { return b.indent("indent", spaces, v) }
	},
	"nindent": func(b *budget) any {
		return func(spaces int, v string) (string, error) {
			s, err := b.indent("nindent", spaces, v)
			return "\n" + s, err
		}
	},
	"replace": func(b *budget) any {
		return func(old, new, src string) (string, error) {
			n := int64(strings.Count(src, old))
			if err := b.within("replace", int64(len(src))+n*int64(len(new)-len(old))); err != nil {
				return "", err
			}
			return strings.ReplaceAll(src, old, new), nil
		}
	},
	"wrap": func(b *budget) any {
		return func(l int, s string) (string, error) { return b.wrapLines("wrap", l, "\n", s) }
	},
	"wrapWith": func(b *budget) any {
		return func(l int, sep, s string) (string, error) { return b.wrapLines("wrapWith", l, sep, s) }
	},
	"join": func(b *budget) any {
		join := sprigFuncs["join"].(func(string, any) string)
		return func(sep string, v any) (string, error) {
			rv := reflect.ValueOf(v)
			n := int64(1)
			if k := rv.Kind(); k == reflect.Slice || k == reflect.Array {
				n = int64(rv.Len())
			}
			if err := b.within("join", int64(b.size(rv, b.lim.Output, "join's list"))+n*int64(len(sep))); err != nil {
				return "", err
			}
			return join(sep, v), nil
		}
	},
	"regexReplaceAll":            func(b *budget) any { return b.regexReplace("regexReplaceAll", false, false) },
	"mustRegexReplaceAll":        func(b *budget) any { return b.regexReplace("mustRegexReplaceAll", false, true) },
	"regexReplaceAllLiteral":     func(b *budget) any { return b.regexReplace("regexReplaceAllLiteral", true, false) },
	"mustRegexReplaceAllLiteral": func(b *budget) any { return b.regexReplace("mustRegexReplaceAllLiteral", true, true) },
	"printf":                     func(b *budget) any { return b.printf },
	"uniq":                       func(b *budget) any { return b.quadratic("uniq", sprigFuncs["uniq"]) },
	"mustUniq":                   func(b *budget) any { return b.quadratic("mustUniq", sprigFuncs["mustUniq"]) },
	"without":                    func(b *budget) any { return b.quadratic("without", sprigFuncs["without"]) },
	"mustWithout":                func(b *budget) any { return b.quadratic("mustWithout", sprigFuncs["mustWithout"]) },
	// text/template's own, named here so that they are measured like any other function.
	"print":    func(*budget) any { return fmt.Sprint },
	"println":  func(*budget) any { return fmt.Sprintln },
	"html":     func(*budget) any { return template.HTMLEscaper },
	"js":       func(*budget) any { return template.JSEscaper },
	"urlquery": func(*budget) any { return template.URLQueryEscaper },
}

// fits returns a *LimitError when count pieces of each bytes would pass the output limit.
func (b *budget) fits(fn string, count, each int64) error {
	if count < 0 {
		return limitf("%s: a count of %d is negative", fn, count)
	}
	if count > 0 && each > 0 && count > int64(b.lim.Output)/each {
		return limitf("%s would make more than the %s limit", fn, Size(b.lim.Output))
	}
	return nil
}

// within returns a *LimitError when total bytes would pass the output limit.
func (b *budget) within(fn string, total int64) error {
	if total > int64(b.lim.Output) {
		return limitf("%s would make more than the %s limit", fn, Size(b.lim.Output))
	}
	return nil
}

// randString returns Sprig's function fn of a length, refusing a length over the output limit.
func (b *budget) randString(fn string) func(int) (string, error) {
	rand := sprigFuncs[fn].(func(int) string)
	return func(count int) (string, error) {
		if err := b.fits(fn, int64(count), 1); err != nil {
			return "", err
		}
		return rand(count), nil
	}
}

// untilStep is Sprig's untilStep, which counts the numbers before it makes them: start, start+step, ... up to
// stop, not included. Sprig's loop also never ends when i+step overflows.
func (b *budget) untilStep(start, stop, step int) ([]int, error) {
	var n uint64
	switch {
	case step > 0 && stop > start:
		n = (uint64(stop)-uint64(start)-1)/uint64(step) + 1
	case step < 0 && stop < start:
		n = (uint64(start)-uint64(stop)-1)/(-uint64(step)) + 1
	}
	if n > uint64(b.lim.Range) {
		return nil, limitf("untilStep would make %d numbers, over the limit of %d", n, b.lim.Range)
	}
	v := make([]int, n)
	for i := range v {
		v[i] = start + i*step
	}
	return v, nil
}

// seq is Sprig's seq (1 to N; START END; START STEP END) by way of untilStep.
func (b *budget) seq(params ...int) (string, error) {
	start, end, step := 1, 0, 0
	switch len(params) {
	case 1:
		end = params[0]
	case 2:
		start, end = params[0], params[1]
	case 3:
		start, step, end = params[0], params[1], params[2]
	default:
		return "", nil
	}
	inc := 1
	if end < start {
		inc = -1
	}
	if len(params) < 3 {
		step = inc
	} else if end < start && step > 0 {
		return "", nil
	}
	v, err := b.untilStep(start, end+inc, step)
	if err != nil {
		return "", err
	}
	return strings.Trim(fmt.Sprint(v), "[]"), nil
}

// indent is Sprig's indent: spaces in front of every line of v.
func (b *budget) indent(fn string, spaces int, v string) (string, error) {
	if err := b.fits(fn, int64(spaces), 1); err != nil {
		return "", err
	}
	if err := b.within(fn, int64(len(v))+int64(strings.Count(v, "\n")+1)*int64(spaces)); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", spaces)
	return pad + strings.ReplaceAll(v, "\n", "\n"+pad), nil
}

// wrapLines is Sprig's wrap and wrapWith: at most one line a byte of s, each ended by sep.
func (b *budget) wrapLines(fn string, l int, sep, s string) (string, error) {
	if err := b.within(fn, int64(len(s))+(int64(len(s))+1)*int64(len(sep))); err != nil {
		return "", err
	}
	return sprigFuncs["wrapWith"].(func(int, string, string) string)(l, sep, s), nil
}

// regexReplace is Sprig's regexReplaceAll and its kin. Matches do not overlap and a $ in repl stands for part
// of one match, so the result holds at most s, repl once a match, and s again for each $ in repl.
func (b *budget) regexReplace(fn string, literal, must bool) func(regex, s, repl string) (string, error) {
	return func(regex, s, repl string) (string, error) {
		re, err := regexp.Compile(regex)
		if err != nil {
			if must {
				return "", err
			}
			panic(err) // as Sprig's regexp.MustCompile: text/template reports it
		}
		dollars := int64(0)
		if !literal {
			dollars = int64(strings.Count(repl, "$"))
		}
		fixed := int64(len(s)) * (1 + dollars)
		if err := b.within(fn, fixed); err != nil {
			return "", err
		}
		if len(repl) > 0 {
			// Count the matches only as far as the limit allows them.
			most := (int64(b.lim.Output)-fixed)/int64(len(repl)) + 1
			if most <= int64(len(s))+1 && int64(len(re.FindAllStringIndex(s, int(most)))) >= most {
				return "", limitf("%s would make more than the %s limit", fn, Size(b.lim.Output))
			}
		}
		if literal {
			return re.ReplaceAllLiteralString(s, repl), nil
		}
		return re.ReplaceAllString(s, repl), nil
	}
}

// maxFormatWidth bounds a width or precision in printf's format.
const maxFormatWidth = 4096

// printf is text/template's printf, with widths and precisions of at most maxFormatWidth and an output that,
// verb by verb, fits the limit: a verb prints one argument (at most 6 bytes a byte of it, as %+q does) padded to
// its width, or with an explicit index ([n]) any argument again.
func (b *budget) printf(format string, args ...any) (string, error) {
	verbs, widths, widest, indexed := int64(0), int64(0), int64(0), false
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		verbs++
		j := i + 1
		for ; j < len(format) && strings.IndexByte("+-# 0123456789.*[]", format[j]) >= 0; j++ {
			n, text := int64(0), ""
			switch c := format[j]; {
			case c == '[':
				indexed = true
			case c == '*':
				for _, a := range args {
					if w, ok := a.(int); ok {
						n = max(n, int64(w), -int64(w))
					}
				}
				text = fmt.Sprint(n)
			case c >= '0' && c <= '9':
				k := j
				for k < len(format) && format[k] >= '0' && format[k] <= '9' {
					k++
				}
				if k < len(format) && format[k] == ']' {
					j = k - 1
					continue // an argument index
				}
				if text = format[j:k]; k-j > 4 {
					n = maxFormatWidth + 1
				} else {
					n = int64(atoi(text))
				}
				j = k - 1
			}
			if n > maxFormatWidth {
				return "", limitf("printf: a width or precision of %s is over the limit of %d", Short(text, 16), maxFormatWidth)
			}
			widths += n
			widest = max(widest, n)
		}
		i = j
	}
	argSize, largest := int64(0), int64(0)
	for _, a := range args {
		n := int64(b.size(reflect.ValueOf(a), b.lim.Output, "printf's arguments"))
		argSize += n
		largest = max(largest, n)
	}
	most := int64(len(format)) + 6*argSize + widths + 32*verbs
	if indexed {
		most = int64(len(format)) + verbs*(6*largest+widest+32)
	}
	if err := b.within("printf", most); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// atoi reads at most four digits.
func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// maxPairs bounds the comparisons of uniq (each element with each) and without (each element with each one
// left out), which compare with reflect.DeepEqual.
const maxPairs = 1 << 20

// quadratic returns Sprig's fn, refusing a list and arguments whose comparisons would pass maxPairs.
func (b *budget) quadratic(fn string, f any) any {
	v := reflect.ValueOf(f)
	return reflect.MakeFunc(v.Type(), func(args []reflect.Value) []reflect.Value {
		n := int64(1)
		if l := args[0]; l.Kind() == reflect.Interface && !l.IsNil() {
			if e := l.Elem(); e.Kind() == reflect.Slice || e.Kind() == reflect.Array {
				n = int64(e.Len())
			}
		}
		m := n
		if v.Type().IsVariadic() {
			m = int64(args[len(args)-1].Len())
		}
		if n*m > maxPairs {
			panic(limitf("%s of %d elements against %d would compare more than %d pairs", fn, n, m, maxPairs))
		}
		if v.Type().IsVariadic() {
			return v.CallSlice(args)
		}
		return v.Call(args)
	}).Interface()
}
