package taskfile

import (
	"strings"
	"testing"
)

// TestCheckTemplateBombs: a template that would make far more than a task file is refused by its limit, at
// its line, in a short message, by Check as by Load.
func TestCheckTemplateBombs(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"a range that writes", "steps:\n  - cmd: alpine echo x{{range 20000000}}xxxxxxxxxx{{end}}\n", 2,
			"range over 20000000 items: a range may make at most 10000 iterations"},
		{"a range that writes nothing", "steps:\n  - cmd: alpine echo {{range 100000000}}{{end}}\n", 2,
			"a range may make at most 10000 iterations"},
		{"repeat", "steps:\n  - cmd: alpine echo {{ repeat 200000000 \"x\" | len }}\n", 2,
			"repeat would make more than the 1 MiB limit"},
		{"text past the output limit", "steps:\n  - cmd: alpine echo\n{{range 10000}}{{range 200}}#xxxx{{end}}\n{{end}}", 0,
			"the rendered text is over the 1 MiB limit"},
		{"a dropped function", "steps:\n  - cmd: alpine echo {{genPrivateKey \"rsa\"}}\n", 2,
			`function "genPrivateKey" not defined: Kiln leaves this one of Sprig's out`},
		{"fail with a long message", "steps:\n  - cmd: alpine echo {{fail (repeat 100000 \"x\")}}\n", 2, "xxxx..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, "", tt.msg)
			if len(err.Error()) > 1024 {
				t.Errorf("Check() = an error of %d bytes, want under 1 KiB", len(err.Error()))
			}
			_, err = Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, "", tt.msg)
		})
	}
}

// TestAliasBomb: an alias of a long value written many times would make the file gigabytes long before it is
// rendered; it is refused at the limit of a task file.
func TestAliasBomb(t *testing.T) {
	src := "version: v1.1.0\nalias:\n  values:\n    a: \"{{ repeat 100000 \"x\" }}\"\nsteps:\n  - cmd: alpine echo " +
		strings.Repeat("$a", 100000) + "\n"
	_, err := Check([]byte(src), "acb.yaml", testData())
	wantError(t, err, 0, "", "the aliases make the file longer than the 1 MiB limit of a task file")
	_, err = Check([]byte("steps:\n  - cmd: alpine echo "+strings.Repeat("x", 1<<20)+"\n"), "acb.yaml", testData())
	wantError(t, err, 0, "", "the file is over the 1 MiB limit of a task file")
}
