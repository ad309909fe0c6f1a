package client

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"sync"
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
	probe := new(lingerClock).newTimer()
	probe.Close()
	if _, ok := probe.(*clockTimer); ok {
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
	defer tickingTimer(t, k, false, "a timer made after the failure").Close()
	// Once the last timer on the failed descriptor closes, the clock
	// forgets the failure and tries an hrtimer again.
	a.Close()
	b.Close()
	defer tickingTimer(t, k, true, "a timer made after the failed clock was released").Close()
}

// tickingTimer makes a timer on k, checks that it is on the clock (onClock)
// or on the runtime's timers, and that it ticks.
func tickingTimer(t *testing.T, k *lingerClock, onClock bool, what string) wakeTimer {
	t.Helper()
	wt := k.newTimer()
	if _, ok := wt.(*clockTimer); ok != onClock {
		t.Fatalf("%s is a %T; want it on the clock: %v", what, wt, onClock)
	}
	wt.Reset(time.Millisecond)
	awaitTick(t, wt)
	return wt
}

// TestLingerClockArmsTheEarliestDeadlineAndTicksOnlyTheDue drives the
// clock's goroutine with expiries the test injects, once each deadline has
// passed: the hrtimer is always armed for the earliest deadline, whatever
// order the timers were armed or moved in, and an expiry ticks exactly the
// timers that are due, so each send loop wakes at its own deadline.
func TestLingerClockArmsTheEarliestDeadlineAndTicksOnlyTheDue(t *testing.T) {
	k := clockOnLinux(t)
	hr, err := hrtimer.New() // armed by the clock, never waited on
	if err != nil {
		t.Fatal(err)
	}
	expiry, stop := make(chan struct{}), make(chan struct{})
	k.hr, k.done = hr, make(chan struct{})
	done := k.done
	go k.run(hr, func() error {
		select {
		case <-expiry:
			return nil
		case <-stop:
			return os.ErrClosed
		}
	}, done)
	timers := map[string]*clockTimer{}
	for _, name := range []string{"a", "b", "c"} {
		timers[name] = k.newTimer().(*clockTimer)
	}
	defer func() {
		closed := make(chan struct{})
		go func() {
			for _, wt := range timers {
				wt.Close()
			}
			close(closed)
		}()
		close(stop) // the last Close waits for the goroutine to return
		<-closed
	}()
	armedFor := func(name string) {
		t.Helper()
		k.mu.Lock()
		defer k.mu.Unlock()
		if want := timers[name].when; !k.armed.Equal(want) {
			t.Fatalf("hrtimer armed for %v, want %s's deadline %v", k.armed, name, want)
		}
	}
	// expire waits for name's deadline to pass, injects one expiry, and
	// checks that exactly the timers in ticked ticked.
	expire := func(name string, ticked ...string) {
		t.Helper()
		k.mu.Lock()
		due := timers[name].when
		k.mu.Unlock()
		for time.Now().Before(due) {
			time.Sleep(100 * time.Microsecond)
		}
		expiry <- struct{}{}
		// The goroutine handles an expiry under the lock: once it has
		// re-armed (or found the queue empty) the ticks are in.
		for deadline := time.Now().Add(waitTimeout); ; {
			k.mu.Lock()
			handled := k.armed.IsZero() || k.armed.After(due)
			k.mu.Unlock()
			if handled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the injected expiry was not handled")
			}
			time.Sleep(100 * time.Microsecond)
		}
		for n, wt := range timers {
			want := slices.Contains(ticked, n)
			select {
			case <-wt.C():
				if !want {
					t.Fatalf("%s ticked at the expiry for %s, before its deadline", n, name)
				}
			default:
				if want {
					t.Fatalf("%s did not tick at the expiry for %s", n, name)
				}
			}
		}
	}
	timers["c"].Reset(30 * time.Millisecond) // armed latest first
	armedFor("c")
	timers["b"].Reset(20 * time.Millisecond)
	armedFor("b")
	timers["a"].Reset(10 * time.Millisecond)
	armedFor("a")
	expire("a", "a")
	armedFor("b")
	timers["c"].Reset(time.Hour) // moved later: b stays the earliest
	armedFor("b")
	expire("b", "b")
	armedFor("c")
	timers["a"].Reset(5 * time.Millisecond) // earlier than c's hour
	armedFor("a")
	timers["b"].Reset(5 * time.Millisecond)
	expire("b", "a", "b") // both due by b's deadline, a's first
	armedFor("c")
}

// TestLingerClockSurvivesSendLoopsComingAndGoing: send loops start, wait
// and end on one clock from several goroutines at once, as partitions'
// producers connect and reconnect: every armed timer ticks, and once the
// last one closes the clock holds nothing.
func TestLingerClockSurvivesSendLoopsComingAndGoing(t *testing.T) {
	k := clockOnLinux(t)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 60 {
				wt := k.newTimer()
				if i%3 == 0 {
					wt.Reset(time.Hour) // moved, then due
				}
				wt.Reset(time.Duration(100*(g+1)) * time.Microsecond)
				awaitTick(t, wt)
				wt.Close()
			}
		})
	}
	wg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.users != 0 || k.hr != nil || k.done != nil || len(k.queue) != 0 || k.broken {
		t.Fatalf("clock after every timer closed: users %d, hrtimer held %v, %d armed, broken %v",
			k.users, k.hr != nil, len(k.queue), k.broken)
	}
}

// TestLingerClockHoldsOneDescriptorForAllItsTimers: a client producing to
// many partitions holds one timerfd for their lingers, and none once the
// last timer is closed (closing one twice does not release the clock from
// under the others); the next timer is on the clock again.
func TestLingerClockHoldsOneDescriptorForAllItsTimers(t *testing.T) {
	k := clockOnLinux(t)
	timerfds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "anon_inode:[timerfd]" {
				n++
			}
		}
		return n
	}
	before := timerfds()
	timers := make([]wakeTimer, 200)
	for i := range timers {
		timers[i] = k.newTimer()
		timers[i].Reset(time.Duration(i+1) * time.Millisecond)
	}
	if got := timerfds() - before; got != 1 {
		t.Errorf("%d timers hold %d more timerfds, want 1", len(timers), got)
	}
	timers[0].Close()
	timers[0].Close()
	timers[1].Reset(time.Millisecond)
	awaitTick(t, timers[1])
	for _, wt := range timers[1:] {
		wt.Close()
	}
	if got := timerfds(); got != before {
		t.Errorf("%d timerfds after the last timer closed, %d before the first", got, before)
	}
	k.mu.Lock()
	released := k.hr == nil && k.done == nil && len(k.queue) == 0 && k.users == 0
	k.mu.Unlock()
	if !released {
		t.Fatal("the clock still holds its hrtimer, armed timers or users after its last timer closed")
	}
	tickingTimer(t, k, true, "the timer made after the clock was released").Close()
}
