package hiccup

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Interval is the sleep between samples: short enough to catch
// millisecond stalls, long enough to cost nothing measurable.
const Interval = time.Millisecond

// Meter samples the machine's wake-up lateness until Stop.
type Meter struct {
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // lateness in µs
}

// Start starts a meter.
func Start() *Meter {
	m := &Meter{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		hist: newHist(),
	}
	go m.run()
	return m
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
}

func (m *Meter) run() {
	defer close(m.done)
	t := time.NewTimer(Interval)
	defer t.Stop()
	expected := int64(Interval / time.Microsecond)
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
			m.mu.Lock()
			m.hist.RecordCorrectedValue(max(1, late.Microseconds()), expected)
			m.mu.Unlock()
		}
	}
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
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hist
}
