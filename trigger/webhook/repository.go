package webhook

import (
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/proto"
)

// normalizeURL returns the form of a repository URL that two URLs of the same repository share: the scheme and
// host lowercased, and a trailing ".git" and "/" dropped. "https://GitHub.com/o/r.git/" and
// "https://github.com/o/r" are the same; the path keeps its case, since not every git server ignores it.
// An scp-like address (git@host:o/r.git) has its host lowercased the same way.
func normalizeURL(raw string) string {
	s := strings.TrimSpace(raw)
	s = strings.TrimRight(s, "/")
	s = strings.TrimSuffix(s, ".git")
	s = strings.TrimRight(s, "/")
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		host, path, hasPath := strings.Cut(rest, "/")
		s = strings.ToLower(scheme) + "://" + strings.ToLower(host)
		if hasPath {
			s += "/" + path
		}
		return s
	}
	if host, path, ok := strings.Cut(s, ":"); ok && !strings.Contains(host, "/") {
		return strings.ToLower(host) + ":" + path
	}
	return s
}

// repository is the repository a delivery is about, as the URLs the sender gives for it.
type repository struct {
	urls []string // every URL the delivery gives, normalized, without repeats or empty ones
	name string   // the first URL given, as given, to name the repository in answers
}

// newRepository returns the repository that urls name; empty ones are left out.
func newRepository(urls ...string) repository {
	var r repository
	for _, u := range urls {
		if u == "" {
			continue
		}
		if r.name == "" {
			r.name = u
		}
		if n := normalizeURL(u); !slices.Contains(r.urls, n) {
			r.urls = append(r.urls, n)
		}
	}
	return r
}

// key is the repository's name in the store's marks: the first URL the delivery gives, normalized.
func (r repository) key() string {
	if len(r.urls) == 0 {
		return ""
	}
	return r.urls[0]
}

// tasksFor returns the tasks among all whose source is repo.
func tasksFor(all []*proto.Task, repo repository) []*proto.Task {
	var tasks []*proto.Task
	for _, t := range all {
		if u := t.GetSource().GetUrl(); u != "" && slices.Contains(repo.urls, normalizeURL(u)) {
			tasks = append(tasks, t)
		}
	}
	return tasks
}
