package taskfile

import (
	"strings"
	"time"
)

// Workspace is where a run's source is in every step's container, and every step's working directory unless
// the file says otherwise: ACR's /workspace, which Kiln also gives as {{.Run.SharedVolume}}.
const Workspace = "/workspace"

// RunInfo is what a task file reads as {{.Run.*}}, and through the version 1.1.0 aliases as $ID, $Registry, ....
// The caller fills it from the run; Load uses it as given, but for RegistryName and SharedVolume, which it
// derives when they are empty.
type RunInfo struct {
	ID           string // the run's ID: k1, k2, ...
	Commit       string // the commit built, for runs of a git source
	Repository   string // the git repository's URL, for runs of a git source
	Branch       string // the branch built, for runs of a git source
	GitTag       string // the git tag pushed, for runs started by a tag
	TriggeredBy  string // what started the run: commit, pull_request, tag, manual, base_image or timer
	Registry     string // the registry's host, such as 127.0.0.1:5000 or myregistry.azurecr.io
	RegistryName string // "" to derive it from Registry, as registryName says
	Date         string // when the run started, in ACR's form: see FormatDate
	SharedVolume string // "" for Workspace
	OS           string // the platform the steps run on: linux
	OSVersion    string
	Architecture string // amd64, arm64, ...
	TaskName     string // the task the run belongs to, "" for a run of no task
}

// Data is everything a task file's templates can read: .Run, .Values (from --values FILE, then --set K=V over
// it) and .Secrets (values from Kiln's secret store, by id).
type Data struct {
	Run     RunInfo
	Values  map[string]string
	Secrets map[string]string
}

// FormatDate returns t as ACR writes {{.Run.Date}}: the UTC time as yyyyMMdd-HHmmssz, such as 20260123-142501z.
func FormatDate(t time.Time) string {
	return t.UTC().Format("20060102-150405z")
}

// registryName is ACR's Run.RegistryName: for an Azure registry (myregistry.azurecr.io) the part before the
// first dot, which az acr commands take as --name. ACR applies that rule to any host, which would make
// 127.0.0.1:5000 into "127"; Kiln applies it to Azure registries only and gives any other registry's host whole.
func registryName(registry string) string {
	host, _, _ := strings.Cut(registry, "/")
	if strings.Contains(host, ".azurecr.") {
		name, _, _ := strings.Cut(host, ".")
		return name
	}
	return registry
}

// runVariables returns .Run as the templates see it: every key present, so that a misspelled name is an error.
func (r RunInfo) runVariables() map[string]string {
	if r.RegistryName == "" {
		r.RegistryName = registryName(r.Registry)
	}
	if r.SharedVolume == "" {
		r.SharedVolume = Workspace
	}
	return map[string]string{
		"ID":           r.ID,
		"Commit":       r.Commit,
		"Repository":   r.Repository,
		"Branch":       r.Branch,
		"GitTag":       r.GitTag,
		"TriggeredBy":  r.TriggeredBy,
		"Registry":     r.Registry,
		"RegistryName": r.RegistryName,
		"Date":         r.Date,
		"SharedVolume": r.SharedVolume,
		"OS":           r.OS,
		"OSVersion":    r.OSVersion,
		"Architecture": r.Architecture,
		"TaskName":     r.TaskName,
	}
}

// runVariableNames lists the names of .Run, for the error about one that does not exist.
const runVariableNames = "ID, Commit, Repository, Branch, GitTag, TriggeredBy, Registry, RegistryName, Date, " +
	"SharedVolume, OS, OSVersion, Architecture and TaskName"

// templateData is the value templates execute on. .Build.ID is ACR's older name for .Run.ID.
func (d Data) templateData(secrets map[string]string) map[string]any {
	values := d.Values
	if values == nil {
		values = map[string]string{}
	}
	return map[string]any{
		"Run":     d.Run.runVariables(),
		"Build":   map[string]string{"ID": d.Run.ID},
		"Values":  values,
		"Secrets": secrets,
	}
}

// sample returns r with every empty field given a plausible value, for Check: when a task is saved its runs'
// IDs, commits and dates are not known yet, and {{.Run.Commit}} rendered empty would make a valid tag look
// invalid.
func (r RunInfo) sample() RunInfo {
	fill := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	fill(&r.ID, "k1")
	fill(&r.Commit, "0123456789abcdef0123456789abcdef01234567")
	fill(&r.Repository, "https://git.invalid/repository.git")
	fill(&r.Branch, "main")
	fill(&r.GitTag, "v1.0.0")
	fill(&r.TriggeredBy, "manual")
	fill(&r.Registry, "registry.invalid")
	fill(&r.Date, FormatDate(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	fill(&r.OS, "linux")
	fill(&r.Architecture, "amd64")
	fill(&r.TaskName, "task")
	return r
}
