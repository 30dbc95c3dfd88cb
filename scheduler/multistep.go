package scheduler

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile"
)

// maxTaskFile bounds a task file read from a context.
const maxTaskFile = 1 << 20

// multiStep reports whether spec is a multi-step run (a task file or a command) rather than a docker build.
func multiStep(spec *proto.BuildSpec) bool {
	return spec.GetTaskFile() != "" || spec.GetTaskFilePath() != "" || spec.GetCmd() != ""
}

// runSteps runs a multi-step run in the checked-out context dir, which is its shared workspace: the task
// file is read (from the spec, or from the context) and rendered with the run's values and the secrets it
// names, then its steps run by their when. Build steps export into layouts under work, where later cmd steps
// run them and push steps push them. Build and cmd steps run on network.
func (w *Worker) runSteps(ctx context.Context, run *proto.Run, commit, dir, work, network string, log *runLog) (built, error) {
	var out built
	file, err := w.loadTaskFile(ctx, run, commit, dir, log.secrets)
	if err != nil {
		return out, err
	}
	slog := newStepLog(log)
	fmt.Fprintf(log, "Running %d steps\n", len(file.Steps))
	rec := &stepRecorder{save: func(steps []*proto.StepResult) { w.saveSteps(ctx, run, log.secrets.steps(steps)) }}
	for _, st := range file.Steps {
		rec.steps = append(rec.steps, &proto.StepResult{Id: st.ID, Kind: st.Kind(), Status: proto.Status_QUEUED})
	}
	rec.save(rec.all())
	x := &stepExec{w: w, file: file, workspace: dir, work: work, network: network, built: make(map[string]string), run: run, secrets: log.secrets}
	g := &graph{file: file, exec: x.exec, rec: rec, log: slog, sleep: sleepCtx}
	err = g.run(ctx)
	out.steps = log.secrets.steps(rec.all())
	out.images, out.bases = x.pushed(), x.baseImages()
	return out, err
}

// loadTaskFile reads and renders the run's task file, with the values of the secrets it declares, each added
// to secrets as soon as it is read, so that nothing the run writes from then on shows it.
func (w *Worker) loadTaskFile(ctx context.Context, run *proto.Run, commit, dir string, secrets *masker) (*taskfile.File, error) {
	spec := run.GetSpec()
	if spec.GetCmd() != "" {
		cmd, err := taskfile.ParseCmd(spec.GetCmd())
		if err != nil {
			return nil, err
		}
		return taskfile.CmdFile(cmd), nil
	}
	src, name := []byte(spec.GetTaskFile()), "the task file"
	if p := spec.GetTaskFilePath(); p != "" {
		name = p
		f, err := os.OpenInRoot(dir, filepath.FromSlash(p))
		if err != nil {
			return nil, proto.Errorf(proto.Invalid, "reading task file %s from the context: %w", p, err)
		}
		src, err = io.ReadAll(io.LimitReader(f, maxTaskFile+1))
		f.Close()
		if err != nil {
			return nil, proto.Errorf(proto.Invalid, "reading task file %s from the context: %w", p, err)
		}
		if len(src) > maxTaskFile {
			return nil, proto.Errorf(proto.Invalid, "task file %s is over 1 MiB", p)
		}
	}
	data := taskfile.Data{Run: w.runInfo(run, commit), Values: spec.GetValues()}
	ids, err := taskfile.SecretIDs(src, name, data)
	if err != nil {
		return nil, err
	}
	data.Secrets = make(map[string]string, len(ids))
	for _, id := range ids {
		v, err := w.Store.Secret(ctx, id)
		if err != nil {
			if proto.ErrorCode(err) == proto.NotFound {
				return nil, proto.Errorf(proto.Invalid, "%s names secret %s, which is not set: kiln secret set %s", name, id, id)
			}
			return nil, proto.Errorf(proto.Unavailable, "reading secret %s: %w", id, err)
		}
		data.Secrets[id] = string(v)
		secrets.add(string(v))
	}
	return taskfile.Load(src, name, data)
}

// runInfo is the {{.Run}} of a run's task file; commit is the one checked out.
func (w *Worker) runInfo(run *proto.Run, commit string) taskfile.RunInfo {
	git := run.GetSpec().GetGit()
	if commit == "" {
		commit = git.GetCommit()
	}
	branch := git.GetRef()
	for _, prefix := range []string{"refs/heads/", "refs/tags/"} {
		branch = strings.TrimPrefix(branch, prefix)
	}
	trigger := strings.ToLower(run.GetTrigger().String())
	return taskfile.RunInfo{
		ID:           run.GetId(),
		Commit:       commit,
		Branch:       branch,
		Registry:     w.DefaultRegistry,
		Date:         run.GetQueuedAt().AsTime().UTC().Format("20060102-150405z"),
		TaskName:     run.GetTaskName(),
		TriggeredBy:  trigger,
		OS:           runtime.GOOS,
		Architecture: runtime.GOARCH,
		SharedVolume: workspaceMount,
	}
}

// workspaceMount is where every cmd step sees the run's workspace, as in ACR.
const workspaceMount = taskfile.Workspace

// saveSteps writes the run's steps into its record, while this attempt owns the run.
func (w *Worker) saveSteps(ctx context.Context, run *proto.Run, steps []*proto.StepResult) {
	_, err := w.Store.UpdateRun(context.WithoutCancel(ctx), run.GetId(), func(r *proto.Run) error {
		if r.GetStatus() != proto.Status_RUNNING || r.GetAttempt() != run.GetAttempt() {
			return errNothingToDo
		}
		r.Steps = steps
		return nil
	})
	if err != nil && err != errNothingToDo {
		w.Logger.Warn("recording a run's steps", "run", run.GetId(), "err", err)
	}
}

func cloneStep(s *proto.StepResult) *proto.StepResult { return gproto.Clone(s).(*proto.StepResult) }

// stepExec runs the steps of one run, and remembers the images its build steps made.
type stepExec struct {
	w         *Worker
	run       *proto.Run
	file      *taskfile.File
	workspace string
	work      string
	secrets   *masker // the run's: an image reference in an event may hold a secret
	network   string  // of the build and cmd steps

	mu     sync.Mutex
	built  map[string]string // image reference → the layout directory its build step exported
	images []*proto.Image    // pushed
	bases  []*proto.Image
}
