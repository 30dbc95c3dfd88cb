package tmpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// render parses and executes text with Sprig's functions on data under lim.
func render(t *testing.T, ctx context.Context, text string, data any, lim Limits) (string, error) {
	t.Helper()
	tt, err := Parse("t", text, Sprig())
	if err != nil {
		t.Fatalf("Parse(%q) = %v, want no error", text, err)
	}
	return tt.Execute(ctx, data, lim)
}

func TestExecuteRenders(t *testing.T) {
	data := map[string]any{"A": "web", "L": []string{"a", "b"}, "M": map[string]string{"k": "v"}}
	tests := []struct {
		name, text, want string
	}{
		{"fields and functions", `{{.A | upper}}-{{range .L}}{{.}}{{end}}-{{.M.k}}`, "WEB-ab-v"},
		{"range over an integer", `{{range 3}}{{.}}{{end}}`, "012"},
		{"range with variables", `{{range $i, $v := .L}}{{$i}}={{$v}};{{end}}`, "0=a;1=b;"},
		{"a nil value prints as text/template prints it", `{{first (list)}}`, "<no value>"},
		{"define and template", `{{define "x"}}[{{.}}]{{end}}{{template "x" .A}}`, "[web]"},
		{"bounded functions under their limits", `{{repeat 3 "ab"}} {{replace "a" "b" "aaa"}} {{seq 3}} {{until 3}} {{indent 2 "x"}}`,
			"ababab bbb 1 2 3 [0 1 2]   x"},
		{"printf", `{{printf "%05d-%s-%[1]d" 7 "x"}}`, "00007-x-7"},
		{"regexReplaceAll", `{{regexReplaceAll "[^a-z0-9]" "feature/x_1" "-"}}`, "feature-x-1"},
		{"seq downwards", `{{seq 3 1}}`, "3 2 1"},
		{"dict and set", `{{$d := dict "a" "1"}}{{$_ := set $d "b" "2"}}{{$d.b}}`, "2"},
		{"and short-circuits", `{{and false (index .L 5)}}`, "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(t, context.Background(), tt.text, data, FileLimits)
			if err != nil || got != tt.want {
				t.Fatalf("Execute(%q) = %q, %v, want %q", tt.text, got, err, tt.want)
			}
			want := plain(t, tt.text, data)
			if got != want {
				t.Errorf("Execute(%q) = %q, text/template with Sprig renders %q", tt.text, got, want)
			}
		})
	}
}

// plain renders text as text/template and Sprig do without bounds, for comparison.
func plain(t *testing.T, text string, data any) string {
	t.Helper()
	tt := template.Must(template.New("t").Option("missingkey=error").Funcs(sprigFuncs).Parse(text))
	var b strings.Builder
	if err := tt.Execute(&b, data); err != nil {
		t.Fatalf("text/template Execute(%q) = %v", text, err)
	}
	return b.String()
}

// TestUntilStepOverflow: Sprig's own untilStep never returns here, as i+step overflows.
func TestUntilStepOverflow(t *testing.T) {
	const text = `{{untilStep 9223372036854775800 9223372036854775807 10}}`
	if got, err := render(t, context.Background(), text, nil, FileLimits); err != nil || got != "[9223372036854775800]" {
		t.Errorf("Execute(%q) = %q, %v, want [9223372036854775800]", text, got, err)
	}
}

func TestExecuteRefusesBombs(t *testing.T) {
	quick := Limits{Time: 300 * time.Millisecond, Output: 1 << 20, Range: 10000}
	tests := []struct {
		name, text string
		lim        Limits
		want       string
		line       int
	}{
		{"a range that writes", "x{{range 20000000}}xxxxxxxxxx{{end}}", FileLimits, "a range may make at most 10000 iterations", 1},
		{"a range that writes nothing", "{{range 100000000}}{{end}}", FileLimits, "a range may make at most 10000 iterations", 1},
		{"repeat", `{{ repeat 200000000 "x" | len }}`, FileLimits, "repeat would make more than the 1 MiB limit", 1},
		{"a range under the limit that writes too much", "a\n{{range 10000}}{{range 10000}}x{{end}}{{end}}", FileLimits,
			"the rendered text is over the 1 MiB limit", 0},
		{"nested ranges that write nothing", "{{range 10000}}{{range 10000}}{{range 10000}}{{end}}{{end}}{{end}}", quick,
			"time limit", 0},
		{"recursion", `{{define "a"}}{{if lt (len .) 60}}{{template "a" (print . "x")}}{{template "a" (print . "y")}}{{end}}{{end}}{{template "a" ""}}`,
			quick, "time limit", 0},
		{"comparisons of long strings, one after another", `{{$s := repeat 1000000 "x"}}{{$t := repeat 1000000 "x"}}` +
			strings.Repeat(`{{if eq $s $t}}{{end}}`, 100000), quick, "time limit", 0},
		{"a string that doubles", `{{$s := "xx"}}{{range 40}}{{$s = print $s $s}}{{end}}`, FileLimits, "over the 1 MiB limit", 1},
		{"printf width", `{{printf "%0999999999d" 1}}`, FileLimits, "width or precision", 1},
		{"printf indexed", `{{$s := repeat 100000 "x"}}{{printf "%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s%[1]s" $s}}`, FileLimits, "printf would make", 1},
		{"replace of the empty string", `{{replace "" "xxxxxxxxxx" (repeat 200000 "y")}}`, FileLimits, "replace would make", 1},
		{"regexReplaceAll expanding", `{{regexReplaceAll "(.*)" (repeat 300000 "y") "$1$1$1$1"}}`, FileLimits, "regexReplaceAll would make", 1},
		{"indent", `{{indent 100000000 "a\nb"}}`, FileLimits, "indent would make", 1},
		{"nindent of many lines", "{{nindent 100000 (repeat 100000 \"\\n\")}}", FileLimits, "nindent would make", 1},
		{"until", `{{until 1000000000}}`, FileLimits, "over the limit of 10000", 1},
		{"seq", `{{seq 1 1000000000}}`, FileLimits, "over the limit of 10000", 1},
		{"randAlphaNum", `{{randAlphaNum 1000000000}}`, FileLimits, "randAlphaNum would make", 1},
		{"wrapWith", `{{wrapWith 1 (repeat 1000 "-") (repeat 100000 "y")}}`, FileLimits, "wrapWith would make", 1},
		{"join", `{{join (repeat 500000 "-") (list 1 2 3 4 5)}}`, FileLimits, "join would make", 1},
		{"a list built up", `{{$l := list}}{{range 10000}}{{$l = append $l (repeat 1000 "x")}}{{end}}`, FileLimits, "limit", 1},
		{"a dict grown after it was listed", `{{$d := dict}}{{$l := list $d $d $d $d $d $d $d $d $d $d $d $d}}` +
			`{{range 600}}{{$_ := set $d (toString .) (repeat 1000 "x")}}{{end}}{{$l}}`, FileLimits, "limit", 1},
		{"a dict inside itself", `{{$d := dict}}{{$_ := set $d "d" $d}}{{toJson $d}}`, FileLimits, "deeper than 16 levels", 1},
		{"uniq", `{{uniq (until 10000)}}`, FileLimits, "would compare more than", 1},
		{"values over the allocation budget", `{{range 100}}{{$x := repeat 1000000 "x"}}{{end}}`, FileLimits,
			"the values the template made are over the 16 MiB limit", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := render(t, context.Background(), tt.text, nil, tt.lim)
			took := time.Since(start)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Execute(%q) = %v, want a *LimitError", tt.text, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Execute(%q) = %q, want it to say %q", tt.text, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "t") || len(err.Error()) > 300 {
				t.Errorf("Execute(%q) = %q, want a short message naming the template", tt.text, err)
			}
			if tt.line != 0 && le.Line != tt.line {
				t.Errorf("Execute(%q): Line = %d, want %d", tt.text, le.Line, tt.line)
			}
			if got := proto.ErrorCode(err); got != proto.Invalid {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, got, proto.Invalid)
			}
			t.Logf("%s: %v in %v", tt.name, err, took)
		})
	}
}

func TestExecuteCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err := render(t, ctx, "{{range 10000}}{{range 10000}}{{range 10000}}{{end}}{{end}}{{end}}", nil, FileLimits)
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("Execute() = %v, want it canceled", err)
	}
}

func TestParseRefusesDropped(t *testing.T) {
	for name := range Dropped {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse("t", "{{"+name+"}}", Sprig()); err == nil || !strings.Contains(err.Error(), "not defined") {
				t.Errorf("Parse({{%s}}) = %v, want the function not defined", name, err)
			}
		})
	}
}

// TestParseRefusesLongPipelines: text/template's comparisons are not wrapped, so a pipeline may hold only so
// many of them between two checks.
func TestParseRefusesLongPipelines(t *testing.T) {
	text := `{{$s := "x"}}{{and` + strings.Repeat(` (eq $s $s)`, 200) + `}}`
	if _, err := Parse("t", text, Sprig()); err == nil || !strings.Contains(err.Error(), "t:1:") ||
		!strings.Contains(err.Error(), "over the limit of 256") {
		t.Errorf("Parse(200 comparisons in one pipeline) = %v, want it refused at t:1", err)
	}
	if _, err := Parse("t", `{{and`+strings.Repeat(` true`, 200)+`}}`, nil); err != nil {
		t.Errorf("Parse(200 arguments) = %v, want no error", err)
	}
}
