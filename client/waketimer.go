package client

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/hrtimer"
)

// wakeTimer wakes a producer's send loop when its oldest batch's linger
// ends. A tick may be stale (from a deadline that was moved or no longer
// matters): the loop checks the queue again on every tick, so a spare tick
// costs one pass and nothing else.
//
// The runtime's timers fire up to a millisecond late in a process whose
// goroutines keep sleeping and waking (internal/hrtimer says why), which at
// a 1 ms linger is most of the batching delay again. So the send loop waits
// on an hrtimer where there is one (Linux), and on the runtime's timers
// elsewhere.
type wakeTimer interface {
	// C delivers a tick at (or after) the deadline of the last Reset.
	C() <-chan struct{}
	// Reset arms the timer to tick in d (at once when d <= 0), replacing
	// any earlier deadline.
	Reset(d time.Duration)
	// Close releases the timer: no tick is armed after it returns (one
	// already due may still be delivered to C, which nobody reads then).
	Close()
}

// makeWakeTimer makes each send loop's timer (a variable so that a
// benchmark can compare the kinds).
var makeWakeTimer = newWakeTimer

// newWakeTimer returns a precise timer, or a runtime timer where there is
// none or it could not be made (no file descriptor left).
func newWakeTimer() wakeTimer {
	if t, err := newPreciseTimer(); err == nil {
		return t
	}
	return newRuntimeTimer(make(chan struct{}, 1))
}

// tick puts a tick on c unless one is pending already: one is enough.
func tick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// runtimeTimer is a wakeTimer on the runtime's own timers.
type runtimeTimer struct {
	c chan struct{}
	t *time.Timer
}

// newRuntimeTimer returns a stopped runtimeTimer that ticks on c.
func newRuntimeTimer(c chan struct{}) *runtimeTimer {
	r := &runtimeTimer{c: c}
	r.t = time.AfterFunc(time.Hour, func() { tick(c) })
	r.t.Stop()
	return r
}

func (r *runtimeTimer) C() <-chan struct{} { return r.c }

func (r *runtimeTimer) Reset(d time.Duration) { r.t.Reset(d) }

func (r *runtimeTimer) Close() { r.t.Stop() }

// preciseTimer is a wakeTimer on an hrtimer, which a goroutine of its own
// waits on and turns into ticks.
type preciseTimer struct {
	hr   *hrtimer.Timer
	c    chan struct{}
	done chan struct{} // closed when the waiting goroutine has returned

	// broken is set if waiting on the hrtimer ever fails (it should not):
	// from then on the timer runs on fallback, which ticks on c too.
	broken   atomic.Bool
	fallback *runtimeTimer
}

func newPreciseTimer() (*preciseTimer, error) {
	hr, err := hrtimer.New()
	if err != nil {
		return nil, err
	}
	c := make(chan struct{}, 1)
	t := &preciseTimer{hr: hr, c: c, done: make(chan struct{}), fallback: newRuntimeTimer(c)}
	go t.wait(hr.Wait)
	return t, nil
}

// wait turns each expiry that expired reports into a tick, until the timer
// is closed. (A test passes a failing expired.)
func (t *preciseTimer) wait(expired func() error) {
	defer close(t.done)
	for {
		if err := expired(); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				t.broken.Store(true)
				tick(t.c) // the deadline armed may never come: let the loop look again
			}
			return
		}
		tick(t.c)
	}
}

func (t *preciseTimer) C() <-chan struct{} { return t.c }

func (t *preciseTimer) Reset(d time.Duration) {
	if t.broken.Load() {
		t.fallback.Reset(d)
		return
	}
	t.hr.Reset(d)
}

func (t *preciseTimer) Close() {
	_ = t.hr.Close()
	<-t.done
	t.fallback.Close()
}
