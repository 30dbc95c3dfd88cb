package webhook_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// commitsTouching returns an edit that makes a push list n commits, each changing files.
func commitsTouching(n int, files ...string) func(m map[string]any) {
	return func(m map[string]any) {
		template := m["commits"].([]any)[0].(map[string]any)
		commits := make([]any, n)
		for i := range commits {
			c := make(map[string]any, len(template))
			for k, v := range template {
				c[k] = v
			}
			c["id"] = fmt.Sprintf("%040x", i+1)
			c["added"], c["removed"] = []any{}, []any{}
			c["modified"] = files
			commits[i] = c
		}
		commits[n-1].(map[string]any)["id"] = branchAfter
		m["commits"] = commits
	}
}

func TestPathFilters(t *testing.T) {
	tests := []struct {
		name    string
		filters []string
		edits   []func(m map[string]any)
		want    bool // a run starts
	}{
		{name: "no filters", want: true},
		// github/push.branch.json modifies README.md.
		{name: "exact file", filters: []string{"README.md"}, want: true},
		{name: "glob", filters: []string{"*.md"}, want: true},
		{name: "double star", filters: []string{"**/*.md"}, want: true},
		{name: "one of several", filters: []string{"src/**", "README.md"}, want: true},
		{name: "miss", filters: []string{"src/**", "Dockerfile"}, want: false},
		{name: "excluded", filters: []string{"**", "!*.md"}, want: false},
		{name: "directory", filters: []string{"app"}, edits: []func(m map[string]any){commitsTouching(1, "app/x/main.go")}, want: true},
		{name: "deep double star", filters: []string{"app/**/*.go"}, edits: []func(m map[string]any){commitsTouching(3, "app/x/y/main.go")}, want: true},
		{name: "a removed file counts", filters: []string{"old.txt"}, edits: []func(m map[string]any){
			func(m map[string]any) { m["commits"].([]any)[0].(map[string]any)["removed"] = []any{"old.txt"} }}, want: true},
		{name: "19 commits listed, all known, miss", filters: []string{"src/**"}, edits: []func(m map[string]any){commitsTouching(19, "docs/a.md")}, want: false},
		// GitHub lists 20 commits at most: the push may have changed files it does not list.
		{name: "20 commits listed build whatever the filters", filters: []string{"src/**"}, edits: []func(m map[string]any){commitsTouching(20, "docs/a.md")}, want: true},
		{name: "no commits listed build whatever the filters", filters: []string{"src/**"}, edits: []func(m map[string]any){set("commits", []any{})}, want: true},
		// Gitea counts the commits it leaves out.
		{name: "gitea total beyond the list", filters: []string{"src/**"}, edits: []func(m map[string]any){set("total_commits", 7)}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, newTask("app", withRef("master"), withFilters(tt.filters...)))
			body := payload(t, "github/push.branch.json", append([]func(m map[string]any){atRepo}, tt.edits...)...)
			status, rep := e.github(t, "push", "d1", secret, body)
			if status != http.StatusAccepted {
				t.Fatalf("delivery = %d %+v, want 202", status, rep)
			}
			if got := len(rep.Runs) == 1; got != tt.want {
				t.Fatalf("filters %v: run started = %t (%+v), want %t", tt.filters, got, rep, tt.want)
			}
			if !tt.want && rep.Skipped["app"] == "" {
				t.Errorf("answer %+v does not say why task app started nothing", rep)
			}
			runs := e.queued(t, rep.Runs)
			for _, r := range runs {
				if r.GetGit().GetCommit() != branchAfter || r.GetTrigger() != proto.Trigger_COMMIT {
					t.Errorf("run %s builds %s (%s), want %s", r.GetId(), r.GetGit().GetCommit(), r.GetTrigger(), branchAfter)
				}
			}
		})
	}
}
