package client

import (
	"container/heap"
	"sync"
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
// a 1 ms linger is most of the batching delay again. So the send loops wait
// on their client's lingerClock, an hrtimer, where there is one (Linux), and
// on the runtime's timers elsewhere.
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

// makeWakeTimer makes each send loop's timer on its client's clock (a
// variable so that a benchmark can compare the kinds).
var makeWakeTimer = (*lingerClock).newTimer

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

// lingerClock times the lingers of every send loop of one client on a
// single hrtimer, which one goroutine waits on: a process producing to
// thousands of partitions holds one descriptor per client, not one per
// partition. The hrtimer is armed for the earliest deadline; when it
// expires, every timer that is due ticks and the next deadline is armed.
// It is made when the first timer is and released when the last one
// closes (which also forgets a failure, so that the next timer tries an
// hrtimer again). The zero value is ready to use.
type lingerClock struct {
	mu    sync.Mutex
	users int            // open timers
	hr    *hrtimer.Timer // nil while no timer is open, or where there is none
	done  chan struct{}  // closed when the goroutine waiting on hr returns
	queue deadlines      // armed timers, earliest first
	armed time.Time      // the deadline hr is set for; zero when none
	// broken is set if waiting on hr ever fails (it should not): until
	// the last timer closes, every timer runs on the runtime's timers, as
	// where there is no hrtimer.
	broken bool
}

// newTimer returns a timer on the clock, or on the runtime's timers where
// no hrtimer can be made (off Linux, or no descriptor left).
func (k *lingerClock) newTimer() wakeTimer {
	c := make(chan struct{}, 1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hr == nil && !k.broken {
		hr, err := hrtimer.New()
		if err != nil {
			return newRuntimeTimer(c)
		}
		k.hr, k.done = hr, make(chan struct{})
		go k.run(hr, hr.Wait, k.done)
	}
	if k.broken {
		return newRuntimeTimer(c)
	}
	k.users++
	return &clockTimer{clock: k, c: c, index: -1, fallback: newRuntimeTimer(c)}
}

// run ticks the timers that are due each time wait reports an expiry of
// hr, until hr is closed. (A test passes a failing wait.)
func (k *lingerClock) run(hr *hrtimer.Timer, wait func() error, done chan struct{}) {
	defer close(done)
	for {
		err := wait()
		k.mu.Lock()
		if k.hr != hr { // the last timer closed: hr is closed or about to be
			k.mu.Unlock()
			return
		}
		if err != nil {
			// The deadlines armed may never come: wake every loop so
			// that it looks again and re-arms, on its fallback.
			k.broken = true
			for _, t := range k.queue {
				t.index = -1
				tick(t.c)
			}
			k.queue, k.armed = nil, time.Time{}
			k.mu.Unlock()
			return
		}
		now := time.Now()
		for len(k.queue) > 0 && !k.queue[0].when.After(now) {
			tick(heap.Pop(&k.queue).(*clockTimer).c)
		}
		k.armed = time.Time{}
		if len(k.queue) > 0 {
			k.arm(now)
		}
		k.mu.Unlock()
	}
}

// arm sets hr for the earliest deadline. k.mu is held.
func (k *lingerClock) arm(now time.Time) {
	k.armed = k.queue[0].when
	k.hr.Reset(k.armed.Sub(now))
}

// clockTimer is one send loop's timer on its client's lingerClock.
type clockTimer struct {
	clock *lingerClock
	c     chan struct{}
	// when and index belong to clock.mu: the deadline, and the place in
	// clock.queue (-1 when not armed).
	when     time.Time
	index    int
	closed   bool          // a second Close must not release the clock again
	fallback *runtimeTimer // ticks on c too, once the clock is broken
}

func (t *clockTimer) C() <-chan struct{} { return t.c }

func (t *clockTimer) Reset(d time.Duration) {
	k := t.clock
	k.mu.Lock()
	if k.broken {
		k.mu.Unlock()
		t.fallback.Reset(d)
		return
	}
	if d <= 0 {
		k.disarm(t)
		k.mu.Unlock()
		tick(t.c)
		return
	}
	now := time.Now()
	t.when = now.Add(d)
	if t.index >= 0 {
		heap.Fix(&k.queue, t.index)
	} else {
		heap.Push(&k.queue, t)
	}
	// A deadline moved later leaves hr armed early: that expiry finds
	// nothing due and arms the next one.
	if k.armed.IsZero() || k.queue[0].when.Before(k.armed) {
		k.arm(now)
	}
	k.mu.Unlock()
}

// disarm takes t out of the queue. k.mu is held.
func (k *lingerClock) disarm(t *clockTimer) {
	if t.index >= 0 {
		heap.Remove(&k.queue, t.index)
	}
}

// Close disarms t and, if it was the clock's last timer, releases the
// hrtimer and waits for its goroutine to return.
func (t *clockTimer) Close() {
	k := t.clock
	k.mu.Lock()
	if t.closed {
		k.mu.Unlock()
		return
	}
	t.closed = true
	k.disarm(t)
	k.users--
	var hr *hrtimer.Timer
	var done chan struct{}
	if k.users == 0 && k.hr != nil {
		hr, done = k.hr, k.done
		k.hr, k.done, k.armed, k.broken = nil, nil, time.Time{}, false
	}
	k.mu.Unlock()
	if hr != nil {
		_ = hr.Close()
		<-done
	}
	t.fallback.Close()
}

// deadlines is a min-heap of armed timers by deadline (container/heap).
type deadlines []*clockTimer

func (q deadlines) Len() int           { return len(q) }
func (q deadlines) Less(i, j int) bool { return q[i].when.Before(q[j].when) }
func (q deadlines) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *deadlines) Push(x any) {
	t := x.(*clockTimer)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *deadlines) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
