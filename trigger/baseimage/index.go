package baseimage

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// TaskWatcher is what the Index needs of the store. *store.Store satisfies it.
type TaskWatcher interface {
	WatchTasks(ctx context.Context) (<-chan store.TaskUpdate, error)
}

// Index knows which tasks track which base image tags. It is safe for concurrent use; its zero value is not,
// use NewIndex.
type Index struct {
	mu    sync.RWMutex
	tasks map[string]*proto.Task         // by name
	byRef map[string]map[string]struct{} // tracked reference → names of the tasks tracking it
	ready chan struct{}                  // closed once every stored task is in
	once  sync.Once
}

// NewIndex returns an empty Index; Run fills it.
func NewIndex() *Index {
	return &Index{tasks: make(map[string]*proto.Task), byRef: make(map[string]map[string]struct{}), ready: make(chan struct{})}
}

// Run keeps the index current with the store's tasks until ctx ends.
func (ix *Index) Run(ctx context.Context, st TaskWatcher) error {
	updates, err := st.WatchTasks(ctx)
	if err != nil {
		return err
	}
	for u := range updates {
		switch {
		case u.Name == "": // the stored tasks are all in
			ix.once.Do(func() { close(ix.ready) })
		case u.Deleted:
			ix.set(u.Name, nil)
		default:
			ix.set(u.Name, u.Task)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return proto.Errorf(proto.Unavailable, "watching tasks: the watch ended")
}

// Ready is closed once the index holds every task stored when Run started.
func (ix *Index) Ready() <-chan struct{} { return ix.ready }

// set replaces what the index knows of the task name; nil removes it.
func (ix *Index) set(name string, t *proto.Task) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.tasks[name]; old != nil {
		for _, ref := range TrackedRefs(old) {
			delete(ix.byRef[ref], name)
			if len(ix.byRef[ref]) == 0 {
				delete(ix.byRef, ref)
			}
		}
		delete(ix.tasks, name)
	}
	if t == nil {
		return
	}
	ix.tasks[name] = t
	for _, ref := range TrackedRefs(t) {
		if ix.byRef[ref] == nil {
			ix.byRef[ref] = make(map[string]struct{})
		}
		ix.byRef[ref][name] = struct{}{}
	}
}

// TrackedRefs returns the references of t's bases whose updates start its runs: none when its base image
// trigger is off; else the tags (not digests) among its runtime bases, and its build-time bases too when the
// trigger's type is all.
func TrackedRefs(t *proto.Task) []string {
	if t.GetBaseImageTriggerOff() {
		return nil
	}
	var refs []string
	for _, b := range t.GetBases() {
		if (b.GetRuntime() || t.GetBaseImageTriggerAll()) && basedeps.Tracked(b.GetReference()) && !slices.Contains(refs, b.GetReference()) {
			refs = append(refs, b.GetReference())
		}
	}
	return refs
}

// Tracks reports whether some task tracks ref, a normalized reference.
func (ix *Index) Tracks(ref string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.byRef[ref]) > 0
}

// Refs returns every tracked reference, each once, sorted.
func (ix *Index) Refs() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	refs := make([]string, 0, len(ix.byRef))
	for ref := range ix.byRef {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	return refs
}

// Dependents returns the tasks that track ref, sorted by name.
func (ix *Index) Dependents(ref string) []*proto.Task {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]*proto.Task, 0, len(ix.byRef[ref]))
	for name := range ix.byRef[ref] {
		out = append(out, ix.tasks[name])
	}
	slices.SortFunc(out, func(a, b *proto.Task) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

// Task returns the task named name as the index last saw it, or nil.
func (ix *Index) Task(name string) *proto.Task {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.tasks[name]
}
