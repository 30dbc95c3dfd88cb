package taskfile

import (
	"reflect"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"blanks", " a\tb\n c  ", []string{"a", "b", "c"}},
		{"single quotes keep everything", `'a "b" \c $d'`, []string{`a "b" \c $d`}},
		{"double quotes escape some", `"a \"b\" \\ \$ \c"`, []string{`a "b" \ $ \c`}},
		{"quotes join a word", `a'b c'"d e"f`, []string{"ab cd ef"}},
		{"empty quotes are a word", `a '' ""`, []string{"a", "", ""}},
		{"backslash outside quotes", `a\ b \'c`, []string{"a b", "'c"}},
		{"line continuation", "a \\\nb", []string{"a", "b"}},
		{"nothing", "", nil},
		{"no expansion", "$HOME ~ *", []string{"$HOME", "~", "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitWords(tt.in)
			if err != nil {
				t.Fatalf("splitWords(%q) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitWordsErrors(t *testing.T) {
	for _, in := range []string{`'a`, `"a`, `a "b\"`} {
		t.Run(in, func(t *testing.T) {
			if got, err := splitWords(in); err == nil {
				t.Errorf("splitWords(%q) = %q, want an error", in, got)
			}
		})
	}
}
