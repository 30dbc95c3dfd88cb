package scheduler

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// announcePushed publishes an ImagePushed for each image the run pushed, as soon as the push completes, so that
// the tasks built on one of them start without waiting for a registry to tell. It is best effort: a registry
// notification or the poller finds a change this misses, only later. An image whose reference holds one of
// the run's secrets (a tag made of one) is not announced: no event carries a secret, and a masked reference
// names no image.
func (w *Worker) announcePushed(ctx context.Context, run *proto.Run, images []*proto.Image, secrets *masker) {
	for _, img := range images {
		if secrets.maskString(img.GetReference()) != img.GetReference() {
			continue
		}
		ev := &proto.ImagePushed{
			Reference:  img.GetReference(),
			Digest:     img.GetDigest(),
			Source:     "push",
			ObservedAt: timestamppb.Now(),
			RunId:      run.GetId(),
		}
		data, err := gproto.Marshal(ev)
		if err == nil {
			// The ID makes a publish retried by a later attempt of the run one event.
			_, err = w.JS.Publish(ctx, proto.SubjectImagePushed, data,
				jetstream.WithMsgID("push/"+run.GetId()+"/"+img.GetReference()+"@"+img.GetDigest()))
		}
		if err != nil {
			w.Logger.Warn("announcing a pushed image", "run", run.GetId(), "image", img.GetReference(), "err", err)
		}
	}
}
