package hrtimer

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timer is a one-shot timer on a Linux timerfd. Reset and Close may be
// called from any goroutine; one goroutine at a time waits.
type Timer struct {
	f  *os.File
	rc syscall.RawConn
}

// New makes a disarmed timer. It fails when the process has no descriptor
// left, or the runtime's poller will not watch the timerfd.
func New() (*Timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "hrtimer")
	// Only a file the poller watches can be waited on without holding a
	// thread; the poller refusing it shows as a file without deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &Timer{f: f, rc: rc}, nil
}

// Reset arms the timer to expire in d (at once when d <= 0), replacing the
// deadline armed before, and forgetting an expiry not yet waited for.
func (t *Timer) Reset(d time.Duration) {
	if d <= 0 {
		d = 1 // a zero value would disarm the timer, not fire it
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	// Control keeps the descriptor from being closed and reused while it
	// is set. Setting a relative time on an open timerfd does not fail,
	// and on a closed one there is nothing left to arm.
	_ = t.rc.Control(func(fd uintptr) { _ = unix.TimerfdSettime(int(fd), 0, &spec, nil) })
}

// Wait blocks until the armed deadline has passed (at once if it passed
// since the last Wait), or the timer is closed (an error wrapping
// os.ErrClosed).
func (t *Timer) Wait() error {
	var buf [8]byte // how many expiries, which does not matter here
	_, err := t.f.Read(buf[:])
	return err
}

// Close releases the descriptor and ends a Wait in progress.
func (t *Timer) Close() error { return t.f.Close() }
