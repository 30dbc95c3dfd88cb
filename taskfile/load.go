package taskfile

import (
	"time"

	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// loader reads one task file.
type loader struct {
	name  string
	data  Data
	check bool        // Check: secrets are placeholders and need no values
	refs  []secretRef // the secrets the templates read, in the order they were found
}

// Load reads the task file src, named name in errors (acb.yaml), as ACR does, and returns it checked and with
// every default applied: for a version 1.1.0 file it expands the aliases; it renders the file as a Go template
// (Sprig's functions, .Run, .Values and .Secrets of data, a missing key an error); it parses the YAML and
// checks every field, refusing any Kiln does not support. Every error is an *Error naming the file, the line
// and the field, with no secret value in it.
//
// Load is for the worker that runs the file: data.Secrets must hold a value for every secret the file
// declares. Check reads the same file without them.
func Load(src []byte, name string, data Data) (*File, error) {
	l := &loader{name: name, data: data}
	f, err := l.load(src)
	if err != nil {
		return nil, redact(err, data.Secrets)
	}
	return f, nil
}

// Check reads src as Load does, for the callers that have no secret values and no run yet: the API that takes
// a submitted file, the task saved with one. Each secret the templates read has a placeholder for its value,
// and each empty field of data.Run a plausible value (a task's runs have no ID, commit or date when it is
// saved). It returns the same errors Load would, but for missing secret values and the rare file whose
// shape depends on a secret's or a run variable's value. The File it returns is for its Secrets: the ids of
// the secrets the caller must fetch from Kiln's store before it calls Load; its values are not the run's.
func Check(src []byte, name string, data Data) (*File, error) {
	data.Run = data.Run.sample()
	l := &loader{name: name, data: data, check: true}
	return l.load(src)
}

// load runs the steps in ACR's order: the version, the aliases, the template, the YAML, the checks.
func (l *loader) load(src []byte) (*File, error) {
	limit := tmpl.FileLimits.Output
	if len(src) > limit {
		return nil, &Error{File: l.name, Msg: "the file is over the " + tmpl.Size(limit) + " limit of a task file"}
	}
	text := string(src)
	version, aliasOn, err := l.checkVersion(findVersion(text))
	if err != nil {
		return nil, err
	}
	var al *aliases
	if aliasOn {
		block, rest := splitAlias(text)
		if block != "" {
			if al, err = l.readAliases(block); err != nil {
				return nil, err
			}
		} else {
			al = newAliases('$', nil)
		}
		var ok bool
		if text, ok = al.expand(rest, limit); !ok {
			return nil, &Error{File: l.name, Msg: "the aliases make the file longer than the " + tmpl.Size(limit) + " limit of a task file"}
		}
	}
	rendered, err := l.render(text)
	if err != nil {
		return nil, err
	}
	root, err := l.parseYAML(rendered)
	if err != nil {
		return nil, err
	}
	f, err := l.decodeFile(root, version, al)
	if err != nil {
		return nil, err
	}
	if err := l.checkSecrets(f); err != nil {
		return nil, err
	}
	return f, nil
}

// SecretIDs returns the ids of the secrets the file declares, in the file's order: the secrets the caller
// fetches from Kiln's store before it calls Load. It reads the file as Check does.
func SecretIDs(src []byte, name string, data Data) ([]string, error) {
	f, err := Check(src, name, data)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(f.Secrets))
	for i, s := range f.Secrets {
		ids[i] = s.ID
	}
	return ids, nil
}

// CmdFile returns the File of a run of one command (kiln run --cmd, as az acr run --cmd): one cmd step with
// ACR's defaults, among them a 10-minute timeout, which the caller may change to the run's.
func CmdFile(cmd *Cmd) *File {
	return &File{
		Version:     defaultVersion,
		StepTimeout: defaultStepTimeout * time.Second,
		Steps: []Step{{
			ID:               "acb_step_0",
			Cmd:              cmd,
			WorkingDirectory: Workspace,
			Timeout:          defaultStepTimeout * time.Second,
			RetryDelay:       defaultRetryDelay * time.Second,
		}},
	}
}
