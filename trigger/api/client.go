package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/kilnbuild/kiln/proto"
)

// Client speaks Kiln's HTTP API. An error answer comes back as a *proto.Error with the code and message the
// server gave; a server that cannot be reached is a proto.Unavailable error.
type Client struct {
	server string
	token  string
	hc     *http.Client
}

// NewClient returns a client of the Kiln server at server, such as "http://127.0.0.1:8080". A non-empty token
// is sent as a bearer token with every request.
func NewClient(server, token string) *Client {
	// No overall timeout: following a log lasts as long as the build. Callers bound calls with their ctx.
	return &Client{server: strings.TrimRight(server, "/"), token: token, hc: &http.Client{}}
}

// SubmitRun submits a build of buildContext, a tar or gzip-compressed tar archive such as PackContext writes,
// and returns the run as queued. The context is streamed as it is read, never held whole in memory. When
// req.Context names a context URL, buildContext must be nil: the server fetches the context itself.
func (c *Client) SubmitRun(ctx context.Context, req BuildRequest, buildContext io.Reader) (*Run, error) {
	switch {
	case req.Context != "" && buildContext != nil:
		return nil, proto.Errorf(proto.Invalid, "a submission has a context URL or a context archive, not both")
	case req.Context == "" && buildContext == nil:
		return nil, proto.Errorf(proto.Invalid, "a submission needs a context URL or a context archive")
	case req.Context != "":
		resp, err := c.doJSON(ctx, http.MethodPost, "/v1/runs", req)
		if err != nil {
			return nil, err
		}
		return decodeRun(resp)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		werr = writeSubmission(mw, req, buildContext)
		pw.CloseWithError(werr)
	}()
	resp, err := c.do(ctx, http.MethodPost, "/v1/runs", pr, mw.FormDataContentType())
	pr.CloseWithError(errSubmissionOver) // stops the writer if the server answered early
	<-done
	if err != nil {
		if werr != nil && !errors.Is(werr, io.ErrClosedPipe) && !errors.Is(werr, errSubmissionOver) && ctx.Err() == nil {
			return nil, werr // the body failed first; the transport error only echoes it
		}
		return nil, err
	}
	return decodeRun(resp)
}

// errSubmissionOver stops the writer of a submission whose request has ended; it is never the cause of a failure.
var errSubmissionOver = errors.New("the submission is over")

// writeSubmission writes the two parts of a submission to mw and closes it.
func writeSubmission(mw *multipart.Writer, req BuildRequest, buildContext io.Reader) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="request"`)
	h.Set("Content-Type", "application/json")
	part, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("writing the request part: %w", err)
	}
	if err := json.NewEncoder(part).Encode(req); err != nil {
		return fmt.Errorf("writing the request part: %w", err)
	}
	part, err = mw.CreateFormFile("context", "context.tar.gz")
	if err != nil {
		return fmt.Errorf("writing the context part: %w", err)
	}
	if _, err := io.Copy(part, buildContext); err != nil {
		return fmt.Errorf("sending the build context: %w", err)
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("ending the submission: %w", err)
	}
	return nil
}

// Run returns the run with the given ID.
func (c *Client) Run(ctx context.Context, id string) (*Run, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, "")
	if err != nil {
		return nil, err
	}
	return decodeRun(resp)
}

// ListRuns returns the latest runs, newest first: of the given status unless status is "", and at most limit
// of them (0 lets the server choose, 20).
func (c *Client) ListRuns(ctx context.Context, status string, limit int) ([]*Run, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	p := "/v1/runs"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list runList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("reading the list of runs: %w", err)
	}
	return list.Runs, nil
}

// Log copies the log of run id to w. With follow, it keeps copying as the run writes until the log is finished
// or ctx ends.
func (c *Client) Log(ctx context.Context, id string, follow bool, w io.Writer) error {
	p := "/v1/runs/" + url.PathEscape(id) + "/log"
	if follow {
		p += "?follow=true"
	}
	resp, err := c.do(ctx, http.MethodGet, p, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("reading the log of run %s: %w", id, err)
	}
	return nil
}

// Cancel asks for run id to stop and returns it: Canceled when it was still queued, still Running with
// CancelRequested when its worker has yet to stop it.
func (c *Client) Cancel(ctx context.Context, id string) (*Run, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/cancel", nil, "")
	if err != nil {
		return nil, err
	}
	return decodeRun(resp)
}

// Ready returns nil when the server is ready to take runs, and a proto.Unavailable error with its reason when
// it is not.
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// do sends a request and returns the response when its status is 2xx; any other answer becomes the error
// it describes.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "the Kiln server address %q is not valid: %v", c.server, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return nil, proto.Errorf(proto.Unavailable, "cannot reach the Kiln server at %s: %w", c.server, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.answerError(resp)
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// answerError turns an error answer into a *proto.Error: the code and message of Kiln's JSON error body, or
// when something else answered (a proxy), the kind its status stands for.
func (c *Client) answerError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body errorBody
	if err := json.Unmarshal(data, &body); err == nil && body.Error.Code != "" {
		return &proto.Error{Code: body.Error.Code, Message: body.Error.Message}
	}
	var ready struct{ Status, Reason string }
	if err := json.Unmarshal(data, &ready); err == nil && ready.Reason != "" { // GET /readyz
		return proto.Errorf(proto.Unavailable, "the Kiln server at %s is not ready: %s", c.server, ready.Reason)
	}
	msg := fmt.Sprintf("the Kiln server at %s answered %s", c.server, resp.Status)
	if text := strings.TrimSpace(string(data)); text != "" && len(text) < 200 && !strings.ContainsAny(text, "<{") {
		msg += ": " + text
	}
	return &proto.Error{Code: codeForStatus(resp.StatusCode), Message: msg}
}

// decodeRun reads a run from a 2xx answer and closes it.
func decodeRun(resp *http.Response) (*Run, error) {
	defer resp.Body.Close()
	var run Run
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil {
		return nil, fmt.Errorf("reading the run in the answer: %w", err)
	}
	return &run, nil
}
