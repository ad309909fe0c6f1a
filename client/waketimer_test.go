package client

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/hrtimer"
)

// waitTimeout bounds every wait for a tick: long enough for a loaded
// machine, short enough that a timer that never ticks fails the test.
const waitTimeout = 10 * time.Second

// wakeTimers returns each kind of wakeTimer this platform can make.
func wakeTimers(t *testing.T) map[string]func() wakeTimer {
	t.Helper()
	kinds := map[string]func() wakeTimer{
		"runtime": func() wakeTimer { return newRuntimeTimer(make(chan struct{}, 1)) },
	}
	if pt, err := newPreciseTimer(); err == nil {
		pt.Close()
		kinds["precise"] = func() wakeTimer {
			pt, err := newPreciseTimer()
			if err != nil {
				t.Fatal(err)
			}
			return pt
		}
	} else if runtime.GOOS == "linux" {
		t.Fatalf("no precise timer on Linux: %v", err)
	}
	return kinds
}

func awaitTick(t *testing.T, wt wakeTimer) {
	t.Helper()
	select {
	case <-wt.C():
	case <-time.After(waitTimeout):
		t.Fatalf("no tick within %v", waitTimeout)
	}
}

// TestWakeTimerNeverTicksBeforeItsDeadline: a batch's linger is never cut
// short by the timer (the send loop would only look again, but a timer
// that ticks early would be a broken timer).
func TestWakeTimerNeverTicksBeforeItsDeadline(t *testing.T) {
	for name, mk := range wakeTimers(t) {
		t.Run(name, func(t *testing.T) {
			wt := mk()
			defer wt.Close()
			for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
				start := time.Now()
				wt.Reset(d)
				awaitTick(t, wt)
				if got := time.Since(start); got < d {
					t.Fatalf("armed for %v, ticked after %v", d, got)
				}
			}
		})
	}
}

// TestWakeTimerResetMovesAnArmedDeadline: a deadline brought forward ticks
// then, not at the one it replaced, and a Reset of zero or less ticks at
// once.
func TestWakeTimerResetMovesAnArmedDeadline(t *testing.T) {
	for name, mk := range wakeTimers(t) {
		t.Run(name, func(t *testing.T) {
			wt := mk()
			defer wt.Close()
			wt.Reset(time.Hour)
			wt.Reset(time.Millisecond)
			awaitTick(t, wt)
			wt.Reset(time.Hour)
			wt.Reset(0)
			awaitTick(t, wt)
			wt.Reset(-time.Second)
			awaitTick(t, wt)
		})
	}
}

// TestPreciseTimerFallsBackOnceItsDescriptorFails: if waiting on the
// timerfd ever fails, the send loop is woken at once (the deadline armed
// may never come) and the timer keeps ticking, on the runtime's timers.
func TestPreciseTimerFallsBackOnceItsDescriptorFails(t *testing.T) {
	hr, err := hrtimer.New()
	if err != nil {
		t.Skipf("no hrtimer here: %v", err)
	}
	c := make(chan struct{}, 1)
	wt := &preciseTimer{hr: hr, c: c, done: make(chan struct{}), fallback: newRuntimeTimer(c)}
	defer wt.Close()
	wt.Reset(time.Hour)
	go wt.wait(func() error { return errors.New("injected read failure") })
	awaitTick(t, wt)
	// Nothing waits on the timerfd any more: only the fallback can tick.
	wt.Reset(time.Millisecond)
	awaitTick(t, wt)
}
