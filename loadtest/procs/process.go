package procs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Spec is how to run one child process.
type Spec struct {
	// Name identifies the process in logs and chaos schedules ("bookie-1").
	Name string
	// Path and Args are the executable and its arguments (without argv[0]).
	Path string
	Args []string
	// LogDir receives <Name>.log with the child's stdout and stderr
	// (appended across restarts). Empty discards the output.
	LogDir string
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL
	// (default 5s).
	StopGrace time.Duration
}

// State of a supervised process.
type State int

// Process states.
const (
	Stopped State = iota
	Running
	Paused
)

func (s State) String() string { return [...]string{"stopped", "running", "paused"}[s] }

// ErrNotRunning is returned by Kill, Pause and Resume on a process that is
// not in the state they need.
var ErrNotRunning = errors.New("procs: process not running")

// Process is a child process that can be started, killed, paused, resumed
// and restarted. It is safe for concurrent use.
type Process struct {
	spec Spec
	log  *slog.Logger
	mu   struct {
		sync.Mutex
		cmd    *exec.Cmd
		state  State
		exited chan struct{} // closed when the current child is reaped
		starts int
	}
}

// New returns a stopped process.
func New(spec Spec, log *slog.Logger) *Process {
	if spec.StopGrace == 0 {
		spec.StopGrace = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Process{spec: spec, log: log}
}

// Name returns the spec's name.
func (p *Process) Name() string { return p.spec.Name }

// State returns the current state.
func (p *Process) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.state
}

// Starts returns how many times the process was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.starts
}

// Pid returns the running child's pid, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd == nil || p.mu.state == Stopped {
		return 0
	}
	return p.mu.cmd.Process.Pid
}

// Start starts the child; it is an error if it is already running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.state != Stopped {
		return fmt.Errorf("procs: %s already %v", p.spec.Name, p.mu.state)
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.SysProcAttr = sysProcAttr()
	out, err := p.openLog()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		closeLog(out)
		return fmt.Errorf("procs: start %s: %w", p.spec.Name, err)
	}
	exited := make(chan struct{})
	p.mu.cmd, p.mu.state, p.mu.exited = cmd, Running, exited
	p.mu.starts++
	p.log.Info("procs: started", "name", p.spec.Name, "pid", cmd.Process.Pid)
	go p.reap(cmd, exited, out)
	return nil
}

// reap waits for the child to exit and marks the process stopped. It is
// the only goroutine a Process starts; it ends when the child exits, which
// Stop guarantees.
func (p *Process) reap(cmd *exec.Cmd, exited chan struct{}, out *os.File) {
	err := cmd.Wait()
	closeLog(out)
	p.mu.Lock()
	if p.mu.cmd == cmd {
		p.mu.state = Stopped
	}
	p.mu.Unlock()
	p.log.Info("procs: exited", "name", p.spec.Name, "pid", cmd.Process.Pid, "err", err)
	close(exited)
}

func (p *Process) openLog() (*os.File, error) {
	if p.spec.LogDir == "" {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(p.spec.LogDir, p.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("procs: log for %s: %w", p.spec.Name, err)
	}
	return f, nil
}

func closeLog(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// signal sends sig to the running child if its state is one of want.
func (p *Process) signal(sig syscall.Signal, next State, want ...State) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := false
	for _, s := range want {
		ok = ok || p.mu.state == s
	}
	if !ok {
		return fmt.Errorf("%w: %s is %v", ErrNotRunning, p.spec.Name, p.mu.state)
	}
	if err := p.mu.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("procs: signal %v to %s: %w", sig, p.spec.Name, err)
	}
	p.mu.state = next
	p.log.Info("procs: signalled", "name", p.spec.Name, "signal", sig.String())
	return nil
}

// Kill sends SIGKILL and waits until the child is reaped or ctx ends.
func (p *Process) Kill(ctx context.Context) error {
	exited := p.exitedCh()
	if err := p.signal(syscall.SIGKILL, Stopped, Running, Paused); err != nil {
		return err
	}
	return waitClosed(ctx, exited)
}

// Pause sends SIGSTOP: the child stays alive but does nothing (its leases
// run out) until Resume.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP, Paused, Running) }

// Resume sends SIGCONT to a paused child.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT, Running, Paused) }

// Restart starts the child again after a Kill (the same command line).
func (p *Process) Restart() error { return p.Start() }

// Stop ends the child: SIGCONT (in case it is paused), SIGTERM, and SIGKILL
// after StopGrace. It waits until the child is reaped. Stopping a stopped
// process does nothing.
func (p *Process) Stop() error {
	exited := p.exitedCh()
	if exited == nil {
		return nil
	}
	_ = p.signal(syscall.SIGCONT, Running, Paused)
	_ = p.signal(syscall.SIGTERM, Running, Running)
	timer := time.NewTimer(p.spec.StopGrace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
	}
	_ = p.signal(syscall.SIGKILL, Stopped, Running, Paused)
	<-exited
	return nil
}

// ReadyWhile runs probe with a context that also ends when the current
// child exits, so that waiting for readiness stops at once if the child
// dies. The returned error says which happened.
func (p *Process) ReadyWhile(ctx context.Context, probe func(context.Context) error) error {
	exited := p.exitedCh()
	if exited == nil {
		return fmt.Errorf("%w: %s was never started", ErrNotRunning, p.spec.Name)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Ends when pctx does (at the latest when ReadyWhile returns).
	go func() {
		select {
		case <-exited:
			cancel()
		case <-pctx.Done():
		}
	}()
	err := probe(pctx)
	if err != nil && ctx.Err() == nil && isClosed(exited) {
		return fmt.Errorf("procs: %s exited before it was ready: %w", p.spec.Name, ErrNotRunning)
	}
	return err
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (p *Process) exitedCh() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.exited
}

func waitClosed(ctx context.Context, ch chan struct{}) error {
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
