package basepoll_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store/storetest"
)

// TestDigest: Digest asks the registry for a tag's digest with one HEAD and records nothing; a registry that
// answers 429 is left alone for the wait it names, which the error tells.
func TestDigest(t *testing.T) {
	env := storetest.New(t)
	reg := newRegistry(t)
	clk := newClock()
	p := newPoller(t, env, &tagList{}, clk)
	want := reg.push(t, "team/base", "1")

	got, err := p.Digest(t.Context(), reg.ref("team/base", "1"))
	if err != nil || got != want {
		t.Fatalf("Digest(%s) = %q, %v, want %s", reg.ref("team/base", "1"), got, err, want)
	}
	if n := reg.headsOf("team/base", "1"); n != 1 {
		t.Errorf("Digest sent %d HEADs, want 1", n)
	}
	if ts := tagState(t, env, reg.ref("team/base", "1")); ts.GetDigest() != "" || ts.GetNextPoll() != nil {
		t.Errorf("Digest recorded %+v on the tag, want nothing", ts)
	}

	if _, err := p.Digest(t.Context(), reg.ref("team/base", "2")); err == nil {
		t.Errorf("Digest of a tag the registry does not have = nil error, want one")
	}
	if _, err := p.Digest(t.Context(), reg.host+"/team/base@"+want); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Digest of a digest reference = %v, want an invalid error", err)
	}

	reg.setFailure(&failure{path: "/manifests/", status: http.StatusTooManyRequests, retryAfter: "120"})
	_, err = p.Digest(t.Context(), reg.ref("team/base", "1"))
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 120*time.Second {
		t.Fatalf("Digest answered 429 with Retry-After 120 = %v, want an error whose RetryAfter is 2m0s", err)
	}
	reg.setFailure(nil)
	heads := reg.allHeads()
	clk.Advance(20 * time.Second)
	_, err = p.Digest(t.Context(), reg.ref("team/base", "1"))
	if !errors.As(err, &ra) || ra.RetryAfter() != 100*time.Second {
		t.Errorf("Digest 20s into a 2m hold = %v, want an error whose RetryAfter is 1m40s", err)
	}
	if n := reg.allHeads(); n != heads {
		t.Errorf("Digest during the hold sent %d HEADs, want none", n-heads)
	}
	clk.Advance(2 * time.Minute)
	if got, err := p.Digest(t.Context(), reg.ref("team/base", "1")); err != nil || got != want {
		t.Errorf("Digest after the hold = %q, %v, want %s", got, err, want)
	}
}
