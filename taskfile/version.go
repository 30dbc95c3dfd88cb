package taskfile

import (
	"strconv"
	"strings"
)

// The versions of the format ACR reads, and so Kiln. Aliases are a feature of v1.1.0; a file that names no
// version is v1.0.0.
const (
	defaultVersion = "v1.0.0"
	aliasVersion   = "v1.1.0"
)

var versions = map[string]bool{"1.0-preview-1": true, "v1.0.0": true, "v1.1.0": true}

// findVersion returns the value of the file's top-level version field, read from its text before anything is
// rendered (the version decides whether aliases are expanded, which comes first), and the line it is on; ""
// and 0 when the file has none. ACR reads the version only from the file's first line that is not a comment;
// Kiln takes the first top-level version: line wherever it is.
func findVersion(text string) (string, int) {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		rest, ok := strings.CutPrefix(line, "version")
		if !ok {
			continue
		}
		rest = strings.TrimLeft(rest, " \t")
		value, ok := strings.CutPrefix(rest, ":")
		if !ok {
			continue
		}
		if j := strings.Index(value, " #"); j >= 0 {
			value = value[:j]
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		return value, i + 1
	}
	return "", 0
}

// checkVersion returns the version to record (defaultVersion for none) and whether it turns aliases on, or an
// *Error saying which versions there are.
func (l *loader) checkVersion(value string, line int) (string, bool, error) {
	if value == "" {
		return defaultVersion, false, nil
	}
	if !versions[strings.ToLower(value)] {
		e := &Error{File: l.name, Line: line, Field: "version",
			Msg: "unknown version " + strconv.Quote(value) + ": ACR task files are 1.0-preview-1, v1.0.0 or v1.1.0"}
		if versions["v"+strings.ToLower(value)] {
			e.Msg += " (did you mean v" + value + "?)"
		}
		return "", false, e
	}
	return value, strings.EqualFold(value, aliasVersion), nil
}
