package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gitremote"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// commitTimeout bounds the steps that follow a good upload: recording the run and publishing its event. They
// run on a context the client cannot cancel, so that a client that leaves does not leave half a run behind.
const commitTimeout = 30 * time.Second

// cleanupTimeout bounds a cleanup that must happen whatever the client does, such as deleting what a refused
// or aborted submission stored. It runs on a context of its own (cleanupContext): the request's is canceled
// as soon as the client hangs up, which is when there is most to clean.
const cleanupTimeout = 30 * time.Second

// cleanupContext returns a context for a cleanup that must outlive ctx's cancel, bounded by cleanupTimeout.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// submit is POST /v1/runs. A multipart submission has a "request" part, then a "context" part that streams
// into the store while it is checked; one whose request names a context URL has the request part only, and
// so may a plain JSON body. It records the run as Queued and publishes its RunRequested, and answers 202 with
// the run once the event is on JetStream.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if err != nil {
			drain(r.Body)
		}
	}()
	ctx := r.Context()
	req, mr, err := readSubmission(r)
	if err != nil {
		return err
	}
	spec, err := specOf(req)
	if err != nil {
		return err
	}
	if spec.Network, err = proto.ParseNetwork("network", req.Network, s.cfg.AllowHostNetwork); err != nil {
		return err
	}
	queued := s.cfg.Now().UTC()
	tagRun := tags.Run{Queued: queued, TriggeredBy: "manual"}
	if req.Context != "" {
		if err := remoteContext(ctx, req.Context, spec, &tagRun); err != nil {
			return err
		}
	}

	id, err := s.st.NextRunID(ctx)
	if err != nil {
		return fmt.Errorf("allocating a run ID: %w", err)
	}
	tagRun.ID = id
	if spec.Tags, err = tags.Render(req.Tags, tagRun, s.cfg.DefaultRegistry); err != nil {
		return err
	}
	if req.Context == "" {
		if err := s.uploadContext(ctx, mr, id); err != nil {
			return err
		}
		spec.ContextObject = id
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

// readSubmission reads the build request of a submission, from a JSON body or from the first part of a
// multipart one, and returns it with the multipart reader positioned after that part (nil for JSON). A
// request with a context URL must come alone: a context part after it is refused.
func readSubmission(r *http.Request) (BuildRequest, *multipart.Reader, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		req, err := readRequest(r.Body)
		if err == nil && req.Context == "" {
			err = proto.Errorf(proto.Invalid, "a JSON submission needs \"context\", the URL of a git repository or an archive; "+
				"to upload a context, POST multipart/form-data: a \"request\" part then a \"context\" part")
		}
		return req, nil, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return BuildRequest{}, nil, proto.Errorf(proto.Invalid,
			"POST /v1/runs takes multipart/form-data, a \"request\" part then a \"context\" part, "+
				"or application/json with a context URL: %v", err)
	}
	part, err := mr.NextPart()
	if err == io.EOF {
		return BuildRequest{}, nil, proto.Errorf(proto.Invalid, "the submission has no parts: it needs a \"request\" part then a \"context\" part")
	}
	if err != nil {
		return BuildRequest{}, nil, proto.Errorf(proto.Invalid, "reading the submission: %v", err)
	}
	if part.FormName() != "request" {
		return BuildRequest{}, nil, proto.Errorf(proto.Invalid, "the first part of a submission must be \"request\", not %q", part.FormName())
	}
	req, err := readRequest(part)
	if err != nil || req.Context == "" {
		return req, mr, err
	}
	switch part, err := mr.NextPart(); {
	case err == io.EOF:
		return req, mr, nil
	case err != nil:
		return req, nil, proto.Errorf(proto.Invalid, "reading the submission: %v", err)
	default:
		return req, nil, proto.Errorf(proto.Invalid,
			"the submission has both a context URL and a %q part: send one or the other", part.FormName())
	}
}

// uploadContext stores the "context" part that comes next in mr under name.
func (s *Server) uploadContext(ctx context.Context, mr *multipart.Reader, name string) error {
	part, err := mr.NextPart()
	if err == io.EOF {
		return proto.Errorf(proto.Invalid, "the submission has no \"context\" part after its \"request\" part")
	}
	if err != nil {
		return proto.Errorf(proto.Invalid, "reading the submission: %v", err)
	}
	if part.FormName() != "context" {
		return proto.Errorf(proto.Invalid, "the second part of a submission must be \"context\", not %q", part.FormName())
	}
	return s.storeContext(ctx, name, part)
}

// remoteContext sets the context of spec from the context URL raw: a git repository (a URL ending in .git or
// with a "#ref:subdir") becomes spec.Git, its ref resolved to the commit to build, which run then shows to
// the tag templates; any other URL is an archive the worker downloads, spec.ContextUrl.
func remoteContext(ctx context.Context, raw string, spec *proto.BuildSpec, run *tags.Run) error {
	if !isGitContextURL(raw) {
		u, err := checkContextURL(raw, "context URL")
		if err != nil {
			return err
		}
		spec.ContextUrl = u.String()
		return nil
	}
	g, err := ParseGitContext(raw)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, lsRemoteTimeout)
	defer cancel()
	if g.Commit, g.Ref, err = gitremote.Resolve(ctx, g.Url, g.Ref, ""); err != nil {
		return err
	}
	spec.Git = g
	run.Commit, run.Branch = g.Commit, shortRef(g.Ref)
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
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	err := s.st.DeleteContext(ctx, name)
	if err != nil && proto.ErrorCode(err) != proto.NotFound {
		s.log.ErrorContext(ctx, "could not delete a build context", "name", name, "err", err)
	}
}

// maxDrain bounds what a refused submission's sender may still send before the server answers.
const maxDrain = 8 << 20

// drain reads what is left of a refused submission, up to maxDrain, so that a client still sending it finishes
// and reads the answer (413, 400) instead of seeing its connection reset. Past maxDrain the connection closes.
func drain(body io.Reader) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
}
