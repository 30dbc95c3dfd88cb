package baseimage

import (
	"context"

	"github.com/kilnbuild/kiln/proto"
)

// triggeredByBase is {{.Run.TriggeredBy}} of a base image update's runs.
const triggeredByBase = "base_image"

// start queues the run of task name for changes, of the head of its branch, and returns its ID.
func (w *Watcher) start(ctx context.Context, name string, changes []*proto.BaseChange) (string, error) {
	task := w.Index.Task(name)
	if task == nil {
		return "", proto.Errorf(proto.NotFound, "task %s no longer exists", name)
	}
	return w.Runs.Start(ctx, task, proto.Trigger_BASE_IMAGE, triggeredByBase, w.Now(), func(r *proto.Run) {
		r.BaseImage = &proto.BaseImageTrigger{Changes: changes}
	})
}
