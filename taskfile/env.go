package taskfile

import (
	"strings"
)

// checkEnvEntry returns what is wrong with an env entry, or "": an entry is KEY=VALUE, the key not empty and
// without blanks (the value may be empty).
func checkEnvEntry(s string) string {
	key, _, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return "must be KEY=VALUE, as in env: [\"GOFLAGS=-mod=vendor\"], and has no ="
	case key == "":
		return "must be KEY=VALUE, and the key is empty"
	case strings.ContainsAny(key, " \t\r\n"):
		return "must be KEY=VALUE, and the key has a blank in it"
	}
	return ""
}

// mergeEnv returns the environment of a step: the file's entries, then the step's, a step's entry replacing
// the file's of the same key (ACR's rule) and, within one list, a later entry replacing an earlier one.
func mergeEnv(file, step []string) []string {
	var out []string
	at := map[string]int{}
	for _, list := range [][]string{file, step} {
		for _, e := range list {
			key, _, _ := strings.Cut(e, "=")
			if i, ok := at[key]; ok {
				out[i] = e
				continue
			}
			at[key] = len(out)
			out = append(out, e)
		}
	}
	return out
}

// lookupEnv returns the value of key in env, a list of KEY=VALUE entries.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}
