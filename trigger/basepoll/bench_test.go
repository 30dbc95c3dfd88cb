package basepoll_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// BenchmarkCycle is one polling cycle of 1,000 tracked tags (100 repositories of 10 tags; the 3,000 tasks
// that share them are the index's business, which hands each tag over once) by two Pollers in two "processes"
// on the same JetStream. It fails unless each tag is asked for exactly once per cycle, and reports the HEADs
// and the requests of any kind (pings, tokens) per tag per cycle.
func BenchmarkCycle(b *testing.B) {
	const repos, tagsPerRepo = 100, 10
	env, reg, clk := storetest.New(b), newRegistry(b), newClock()
	other := secondProcess(b, env)
	tags := &tagList{}
	for r := range repos {
		repo := fmt.Sprintf("team/base%d", r)
		reg.push(b, repo, "0")
		for i := range tagsPerRepo {
			if i > 0 {
				reg.tag(b, repo, "0", strconv.Itoa(i))
			}
			tags.refs = append(tags.refs, reg.ref(repo, strconv.Itoa(i)))
		}
	}
	quiet := func(p *basepoll.Poller) { p.Logger = slog.New(slog.DiscardHandler) }
	pollers := []*basepoll.Poller{newPoller(b, env, tags, clk, quiet), newPoller(b, other, tags, clk, quiet)}
	pollTogether(b, pollers...) // the first digests, and each repository's ping

	n := len(tags.refs)
	cycles, heads, requests := 0, 0, 0
	for b.Loop() {
		clk.Advance(cycle)
		before, beforeAll := reg.allHeads(), reg.allRequests()
		passes := pollTogether(b, pollers...)
		got := reg.allHeads() - before
		requests += reg.allRequests() - beforeAll
		if polled := passes[0].Polled + passes[1].Polled; got != n || polled != n {
			b.Fatalf("cycle %d: %d HEADs and %d polls (%d + %d), want %d of each", cycles+1, got, polled,
				passes[0].Polled, passes[1].Polled, n)
		}
		cycles++
		heads += got
	}
	b.ReportMetric(float64(heads)/float64(cycles*n), "HEADs/tag/cycle")
	b.ReportMetric(float64(requests)/float64(cycles*n), "requests/tag/cycle")
}
