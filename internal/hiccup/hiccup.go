package hiccup

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/strata-mq/strata/internal/hrtimer"
)

// Interval is the sleep between samples: short enough to catch
// millisecond stalls, long enough to cost nothing measurable.
const Interval = time.Millisecond

// Meter samples the machine's wake-up lateness until Stop.
type Meter struct {
	stop chan struct{}
	done chan struct{}
	hr   *hrtimer.Timer // nil: sleeps on the runtime's timer

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // lateness in µs
}

// Start starts a meter. On Linux it sleeps on an hrtimer, so that what it
// records is the kernel's and the scheduler's lateness, not the runtime
// poller's millisecond rounding (internal/hrtimer).
func Start() *Meter { return start(true) }

func start(precise bool) *Meter {
	m := &Meter{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		hist: newHist(),
	}
	if precise {
		if hr, err := hrtimer.New(); err == nil {
			m.hr = hr
		}
	}
	go m.run()
	return m
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
}

func (m *Meter) run() {
	defer close(m.done)
	if m.hr != nil {
		m.runPrecise()
		return
	}
	t := time.NewTimer(Interval)
	defer t.Stop()
	for last := time.Now(); ; {
		select {
		case <-m.stop:
			return
		case <-t.C:
			// The clock read here, not the timer's value: the lateness that
			// matters includes waiting for a CPU after the timer fired.
			now := time.Now()
			late := now.Sub(last) - Interval
			last = now
			t.Reset(Interval)
			m.record(late)
		}
	}
}

// runPrecise samples on the hrtimer until Stop closes it.
func (m *Meter) runPrecise() {
	m.hr.Reset(Interval)
	for last := time.Now(); ; {
		if m.hr.Wait() != nil {
			return
		}
		// The clock read here, not the timer's value: the lateness that
		// matters includes waiting for a CPU after the timer fired.
		now := time.Now()
		late := now.Sub(last) - Interval
		last = now
		m.hr.Reset(Interval)
		m.record(late)
	}
}

func (m *Meter) record(late time.Duration) {
	m.mu.Lock()
	m.hist.RecordCorrectedValue(max(1, late.Microseconds()), int64(Interval/time.Microsecond))
	m.mu.Unlock()
}

// Reset drops what was recorded so far (a warm-up).
func (m *Meter) Reset() {
	m.mu.Lock()
	m.hist = newHist()
	m.mu.Unlock()
}

// Stop ends the measurement and returns the lateness of every wake-up
// since Start or the last Reset, in microseconds.
func (m *Meter) Stop() *hdrhistogram.Histogram {
	close(m.stop)
	if m.hr != nil {
		_ = m.hr.Close() // ends runPrecise's Wait
	}
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hist
}
