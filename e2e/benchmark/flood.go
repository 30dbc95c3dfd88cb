package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// floodResults are kiln serve's resident memory around a flood of large webhook deliveries.
type floodResults struct {
	senders, size     int
	idle, after, peak int64       // VmRSS before and after the flood, VmHWM during it
	answers           map[int]int // status → deliveries answered with it
	cut               int         // deliveries whose connection closed before an answer
}

// webhookFlood sends senders deliveries of size bytes at once to the kiln serve at server (process pid):
// pushes about a repository no task builds, signed with a secret no task has, so that each body is read and
// hashed before it is refused: the path the memory budget bounds. It resets the process's peak RSS first
// (clear_refs), so that the peak is the flood's.
func webhookFlood(server string, pid, senders, size int) (floodResults, error) {
	r := floodResults{senders: senders, size: size, answers: map[int]int{}}
	var err error
	if r.idle, err = rss(pid); err != nil {
		return r, err
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return r, fmt.Errorf("resetting the peak RSS: %w", err)
	}
	head := `{"ref":"refs/heads/main","repository":{"clone_url":"https://git.kiln.test/nobody.git"},"padding":"`
	body := append(append([]byte(head), bytes.Repeat([]byte("x"), size-len(head)-2)...), `"}`...)
	mac := hmac.New(sha256.New, []byte("not a task's secret"))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: senders}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, server+"/v1/webhooks/github", bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i))
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.cut++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r.answers[resp.StatusCode]++
		})
	}
	wg.Wait()
	if r.after, err = rss(pid); err != nil {
		return r, err
	}
	r.peak, err = procStatus(pid, "VmHWM:")
	return r, err
}

// procStatus reads a size field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// markdown is the flood's section of BENCHMARKS.md.
func (r floodResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Memory budget under a webhook flood\n\n%d deliveries of %d MB at once to /v1/webhooks/github "+
		"of the kiln serve with no workers: pushes about a repository no task builds, signed with a secret no task "+
		"has, so that each body is read and hashed before it is refused. Bodies in flight are bounded by "+
		"--webhook-budget (64 MiB by default); a delivery that finds no room within 2 s is answered 503. Before the "+
		"budget, the same flood took kiln serve from 71 MB to 1.9 GB.\n\n", r.senders, r.size>>20)
	fmt.Fprintf(&b, "| kiln serve | RSS |\n|---|---|\n| idle, before | %s |\n| peak during the flood (VmHWM) | %s |\n"+
		"| after | %s |\n\n", mb(r.idle), mb(r.peak), mb(r.after))
	var statuses []int
	for s := range r.answers {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	var parts []string
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d × %d", r.answers[s], s))
	}
	if r.cut > 0 {
		parts = append(parts, fmt.Sprintf("%d closed before an answer", r.cut))
	}
	fmt.Fprintf(&b, "Answers: %s. Peak over idle: %s (target: under 400 MB at the peak: %s).\n\n",
		strings.Join(parts, ", "), mb(r.peak-r.idle), met(r.peak < 400e6))
	return b.String()
}
