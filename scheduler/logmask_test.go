package scheduler

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRunLogMasksAcrossWrites(t *testing.T) {
	long := strings.Repeat("x", maxPartial)
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "a secret split across two writes", writes: []string{"the password is hun", "ter22\nnext"}, want: "the password is ***\nnext"},
		{name: "split in its base64", writes: []string{"auth aHVudG", "VyMjI= ok\n"}, want: "auth *** ok\n"},
		{name: "across the cut of a line with no end", writes: []string{long + "hun", "ter22 end"}, want: long + "*** end"},
		{name: "a progress line ended by a carriage return", writes: []string{"50%\r", "hunter22 100%\r"}, want: "50%\r*** 100%\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			l := newRunLog(&out)
			l.secrets.add("hunter22")
			for _, w := range tt.writes {
				io.WriteString(l, w)
			}
			l.Flush()
			if out.String() != tt.want {
				t.Errorf("log = %.80q, want %.80q", out.String(), tt.want)
			}
		})
	}
}

// TestRunLogWritesLongLines checks that a line with no end is written as it comes, not held until its end.
func TestRunLogWritesLongLines(t *testing.T) {
	var out bytes.Buffer
	l := newRunLog(&out)
	l.secrets.add("hunter22")
	io.WriteString(l, strings.Repeat("x", 2*maxPartial))
	if out.Len() == 0 {
		t.Errorf("log after a 128 KiB write with no line end = empty, want most of it written")
	}
}

func TestStepLogMasksSecretsAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	rl := newRunLog(&out)
	rl.secrets.add("hunter2")
	l := newStepLog(rl)
	w := l.step("s")
	io.WriteString(w, "the password is hun")
	io.WriteString(w, "ter2\nno end")
	w.Close()
	l.line("run line with hunter2")
	want := "[s] the password is ***\n[s] no end\nrun line with ***\n"
	if out.String() != want {
		t.Errorf("log = %q, want %q", out.String(), want)
	}
}

func TestStepLogMasksAcrossTheCutOfALongLine(t *testing.T) {
	var out bytes.Buffer
	rl := newRunLog(&out)
	rl.secrets.add("hunter22")
	w := newStepLog(rl).step("s")
	io.WriteString(w, strings.Repeat("x", maxPartial)+"hun")
	io.WriteString(w, "ter22\n")
	w.Close()
	if got := out.String(); strings.Contains(got, "hun") || strings.Contains(got, "ter22") || !strings.Contains(got, "***") {
		t.Errorf("log = ...%q, want the secret masked whole", got[max(0, len(got)-40):])
	}
}
