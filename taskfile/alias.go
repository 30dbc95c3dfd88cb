package taskfile

import (
	"strings"
	"unicode/utf8"
)

// runAliases are the predefined aliases of version 1.1.0: each stands for the run variable of its name, so
// that $Registry is {{.Run.Registry}}. ACR's reference lists these nine; $TaskName and the others of .Run have
// no alias.
var runAliases = []string{"ID", "SharedVolume", "Registry", "RegistryName", "Date", "OS", "Architecture", "Commit", "Branch"}

// imageAliases are ACR's image aliases of version 1.1.0, the images its Linux agents use (acr-builder's
// global defaults). As $acr or as the first word of a cmd step they stand for the image.
var imageAliases = map[string]string{
	"acr":  "mcr.microsoft.com/acr/acr-cli:0.19",
	"az":   "mcr.microsoft.com/acr/azure-cli:fe316c9",
	"bash": "mcr.microsoft.com/acr/bash:fe316c9",
	"curl": "mcr.microsoft.com/acr/curl:fe316c9",
	"cssc": "mcr.microsoft.com/acr/cssc:fe316c9",
}

// aliases are the aliases of a version 1.1.0 file: the file's own (alias: values:), which win, then the
// predefined ones and the image aliases.
type aliases struct {
	directive rune              // what starts an alias: $ unless alias: directive: says otherwise
	text      map[string]string // what $NAME becomes in the file's text, ready to be rendered as a template
	images    map[string]string // what the first word of a cmd step becomes: image aliases and custom ones
}

// newAliases returns the aliases of a file with custom, the rendered values of its alias: values:.
func newAliases(directive rune, custom map[string]string) *aliases {
	a := &aliases{directive: directive, text: map[string]string{}, images: map[string]string{}}
	for _, name := range runAliases {
		a.text[name] = "{{.Run." + name + "}}"
	}
	for name, image := range imageAliases {
		a.text[name] = image
		a.images[name] = image
	}
	for name, v := range custom {
		// The value is already rendered: what it holds is text, not template actions to run again.
		a.text[name] = strings.ReplaceAll(v, "{{", `{{"{{"}}`)
		a.images[name] = v
	}
	return a
}

// splitAlias cuts the top-level alias: block out of text, as ACR does before anything else: a line that begins
// with "alias:" and the lines after it up to the next one that begins at the left margin with anything but a
// comment. It returns the block with the lines before it left empty, so that its lines keep their numbers, and
// the rest of the text with the block's lines left empty, for the same reason; block is "" when there is none.
func splitAlias(text string) (block, rest string) {
	lines := strings.Split(text, "\n")
	start := -1
	for i, line := range lines {
		if after, ok := strings.CutPrefix(line, "alias"); ok && strings.HasPrefix(strings.TrimLeft(after, " \t"), ":") {
			start = i
			break
		}
	}
	if start < 0 {
		return "", text
	}
	end := start + 1
	for ; end < len(lines); end++ {
		line := strings.TrimRight(lines[end], "\r")
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			break
		}
	}
	b := make([]string, end)
	copy(b[start:], lines[start:end])
	r := make([]string, len(lines))
	copy(r, lines)
	for i := start; i < end; i++ {
		r[i] = ""
	}
	return strings.Join(b, "\n"), strings.Join(r, "\n")
}

// readAliases renders the alias block with the file's data and reads it. It has three fields in ACR: values,
// the custom aliases; directive, the character that starts an alias; src, files or URLs of more aliases, which
// Kiln does not fetch.
func (l *loader) readAliases(block string) (*aliases, error) {
	rendered, err := l.render(block)
	if err != nil {
		return nil, err
	}
	doc, err := l.parseYAML(rendered)
	if err != nil {
		return nil, err
	}
	top, err := l.mapping(doc, "")
	if err != nil {
		return nil, err
	}
	directive, custom := '$', map[string]string{}
	for _, p := range top {
		if p.key != "alias" {
			continue
		}
		fields, err := l.mapping(p.v, "alias")
		if err != nil {
			return nil, err
		}
		for _, f := range fields {
			field := "alias." + f.key
			switch f.key {
			case "values":
				values, err := l.mapping(f.v, field)
				if err != nil {
					return nil, err
				}
				for _, v := range values {
					if !isAliasName(v.key) {
						return nil, l.errorf(v.k, field+"."+v.key, "an alias name is made of ASCII letters and digits only")
					}
					s, err := l.scalar(v.v, field+"."+v.key)
					if err != nil {
						return nil, err
					}
					custom[v.key] = s
				}
			case "directive":
				s, err := l.scalar(f.v, field)
				if err != nil {
					return nil, err
				}
				r, size := utf8.DecodeRuneInString(s)
				if size == 0 || size != len(s) || isAliasName(s) || r == utf8.RuneError {
					return nil, l.errorf(f.v, field, "the directive is one character that is not a letter or digit, as $ (the default)")
				}
				directive = r
			case "src":
				return nil, l.errorf(f.k, field, "not supported by Kiln: Kiln reads a task file without fetching other "+
					"files or URLs; put the aliases under alias: values:")
			default:
				return nil, l.errorf(f.k, field, "unknown field: alias has values, directive and src")
			}
		}
	}
	return newAliases(directive, custom), nil
}

// isAliasName reports whether s can name an alias: ASCII letters and digits, at least one.
func isAliasName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(rune(s[i])) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// expand replaces the aliases in text as ACR does: the directive followed by a name (letters and digits)
// becomes the alias's value; a name that is no alias is left as it was, so that $HOME in a shell command
// stays $HOME; the directive twice ($$) is the directive itself. It reports false, and stops, once the text
// would pass limit bytes: an alias of a long value written many times could otherwise make gigabytes.
func (a *aliases) expand(text string, limit int) (string, bool) {
	var out strings.Builder
	out.Grow(min(len(text), limit))
	for i := 0; i < len(text); {
		if out.Len() > limit {
			return "", false
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if r != a.directive {
			out.WriteString(text[i : i+size])
			i += size
			continue
		}
		i += size
		if next, n := utf8.DecodeRuneInString(text[i:]); n > 0 && next == a.directive {
			out.WriteRune(a.directive)
			i += n
			continue
		}
		j := i
		for j < len(text) && isAlnum(rune(text[j])) {
			j++
		}
		if v, ok := a.text[text[i:j]]; ok && j > i {
			out.WriteString(v)
		} else {
			out.WriteRune(a.directive)
			out.WriteString(text[i:j])
		}
		i = j
	}
	return out.String(), out.Len() <= limit
}

// expandCmd replaces the first word of a cmd step when it names an image alias or a custom alias, as ACR does
// after the file is parsed: with version 1.1.0, cmd: bash echo hi runs ACR's bash image.
func (a *aliases) expandCmd(cmd string) string {
	trimmed := strings.TrimLeft(cmd, " \t\r\n")
	end := strings.IndexAny(trimmed, " \t\r\n")
	if end < 0 {
		end = len(trimmed)
	}
	if v, ok := a.images[trimmed[:end]]; ok {
		return v + trimmed[end:]
	}
	return cmd
}
