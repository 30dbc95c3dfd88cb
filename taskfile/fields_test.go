package taskfile

import (
	"testing"
)

// TestUnsupportedFields checks that every field Kiln refuses is refused with its name, its line and the reason.
func TestUnsupportedFields(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"detach", "steps:\n  - cmd: a\n  - cmd: redis\n    detach: true\n", 4, "steps[1].detach", "no network shared between steps"},
		{"ports", "steps:\n  - cmd: redis\n    ports: [\"6379:6379\"]\n", 3, "steps[0].ports", "cannot be a service that later steps reach"},
		{"expose", "steps:\n  - cmd: redis\n    expose: [\"6379\"]\n", 3, "steps[0].expose", "not supported by Kiln"},
		{"network", "steps:\n  - cmd: redis\n    network: mynet\n", 3, "steps[0].network", "not supported by Kiln"},
		{"isolation", "steps:\n  - cmd: a\n  - build: .\n    isolation: hyperv\n", 4, "steps[1].isolation", "not supported by Kiln (isolation chooses Windows"},
		{"privileged", "steps:\n  - cmd: a\n    privileged: true\n", 3, "steps[0].privileged", "never runs a step privileged"},
		{"keep", "steps:\n  - cmd: a\n    keep: true\n", 3, "steps[0].keep", "not supported by Kiln"},
		{"repeat", "steps:\n  - cmd: a\n    repeat: 2\n", 3, "steps[0].repeat", "not supported by Kiln"},
		{"volumeMounts", "steps:\n  - cmd: a\n    volumeMounts:\n      - name: v\n        mountPath: /v\n", 3, "steps[0].volumeMounts", "no task volumes"},
		{"step secret", "steps:\n  - cmd: a\n    secret: x\n", 3, "steps[0].secret", "not supported by Kiln"},
		{"cache of another value", "steps:\n  - build: .\n    cache: off\n", 3, "steps[0].cache", `must be enabled or disabled, not "off"`},
		{"networks", "networks:\n  - name: mynet\nsteps:\n  - cmd: a\n", 1, "networks", "not supported by Kiln"},
		{"volumes", "steps:\n  - cmd: a\nvolumes:\n  - name: v\n", 3, "volumes", "no task volumes"},
		{"totalTimeout", "totalTimeout: 3600\nsteps:\n  - cmd: a\n", 1, "totalTimeout", "ACR task files have no totalTimeout"},
		{"keyvault", "secrets:\n  - id: s\n    keyvault: https://v.vault.azure.net/secrets/s\nsteps:\n  - cmd: a\n", 3, "secrets[0].keyvault",
			"Kiln reads secrets from its own store"},
		{"clientID", "secrets:\n  - id: s\n    clientID: 0000\nsteps:\n  - cmd: a\n", 3, "secrets[0].clientID", "kiln secret set NAME"},
		{"entryPoint on a build", "steps:\n  - build: .\n    entryPoint: sh\n", 3, "steps[0].entryPoint", "applies to cmd steps, and this is a build step"},
		{"user on a push", "steps:\n  - push: [a]\n    user: root\n", 3, "steps[0].user", "applies to cmd steps, and this is a push step"},
		{"workingDirectory on a push", "steps:\n  - push: [a]\n    workingDirectory: /x\n", 3, "steps[0].workingDirectory",
			"applies to build and cmd steps, and this is a push step"},
		{"two kinds", "steps:\n  - build: .\n    cmd: a\n", 3, "steps[0].cmd", "both build and cmd"},
		{"no kind", "steps:\n  - id: a\n    when: [\"-\"]\n", 2, "steps[0]", "has none of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

// TestCache: cache: enabled is what Kiln always does; cache: disabled is a build step's --no-cache, and leaves a
// cmd step, which runs every time anyway, as it is.
func TestCache(t *testing.T) {
	tests := []struct {
		name, src   string
		wantNoCache bool
	}{
		{"enabled", "steps:\n  - build: -t app .\n    cache: enabled\n", false},
		{"disabled", "steps:\n  - build: -t app .\n    cache: disabled\n", true},
		{"Disabled, as acr-builder takes it", "steps:\n  - build: -t app .\n    cache: Disabled\n", true},
		{"--no-cache", "steps:\n  - build: -t app --no-cache .\n    cache: enabled\n", true},
		{"absent", "steps:\n  - build: -t app .\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustLoad(t, tt.src)
			if got := f.Steps[0].Build.NoCache; got != tt.wantNoCache {
				t.Errorf("Load(%q): Build.NoCache = %t, want %t", tt.src, got, tt.wantNoCache)
			}
		})
	}
	f := mustLoad(t, "steps:\n  - cmd: busybox true\n    cache: disabled\n")
	if f.Steps[0].Cmd == nil {
		t.Errorf("Load(cmd with cache: disabled): Steps[0].Cmd = nil, want the cmd")
	}
}
