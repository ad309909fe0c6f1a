package client

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
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
	if _, ok := new(lingerClock).newTimer().(*clockTimer); ok {
		kinds["clock"] = func() wakeTimer { return new(lingerClock).newTimer() }
	} else if runtime.GOOS == "linux" {
		t.Fatal("no hrtimer for the linger clock on Linux")
	}
	return kinds
}

// clockOnLinux returns a linger clock, skipping the test where it would
// only hand out runtime timers.
func clockOnLinux(t *testing.T) *lingerClock {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the linger clock needs an hrtimer (Linux)")
	}
	return new(lingerClock)
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

// TestLingerClockFallsBackOnceItsDescriptorFails: if waiting on the
// timerfd ever fails, every armed send loop is woken at once (its deadline
// may never come) and its timer keeps ticking, on the runtime's timers, as
// do timers made afterwards.
func TestLingerClockFallsBackOnceItsDescriptorFails(t *testing.T) {
	k := clockOnLinux(t)
	a, b := k.newTimer(), k.newTimer()
	defer a.Close()
	defer b.Close()
	a.Reset(time.Hour)
	b.Reset(time.Hour)
	// Stop the real waiter first, as Close of the last timer would, then
	// run one whose wait fails on the clock's hrtimer.
	k.mu.Lock()
	hr, done := k.hr, k.done
	k.hr = nil
	k.mu.Unlock()
	hr.Reset(0) // wakes the real waiter, which sees hr is no longer the clock's
	<-done
	k.mu.Lock()
	k.hr, k.done = hr, make(chan struct{})
	k.mu.Unlock()
	go k.run(hr, func() error { return errors.New("injected read failure") }, k.done)
	awaitTick(t, a)
	awaitTick(t, b)
	// Nothing waits on the timerfd any more: only the fallbacks can tick.
	a.Reset(time.Millisecond)
	awaitTick(t, a)
	c := k.newTimer()
	defer c.Close()
	if _, ok := c.(*runtimeTimer); !ok {
		t.Fatalf("a timer made after the failure is a %T, want the runtime's", c)
	}
	c.Reset(time.Millisecond)
	awaitTick(t, c)
}

// TestLingerClockTicksEachTimerAtItsOwnDeadline: many send loops share one
// hrtimer, and each still ticks at its own deadline, never before it, in
// deadline order, whatever order they were armed in, including a deadline
// moved later and one moved earlier.
func TestLingerClockTicksEachTimerAtItsOwnDeadline(t *testing.T) {
	k := clockOnLinux(t)
	const n = 40
	timers := make([]wakeTimer, n)
	for i := range timers {
		timers[i] = k.newTimer()
		defer timers[i].Close()
	}
	start := time.Now()
	due := make([]time.Duration, n)
	for i := n - 1; i >= 0; i-- { // armed latest first
		due[i] = time.Duration(i+1) * time.Millisecond
		timers[i].Reset(due[i])
	}
	timers[0].Reset(time.Hour) // moved later, then back
	due[0] = 3 * time.Millisecond
	timers[0].Reset(due[0])
	due[n-1] = 500 * time.Microsecond // moved earlier
	timers[n-1].Reset(due[n-1])
	for i, wt := range timers {
		awaitTick(t, wt)
		if got := time.Since(start); got < due[i] {
			t.Fatalf("timer %d due after %v ticked after %v", i, due[i], got)
		}
	}
}

// TestLingerClockHoldsOneDescriptorForAllItsTimers: a client producing to
// many partitions holds one timerfd and one goroutine for their lingers,
// and none once the last timer is closed; the next timer makes them again.
func TestLingerClockHoldsOneDescriptorForAllItsTimers(t *testing.T) {
	k := clockOnLinux(t)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	timers := make([]wakeTimer, 200)
	for i := range timers {
		timers[i] = k.newTimer()
		timers[i].Reset(time.Duration(i+1) * time.Millisecond)
	}
	if got := fds() - before; got > 1 {
		t.Errorf("%d timers hold %d more descriptors, want 1", len(timers), got)
	}
	for _, wt := range timers {
		wt.Close()
	}
	if got := fds(); got > before {
		t.Errorf("%d descriptors after the last timer closed, %d before the first", got, before)
	}
	k.mu.Lock()
	released := k.hr == nil && k.done == nil && len(k.queue) == 0
	k.mu.Unlock()
	if !released {
		t.Fatal("the clock still holds its hrtimer or armed timers after its last timer closed")
	}
	again := k.newTimer()
	defer again.Close()
	again.Reset(time.Millisecond)
	awaitTick(t, again)
}
