package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// commitTimeout bounds the steps that follow a good upload: recording the run and publishing its event. They
// run on a context the client cannot cancel, so that a client that leaves does not leave half a run behind.
const commitTimeout = 30 * time.Second

// submit is POST /v1/runs: it checks the request part, streams the context part into the store while
// checking it, records the run as Queued and publishes its RunRequested. It answers 202 with the run once the
// event is on JetStream.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return proto.Errorf(proto.Invalid,
			"POST /v1/runs takes multipart/form-data, a \"request\" part then a \"context\" part: %v", err)
	}
	part, err := mr.NextPart()
	if err == io.EOF {
		return proto.Errorf(proto.Invalid, "the submission has no parts: it needs a \"request\" part then a \"context\" part")
	}
	if err != nil {
		return proto.Errorf(proto.Invalid, "reading the submission: %v", err)
	}
	if part.FormName() != "request" {
		return proto.Errorf(proto.Invalid, "the first part of a submission must be \"request\", not %q", part.FormName())
	}
	req, err := readRequest(part)
	if err != nil {
		return err
	}
	spec, err := specOf(req)
	if err != nil {
		return err
	}

	ctx := r.Context()
	queued := s.cfg.Now().UTC()
	id, err := s.st.NextRunID(ctx)
	if err != nil {
		return fmt.Errorf("allocating a run ID: %w", err)
	}
	if spec.Tags, err = tags.Render(req.Tags, tags.Run{ID: id, Queued: queued, TriggeredBy: "manual"}, s.cfg.DefaultRegistry); err != nil {
		return err
	}

	part, err = mr.NextPart()
	if err == io.EOF {
		return proto.Errorf(proto.Invalid, "the submission has no \"context\" part after its \"request\" part")
	}
	if err != nil {
		return proto.Errorf(proto.Invalid, "reading the submission: %v", err)
	}
	if part.FormName() != "context" {
		return proto.Errorf(proto.Invalid, "the second part of a submission must be \"context\", not %q", part.FormName())
	}
	spec.ContextObject = id
	if err := s.storeContext(ctx, id, part); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	run, err := s.queue.Enqueue(ctx, &proto.Run{
		Id:       id,
		Trigger:  proto.Trigger_MANUAL,
		QueuedAt: timestamppb.New(queued),
		Spec:     spec,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, RunFromProto(run))
	return nil
}

// storeContext streams the build context src into the store under name, checking it on the way. A context
// that is not good is not kept, and the error says what is wrong with it.
func (s *Server) storeContext(ctx context.Context, name string, src io.Reader) error {
	cr := newCheckedReader(src, s.cfg.MaxContextSize)
	_, err := s.st.PutContext(ctx, name, cr)
	cr.Close()
	if err == nil && cr.err == io.EOF {
		return nil
	}
	s.dropContext(ctx, name)
	switch {
	case err == nil: // the store stopped reading before the end, so the context was never checked whole
		return proto.Errorf(proto.Internal, "the store kept build context %s before reading it to its end", name)
	case cr.err != nil && cr.err != io.EOF && cr.err != errUploadAborted:
		return cr.err // what was wrong with the upload, in the words meant for its sender
	}
	return fmt.Errorf("storing the build context of run %s: %w", name, err)
}

// dropContext deletes the build context stored under name, if any. A failure is logged: there is nobody
// else to tell, and a leftover object wastes space but harms nothing.
func (s *Server) dropContext(ctx context.Context, name string) {
	err := s.st.DeleteContext(context.WithoutCancel(ctx), name)
	if err != nil && proto.ErrorCode(err) != proto.NotFound {
		s.log.ErrorContext(ctx, "could not delete a build context", "name", name, "err", err)
	}
}
