package procs

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sleeper returns a spec for a long-running shell child that prints a line
// at start and exits on SIGTERM.
func sleeper(t *testing.T) Spec {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return Spec{
		Name:      "sleeper",
		Path:      sh,
		Args:      []string{"-c", "echo started; trap 'exit 0' TERM; while :; do sleep 0.05; done"},
		LogDir:    t.TempDir(),
		StopGrace: 5 * time.Second,
	}
}

func startOrFail(t *testing.T, p *Process) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
}

// procState reads the kernel's state letter of pid (R, S, T, Z...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return strings.Fields(s[i+1:])[0]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKillThenRestartRunsANewChild(t *testing.T) {
	p := New(sleeper(t), nil)
	startOrFail(t, p)
	waitFor(t, "first run in the log", func() bool { return logCount(p) == 1 })
	first := p.Pid()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if p.State() != Stopped || syscall.Kill(first, 0) == nil {
		t.Fatalf("killed child still alive (state %v)", p.State())
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == first || p.Pid() == 0 || p.Starts() != 2 {
		t.Fatalf("restart did not run a new child: pid %d (was %d), starts %d", p.Pid(), first, p.Starts())
	}
	waitFor(t, "both runs in the log", func() bool { return logCount(p) == 2 })
}

func TestPauseStopsTheChildUntilResume(t *testing.T) {
	p := New(sleeper(t), nil)
	startOrFail(t, p)
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stopped state T", func() bool { return procState(t, p.Pid()) == "T" })
	if err := p.Pause(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Pause: %v, want ErrNotRunning", err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running again", func() bool { s := procState(t, p.Pid()); return s == "S" || s == "R" })
}

func TestStopEndsAPausedChild(t *testing.T) {
	p := New(sleeper(t), nil)
	startOrFail(t, p)
	pid := p.Pid()
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.State() != Stopped || syscall.Kill(pid, 0) == nil {
		t.Fatal("paused child survived Stop")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStopKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	spec := sleeper(t)
	spec.Args = []string{"-c", "trap '' TERM; while :; do sleep 0.05; done"}
	spec.StopGrace = 200 * time.Millisecond
	p := New(spec, nil)
	startOrFail(t, p)
	pid := p.Pid()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatal("child survived Stop")
	}
}

func TestKillOfAStoppedProcessIsAnError(t *testing.T) {
	p := New(sleeper(t), nil)
	if err := p.Kill(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Kill of never-started process: %v", err)
	}
}

func TestWaitHTTPGivesUpWhenContextEnds(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := WaitHTTP(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/readyz"); err == nil {
		t.Fatal("WaitHTTP succeeded with nothing listening")
	}
}

// A port from FreePort can be listened on and lies below the kernel's
// ephemeral range, where no outgoing connection or port-0 listener takes
// it while a child restarts.
func TestFreePortIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 10000 || port >= lo {
			t.Fatalf("port %d outside [10000, %d)", port, lo)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d not free: %v", port, err)
		}
		l.Close()
	}
}

func logCount(p *Process) int {
	log, _ := os.ReadFile(filepath.Join(p.spec.LogDir, "sleeper.log"))
	return strings.Count(string(log), "started")
}
