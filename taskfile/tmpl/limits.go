package tmpl

import (
	"fmt"
	"strconv"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// Limits bound one render.
type Limits struct {
	Time   time.Duration // the longest a render may take, waiting for a worker included
	Output int           // the most bytes the rendered text may hold, and any one value a function makes
	Range  int           // the most iterations one range may make, and the most elements of any list or map
}

// The limits Kiln renders with.
var (
	// TagLimits bound one image tag's template: a tag is at most a few hundred bytes.
	TagLimits = Limits{Time: 2 * time.Second, Output: 4 << 10, Range: 1000}
	// FileLimits bound a task file, and its alias block: the file itself is at most 1 MiB.
	FileLimits = Limits{Time: 2 * time.Second, Output: 1 << 20, Range: 10000}
)

// maxDepth is how deeply lists and maps may nest in a value a template makes.
const maxDepth = 16

// allocFactor times Limits.Output is how many bytes all the values a render's functions make may hold.
const allocFactor = 16

// LimitError is a render stopped by a limit. Its message names the template, the line when it is known, and
// the limit, and never holds the text or values the template made.
type LimitError struct {
	Template string // the template's name, as given to Parse
	Line     int    // the line of the template where it stopped; 0 when unknown
	Msg      string // what passed which limit
	busy     bool   // every worker was busy: retrying later may work
}

// Error returns NAME:LINE: MSG.
func (e *LimitError) Error() string {
	loc := e.Template
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	return loc + ": " + e.Msg
}

// Unwrap gives the error its kind: proto.Invalid, since the same template fails the same way again, or
// proto.Unavailable when it could not start for want of a worker.
func (e *LimitError) Unwrap() error {
	code := proto.Invalid
	if e.busy {
		code = proto.Unavailable
	}
	return &proto.Error{Code: code, Message: e.Error()}
}

// limitf returns a *LimitError with a formatted message; the template and line are filled in later.
func limitf(format string, args ...any) *LimitError {
	return &LimitError{Msg: fmt.Sprintf(format, args...)}
}

// Size returns n bytes as people read them: 4 KiB, 1 MiB, 300 bytes.
func Size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}

// Short returns s cut to at most n bytes (on a rune boundary, "..." at the end when cut), for quoting outside
// text in an error without letting it grow the error.
func Short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:max(cut, 0)] + "..."
}
