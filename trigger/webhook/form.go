package webhook

import (
	"io"

	"github.com/kilnbuild/kiln/proto"
)

// formField is the one field of an application/x-www-form-urlencoded delivery: GitHub, Gitea and Forgejo all
// send the JSON as payload=<json>.
const formField = "payload"

// formPayload decodes, as it is written to, the first "payload" field of an application/x-www-form-urlencoded
// body, writing the decoded value to out. It reads the body the way url.ParseQuery does ('&' between fields,
// '+' for a space, %XX for a byte) without holding more than a field name in memory, so that the value can
// be hashed while the body streams in: Gitea and Forgejo sign the value, not the form. The same decoder
// gives the payload that is parsed, so what was signed and what is read cannot differ.
type formPayload struct {
	out     io.Writer
	key     []byte // the current field's name, decoded, while it is read; cut at len(formField)+1
	inValue bool   // past the current field's '='
	capture bool   // the current value is the payload's
	found   bool   // the payload's value has begun
	done    bool   // the payload's value has ended: the rest of the body is ignored
	esc     int    // hex digits of a %XX escape still to come (0, 1 or 2)
	escByte byte   // the escape's byte so far
	err     error  // the first bad escape
	scratch []byte // decoded bytes of one Write, for out
}

// newFormPayload returns a decoder writing the payload field's value to out.
func newFormPayload(out io.Writer) *formPayload {
	return &formPayload{out: out}
}

// Write decodes p. It never fails: a bad escape is kept for Err, and the value goes on being decoded.
func (f *formPayload) Write(p []byte) (int, error) {
	if f.done {
		return len(p), nil
	}
	f.scratch = f.scratch[:0]
	for _, c := range p {
		if f.done {
			break
		}
		f.byte(c)
	}
	if len(f.scratch) > 0 {
		_, _ = f.out.Write(f.scratch) // out is a hash or a buffer: neither fails
	}
	return len(p), nil
}

// byte decodes one byte of the body.
func (f *formPayload) byte(c byte) {
	if f.esc > 0 {
		v, ok := unhex(c)
		if !ok {
			f.fail()
			f.esc = 0
			return
		}
		f.escByte = f.escByte<<4 | v
		if f.esc--; f.esc == 0 {
			f.emit(f.escByte)
		}
		return
	}
	switch {
	case c == '&':
		f.endField()
	case c == '=' && !f.inValue:
		f.inValue = true
		if !f.found && string(f.key) == formField {
			f.capture, f.found = true, true
		}
	case c == '%':
		f.esc, f.escByte = 2, 0
	case c == '+':
		f.emit(' ')
	default:
		f.emit(c)
	}
}

// emit adds a decoded byte to the field's name or value.
func (f *formPayload) emit(c byte) {
	switch {
	case !f.inValue:
		if len(f.key) <= len(formField) {
			f.key = append(f.key, c)
		}
	case f.capture:
		f.scratch = append(f.scratch, c)
	}
}

// endField ends a field at '&' or at the end of the body.
func (f *formPayload) endField() {
	if f.esc > 0 {
		f.fail()
		f.esc = 0
	}
	switch {
	case f.capture:
		f.capture, f.done = false, true
	case !f.inValue && !f.found && string(f.key) == formField:
		// A field with no '=' has an empty value, as url.ParseQuery reads it: the payload is empty.
		f.found, f.done = true, true
	}
	f.key, f.inValue = f.key[:0], false
}

// fail records a bad escape in the payload's value; one in another field is no concern of Kiln's.
func (f *formPayload) fail() {
	if f.capture && f.err == nil {
		f.err = proto.Errorf(proto.Invalid, "the form body's %s field has a bad %%-escape", formField)
	}
}

// Close ends the body. Its error says whether the payload field was there and well escaped.
func (f *formPayload) Close() error {
	if !f.done {
		f.endField()
	}
	switch {
	case f.err != nil:
		return f.err
	case !f.found:
		return proto.Errorf(proto.Invalid, "the form body has no %s field", formField)
	}
	return nil
}

// unhex returns the value of the hex digit c.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
