package scheduler

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/kilnbuild/kiln/proto"
)

// minMasked is the length, in bytes, of the shortest secret value the masker hides, and of the shortest form
// of one (an encoding, a line of a secret of several lines).
//
// GitHub Actions masks any value that is not empty; Kiln does not mask values of 1 to 3 bytes. Such a value is
// no secret (anyone guesses it in a few thousand tries), and hiding "a" or "10" everywhere would turn every log
// into stars while protecting nothing. From 4 bytes on, every occurrence is masked, whatever the cost to the
// log's words that happen to contain it. The README says so where it describes secrets.
const minMasked = 4

// masked is what the masker writes in place of a secret.
const masked = "***"

// masker hides the secret values of one run: those of its task file, its task's git token, any the run learns
// as it goes. Each value is hidden as itself and in the forms a build is likely to print it in:
//
//   - base64, standard and URL-safe, padded and not; and, for a value encoded inside a longer string (a
//     "user:token" basic-auth header, a file encoded whole), the characters that depend on the value alone
//     at each of the three alignments the value can start at in the encoded bytes;
//   - percent-encoded, as in a URL's query (url.QueryEscape) or path (url.PathEscape), upper-case hex as Go,
//     curl and most tools write it;
//   - each line of a value of several lines (a private key), as a tool prints it one line at a time.
//
// Every occurrence of every form is found, overlapping ones included, and each stretch of the text that any
// of them covers becomes one ***: the longest secret is hidden whole even when a shorter one starts inside it
// or runs past its end, and no part of either is left. It is safe for concurrent use.
type masker struct {
	mu      sync.RWMutex
	forms   [][]byte // longest first
	seen    map[string]bool
	longest int
}

// newMasker returns a masker that hides secrets.
func newMasker(secrets ...string) *masker {
	m := &masker{seen: make(map[string]bool)}
	m.add(secrets...)
	return m
}

// add hides secrets too, from now on.
func (m *masker) add(secrets ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range secrets {
		for _, f := range secretForms(s) {
			if len(f) < minMasked || m.seen[f] {
				continue
			}
			m.seen[f] = true
			m.forms = append(m.forms, []byte(f))
			m.longest = max(m.longest, len(f))
		}
	}
	// Longest first: a form found inside a longer one changes nothing the longer did not hide already.
	slices.SortStableFunc(m.forms, func(a, b []byte) int { return len(b) - len(a) })
}

// secretForms returns the value s and the forms it may be printed in. Short ones are left for add to drop.
func secretForms(s string) []string {
	if len(s) < minMasked {
		return nil
	}
	values := []string{s}
	if strings.ContainsAny(s, "\r\n") {
		for line := range strings.Lines(s) {
			values = append(values, strings.TrimRight(line, "\r\n"))
		}
	}
	var out []string
	for _, v := range values {
		if len(v) < minMasked {
			continue
		}
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			raw := enc.WithPadding(base64.NoPadding)
			out = append(out, enc.EncodeToString([]byte(v)), raw.EncodeToString([]byte(v)))
			for offset := range 3 {
				out = append(out, embedded(raw, v, offset))
			}
		}
	}
	return out
}

// embedded returns the base64 characters (of enc, unpadded) that v alone decides when v starts offset bytes
// into a longer encoded string: the characters made of its bits only, without those shared with the bytes
// before and after it. At offset 0 that is v's own encoding, unpadded and without a last character that
// mixes in the next byte.
func embedded(enc *base64.Encoding, v string, offset int) string {
	b := make([]byte, offset+len(v)) // offset zero bytes, then v
	copy(b[offset:], v)
	s := enc.EncodeToString(b)
	first := (8*offset + 5) / 6 // the first character with no bit of the bytes before v
	last := 8 * (offset + len(v)) / 6
	if first >= last {
		return ""
	}
	return s[first:last]
}

// mask returns b with every secret replaced by ***. It returns b itself when b holds none.
func (m *masker) mask(b []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	hidden := m.hidden(b)
	if hidden == nil {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if !hidden[i] {
			out = append(out, b[i])
			i++
			continue
		}
		out = append(out, masked...)
		for i < len(b) && hidden[i] {
			i++
		}
	}
	return out
}

// maskString is mask for a string.
func (m *masker) maskString(s string) string {
	if m == nil || s == "" {
		return s
	}
	return string(m.mask([]byte(s)))
}

// hidden marks the bytes of b that some secret covers, or returns nil when none does. The caller holds mu.
func (m *masker) hidden(b []byte) []bool {
	var hidden []bool
	for _, f := range m.forms {
		end := 0 // the bytes before end are marked already for f
		for i := 0; i+len(f) <= len(b); {
			j := bytes.Index(b[i:], f)
			if j < 0 {
				break
			}
			if hidden == nil {
				hidden = make([]bool, len(b))
			}
			start := i + j
			for k := max(start, end); k < start+len(f); k++ {
				hidden[k] = true
			}
			end = start + len(f)
			i = start + 1 // overlapping occurrences too
		}
	}
	return hidden
}

// ready returns how many bytes at the head of b, a piece of text whose end has not been seen yet, can be
// masked and written now: every secret that starts in them ends in them too, and none that continues in the
// bytes still to come starts before their end. The rest waits for more text.
func (m *masker) ready(b []byte) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	cut := len(b) - (m.longest - 1) // a secret that starts before cut ends inside b
	if m.longest == 0 || cut >= len(b) {
		return len(b)
	}
	if cut <= 0 {
		return 0
	}
	hidden := m.hidden(b)
	if hidden == nil || !hidden[cut-1] || !hidden[cut] {
		return cut
	}
	// cut falls inside a stretch of secrets: keep the whole stretch for later, where its secrets are found
	// again whole, unless the stretch is all of b's head (text that is all secrets), then write it through.
	start := cut
	for start > 0 && hidden[start-1] {
		start--
	}
	if start > 0 {
		return start
	}
	for cut < len(b) && hidden[cut] {
		cut++
	}
	return cut
}

// images masks the references of images, in place, and returns them.
func (m *masker) images(images []*proto.Image) []*proto.Image {
	for _, img := range images {
		if img != nil {
			img.Reference = m.maskString(img.GetReference())
		}
	}
	return images
}

// steps masks the errors and image references of steps, in place, and returns them.
func (m *masker) steps(steps []*proto.StepResult) []*proto.StepResult {
	for _, s := range steps {
		if s != nil {
			s.Error = m.maskString(s.GetError())
			m.images(s.GetImages())
		}
	}
	return steps
}
