package github

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// defaultAPIURL is GitHub.com's REST API, what an empty Config.APIURL stands for.
const defaultAPIURL = "https://api.github.com/"

// defaultHTTPTimeout bounds every request to GitHub when Config.HTTPClient is nil.
const defaultHTTPTimeout = 30 * time.Second

// Config says which GitHub Kiln talks to and how GitHub reaches Kiln.
type Config struct {
	// APIURL is GitHub's REST API: "" means https://api.github.com/; for GitHub Enterprise Server it is
	// https://HOST/api/v3/ (--github-api-url).
	APIURL string
	// PublicURL is Kiln's own address as GitHub reaches it (--public-url), without a trailing path. "" means
	// Kiln registers no webhooks and its commit statuses link nowhere.
	PublicURL string
	// HTTPClient makes the requests to GitHub; nil means a client with a 30s timeout.
	HTTPClient *http.Client
}

// repo is one GitHub repository.
type repo struct {
	owner, name string
}

func (r repo) String() string { return r.owner + "/" + r.name }

// api is a Config made ready: the API URL parsed, and the host whose repositories it serves.
type api struct {
	apiURL     string // "" for GitHub.com, otherwise the Enterprise API URL as configured
	apiHost    string // the API URL's host name, lower case
	publicURL  string // Config.PublicURL without a trailing slash
	httpClient *http.Client
	err        error // why Config.APIURL cannot be used, if it cannot
}

// newAPI returns cfg made ready. A bad APIURL is kept as api.err and returned by every call, because the
// constructors that use it return no error.
func newAPI(cfg Config) *api {
	a := &api{publicURL: strings.TrimRight(cfg.PublicURL, "/"), httpClient: cfg.HTTPClient}
	if a.httpClient == nil {
		a.httpClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	raw := cfg.APIURL
	if raw == "" {
		raw = defaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		a.err = proto.Errorf(proto.Invalid, "the GitHub API URL %q is not an http(s) URL", cfg.APIURL)
		return a
	}
	a.apiHost = strings.ToLower(u.Hostname())
	if raw != defaultAPIURL && a.apiHost != "api.github.com" {
		a.apiURL = raw
	}
	return a
}

// repository returns the GitHub repository rawURL names, with ok false when rawURL is not on this GitHub. A
// repository is on it when its host is the API's host (GitHub Enterprise Server's https://HOST/api/v3/) or the
// API's host is "api." followed by it (github.com and api.github.com). A URL on this GitHub that names no
// owner/name is a proto.Invalid error.
func (a *api) repository(rawURL string) (r repo, ok bool, err error) {
	if a.err != nil {
		return repo{}, false, a.err
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return repo{}, false, nil // not a URL with a host (an scp-like git@host:path, say): not ours to handle
	}
	host := strings.ToLower(u.Hostname())
	if host != a.apiHost && "api."+host != a.apiHost {
		return repo{}, false, nil
	}
	path := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	owner, name, found := strings.Cut(path, "/")
	if !found || owner == "" || name == "" || strings.Contains(name, "/") {
		return repo{}, false, proto.Errorf(proto.Invalid, "%s is on GitHub but names no repository (https://%s/OWNER/REPO)",
			redactURL(u), u.Host)
	}
	return repo{owner: owner, name: name}, true, nil
}

// client returns a go-github client that authenticates with token.
func (a *api) client(token string) (*gh.Client, error) {
	c := gh.NewClient(a.httpClient).WithAuthToken(token)
	if a.apiURL == "" {
		return c, nil
	}
	c, err := c.WithEnterpriseURLs(a.apiURL, a.apiURL)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "the GitHub API URL %q: %v", a.apiURL, err)
	}
	return c, nil
}

// redactURL returns u as text without any user information it carries.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
