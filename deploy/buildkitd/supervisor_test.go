package buildkitd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// TestMain runs the test binary as a stand-in for Kiln when KILN_TEST_FAKE_KILN is set: see fakeKiln.
func TestMain(m *testing.M) {
	if os.Getenv("KILN_TEST_FAKE_KILN") != "" {
		fakeKiln()
	}
	os.Exit(m.Run())
}

// fakeKiln supervises a buildkitd (binary $KILN_TEST_BIN, root and socket in $KILN_TEST_DIR), prints
// "pid N" with buildkitd's pid once it is ready, and then waits to be killed.
func fakeKiln() {
	dir := os.Getenv("KILN_TEST_DIR")
	s := New(Config{
		Bin:  os.Getenv("KILN_TEST_BIN"),
		Root: filepath.Join(dir, "root"),
		Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"),
	})
	go s.Run(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", s.PID())
	select {}
}

// newSupervisor returns a Supervisor for the real buildkitd, with its root and socket in a fresh directory.
func newSupervisor(t *testing.T, out *syncBuffer) *Supervisor {
	t.Helper()
	dir := t.TempDir()
	return New(Config{
		Bin:    buildkitdBin(t),
		Root:   filepath.Join(dir, "root"),
		Addr:   "unix://" + filepath.Join(dir, "buildkitd.sock"),
		Stderr: out,
	})
}

// TestSupervisor runs the real buildkitd: it starts, is restarted after being killed, and is stopped when
// Run's context ends. It takes a few seconds.
func TestSupervisor(t *testing.T) {
	var out syncBuffer
	s := newSupervisor(t, &out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd output:\n%s", out.String())
		}
	})

	// A socket left behind by a buildkitd that was killed: nothing listens on it.
	sock := strings.TrimPrefix(s.Addr(), "unix://")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("net.Listen(unix, %s) error: %v", sock, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	stop := run(t, s)
	waitReady(t, s, 2*time.Minute)

	first := s.PID()
	if first == 0 {
		t.Fatalf("PID() = 0 after WaitReady, want buildkitd's pid")
	}
	if got := s.Restarts(); got != 0 {
		t.Errorf("Restarts() = %d before any exit, want 0", got)
	}
	if pgid, err := syscall.Getpgid(first); err != nil || pgid != first {
		t.Errorf("Getpgid(%d) = %d, %v, want %d: buildkitd leads its own process group", first, pgid, err, first)
	}

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatalf("Kill(%d, SIGKILL) error: %v", first, err)
	}
	if !eventually(30*time.Second, func() bool { return s.Restarts() == 1 && s.PID() != 0 }) {
		t.Fatalf("after SIGKILL: Restarts() = %d, PID() = %d, want 1 and a new pid within 30s", s.Restarts(), s.PID())
	}
	second := s.PID()
	if second == first {
		t.Errorf("PID() after restart = %d, want a new pid", second)
	}
	if !reaped(first) {
		t.Errorf("Kill(%d, 0) succeeds after the restart, want ESRCH: the killed buildkitd is reaped", first)
	}
	waitReady(t, s, 2*time.Minute)
	if want := fmt.Sprintf("kiln: buildkitd (pid %d) exited: signal: killed; restarting in 500ms", first); !strings.Contains(out.String(), want) {
		t.Errorf("Stderr does not contain %q", want)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run() after its context ended = %v, want nil", err)
	}
	if got := s.PID(); got != 0 {
		t.Errorf("PID() after Run returned = %d, want 0", got)
	}
	if !reaped(second) {
		t.Errorf("Kill(%d, 0) after Run returned = nil, want ESRCH: buildkitd has exited", second)
	}
	if got := s.Restarts(); got != 1 {
		t.Errorf("Restarts() after Run returned = %d, want 1", got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("WaitReady() after Run returned = %v, want an error at once", err)
	}
}

// TestSupervisorIsolates runs the real buildkitd and checks that its worker runs containers on its bridge
// (BuildKit's "cni" network), behind the firewall rules, which go when Run returns. It takes a few seconds.
func TestSupervisorIsolates(t *testing.T) {
	var out syncBuffer
	s := newSupervisor(t, &out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd output:\n%s", out.String())
		}
	})
	bridge := bridgeName(s.cfg.Root)
	stop := run(t, s)
	waitReady(t, s, 2*time.Minute)

	c, err := client.New(t.Context(), s.Addr())
	if err != nil {
		t.Fatalf("client.New(%s) = %v", s.Addr(), err)
	}
	defer c.Close()
	workers, err := c.ListWorkers(t.Context())
	if err != nil || len(workers) == 0 {
		t.Fatalf("ListWorkers() = %v, %v, want a worker", workers, err)
	}
	if got := workers[0].Labels["org.mobyproject.buildkit.worker.network"]; got != "cni" {
		t.Errorf("worker network label = %q, want \"cni\": the worker is not on its bridge", got)
	}
	for _, tool := range firewallTools {
		if got := rulesOn(t, tool, "INPUT", bridge); got != 1 {
			t.Errorf("%s rules dropping input from %s while buildkitd runs = %d, want 1", tool, bridge, got)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("Run() after its context ended = %v, want nil", err)
	}
	for _, tool := range firewallTools {
		if got := rulesOn(t, tool, "INPUT", bridge); got != 0 {
			t.Errorf("%s rules dropping input from %s after Run returned = %d, want 0", tool, bridge, got)
		}
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("InterfaceByName(%s) after Run returned = nil error, want the bridge gone", bridge)
	}
}

// TestBuildkitdDiesWithKiln runs a stand-in for Kiln that supervises the real buildkitd, SIGKILLs it, and
// checks that buildkitd dies too. It takes a few seconds.
func TestBuildkitdDiesWithKiln(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A buildkitd killed outright leaves what a clean stop removes: its network namespaces, bind-mounted under its
	// root (the next buildkitd on that root clears them), and the firewall rules of the Kiln killed with it
	// (the next Kiln on that root finds them in place).
	t.Cleanup(func() {
		if fw, err := newFirewall(bridgeName(filepath.Join(dir, "root")), firewallTools...); err == nil {
			fw.remove(context.Background())
		}
		namespaces, _ := filepath.Glob(filepath.Join(dir, "root", "net", "cni", "*"))
		for _, ns := range namespaces {
			syscall.Unmount(ns, syscall.MNT_DETACH)
		}
		removeBridge(context.Background(), bridgeName(filepath.Join(dir, "root")))
	})
	kiln := exec.Command(exe, "-test.run=^$")
	kiln.Env = append(os.Environ(), "KILN_TEST_FAKE_KILN=1", "KILN_TEST_BIN="+buildkitdBin(t), "KILN_TEST_DIR="+dir)
	kiln.Stderr = os.Stderr
	stdout, err := kiln.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kiln.Start(); err != nil {
		t.Fatalf("starting the stand-in for Kiln: %v", err)
	}
	t.Cleanup(func() {
		kiln.Process.Kill()
		kiln.Wait()
	})

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the stand-in for Kiln did not report buildkitd ready within 2 minutes")
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "pid "))
	if err != nil || pid <= 0 {
		t.Fatalf("stand-in for Kiln said %q, want \"pid N\"", line)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // should the test fail, leave nothing running

	if err := kiln.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing the stand-in for Kiln: %v", err)
	}
	kiln.Wait()
	if !eventually(10*time.Second, func() bool { return dead(pid) }) {
		t.Errorf("buildkitd (pid %d) still running 10s after Kiln was SIGKILLed, want it killed with Kiln", pid)
	}
}

// TestStopKillsAfterTimeout supervises a shell script that ignores SIGTERM and has a child of its own: when
// Run's context ends, the script gets SIGTERM, and after 10s its whole process group gets SIGKILL. It takes
// more than 10 seconds.
func TestStopKillsAfterTimeout(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "stubborn")
	grandchild := filepath.Join(dir, "grandchild.pid")
	body := "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > " + grandchild + "\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Bin: script, Root: filepath.Join(dir, "root"), Addr: "unix://" + filepath.Join(dir, "sock")})
	stop := run(t, s)

	var sleepPID int
	if !eventually(10*time.Second, func() bool {
		b, err := os.ReadFile(grandchild)
		sleepPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && sleepPID > 0 && s.PID() != 0
	}) {
		t.Fatalf("the script did not start its child within 10s")
	}
	t.Cleanup(func() { syscall.Kill(sleepPID, syscall.SIGKILL) })
	pid := s.PID()

	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run() after its context ended = %v, want nil", err)
	}
	if d := time.Since(begin); d < stopTimeout || d > stopTimeout+5*time.Second {
		t.Errorf("Run returned %s after its context ended, want about %s (SIGTERM ignored, then SIGKILL)", d, stopTimeout)
	}
	if !reaped(pid) {
		t.Errorf("Kill(%d, 0) after Run returned = nil, want ESRCH", pid)
	}
	if !eventually(5*time.Second, func() bool { return dead(sleepPID) }) {
		t.Errorf("the script's child (pid %d) is still running, want it killed with the process group", sleepPID)
	}
}

func TestRunErrors(t *testing.T) {
	bin := buildkitdBin(t)
	dir := t.TempDir()

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	busy := filepath.Join(dir, "busy.sock")
	ln, err := net.Listen("unix", busy)
	if err != nil {
		t.Fatalf("net.Listen(unix, %s) error: %v", busy, err)
	}
	t.Cleanup(func() { ln.Close() })

	root := filepath.Join(dir, "root")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no binary", cfg: Config{Root: root, Addr: "unix://" + filepath.Join(dir, "a.sock")}, want: "FindBinary"},
		{name: "no root", cfg: Config{Bin: bin, Addr: "unix://" + filepath.Join(dir, "b.sock")}, want: "Config.Root"},
		{name: "no address", cfg: Config{Bin: bin, Root: root}, want: "Config.Addr"},
		{name: "binary missing", cfg: Config{Bin: filepath.Join(dir, "nope"), Root: root, Addr: "unix://" + filepath.Join(dir, "c.sock")}, want: "no such file"},
		{name: "file where the socket goes", cfg: Config{Bin: bin, Root: root, Addr: "unix://" + file}, want: "not a socket"},
		{name: "socket in use", cfg: Config{Bin: bin, Root: root, Addr: "unix://" + busy}, want: "another process is listening"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := s.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run() = %v, want an error containing %q", err, tt.want)
			}
			if got := s.PID(); got != 0 {
				t.Errorf("PID() after a failed Run = %d, want 0", got)
			}
			if err := s.WaitReady(ctx); err == nil || ctx.Err() != nil {
				t.Errorf("WaitReady() after a failed Run = %v, want an error at once", err)
			}
			if err := s.Run(ctx); err == nil {
				t.Errorf("second Run() = nil, want an error")
			}
		})
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("Stat(%s) after Run refused it: %v, want the live socket left alone", busy, err)
	}
}

func TestCheckRoot(t *testing.T) {
	tests := []struct {
		name    string
		euid    int
		wantErr bool
	}{
		{name: "root", euid: 0},
		{name: "user", euid: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRoot(tt.euid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkRoot(%d) = %v, want error %t", tt.euid, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "needs root") {
				t.Errorf("checkRoot(%d) = %q, want it to say buildkitd needs root", tt.euid, err)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	base := []string{"--oci-worker=true", "--containerd-worker=false", "--oci-worker-snapshotter=overlayfs",
		"--allow-insecure-entitlement", "network.host", "--root", "/r", "--addr", "unix:///s"}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "plain", cfg: Config{Root: "/r", Addr: "unix:///s"}, want: base},
		{name: "config file", cfg: Config{Root: "/r", Addr: "unix:///s", Config: "/etc/b.toml"}, want: append(slices.Clone(base), "--config", "/etc/b.toml")},
		{name: "extra args", cfg: Config{Root: "/r", Addr: "unix:///s", Config: "/c", ExtraArgs: []string{"--debug"}}, want: append(slices.Clone(base), "--config", "/c", "--debug")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.args(); !slices.Equal(got, tt.want) {
				t.Errorf("args() = %q, want %q", got, tt.want)
			}
		})
	}
}
