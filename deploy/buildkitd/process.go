package buildkitd

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long buildkitd has to exit after SIGTERM before its process group is sent SIGKILL.
const stopTimeout = 10 * time.Second

// child is one buildkitd process.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been reaped
	err    error         // what Wait returned; read only after exited is closed
}

// args returns buildkitd's command-line arguments for cfg.
func (cfg Config) args() []string {
	args := []string{
		"--oci-worker=true",
		"--containerd-worker=false",
		"--oci-worker-snapshotter=overlayfs",
		// A build asks for the host's network only when Kiln let it (serve --allow-host-network).
		"--allow-insecure-entitlement", "network.host",
		"--root", cfg.Root,
		"--addr", cfg.Addr,
	}
	if cfg.Config != "" {
		args = append(args, "--config", cfg.Config)
	}
	return append(args, cfg.ExtraArgs...)
}

// start removes a stale socket at cfg.Addr and starts buildkitd.
//
// The child gets its own process group, so that signals sent to Kiln's group (a Ctrl-C in a terminal) reach
// Kiln alone and Kiln decides how buildkitd stops, and SIGKILL as its parent-death signal, so that it does not
// outlive Kiln. The kernel sends that signal when the thread that started the child exits, not the process;
// so the goroutine that starts the child stays locked to its thread until the child has exited.
func start(cfg Config) (*child, error) {
	if err := removeStaleSocket(cfg.Addr); err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.Bin, cfg.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// BuildKit clips a step's output past 2 MiB or above about 200 KiB/s: a test step's output is the point of
	// running it, so the whole of it goes to the run's log. The environment can still say otherwise.
	cmd.Env = append([]string{"BUILDKIT_STEP_LOG_MAX_SIZE=-1", "BUILDKIT_STEP_LOG_MAX_SPEED=-1"}, os.Environ()...)
	if cfg.Stderr != nil {
		cmd.Stdout = cfg.Stderr
		cmd.Stderr = cfg.Stderr
		// Processes buildkitd leaves behind could hold the output pipe open; do not wait for them.
		cmd.WaitDelay = time.Second
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}

	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// pid returns the child's process id.
func (c *child) pid() int {
	return c.cmd.Process.Pid
}

// exitReason says how the child exited, such as "exit status 1" or "signal: killed". Call it only after
// exited is closed.
func (c *child) exitReason() string {
	if c.err == nil {
		return "exit status 0"
	}
	return c.err.Error()
}

// stop sends the child SIGTERM, then SIGKILL to its process group if it has not exited within stopTimeout, and
// returns once it has exited.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.exited
}

// removeStaleSocket removes the unix socket at addr, if addr is a unix:// address and no process listens there.
// It returns an error when something other than a socket is in the way, or when a process answers there:
// that is another buildkitd, or something else, which Kiln must not take the address from.
func removeStaleSocket(addr string) error {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		return nil
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking for a stale socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s is in the way of buildkitd's socket: it is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("another process is listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}
