package loadtest

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1µs to 5 min
// with 3 significant digits; larger values are clamped to the maximum.
const (
	histMinMicros = 1
	histMaxMicros = int64(5 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func percentilesOf(h *hdrhistogram.Histogram) Percentiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Percentiles{
		P50:  ms(h.ValueAtQuantile(50)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
	}
}

// Interval is one second (or so) of a run.
type Interval struct {
	// ElapsedS is the end of the interval, in seconds since the run started.
	ElapsedS float64 `json:"elapsed_s"`
	// Warmup: the interval ended before the measured phase began.
	Warmup            bool        `json:"warmup"`
	PublishMsgsPerS   float64     `json:"publish_msgs_per_s"`
	PublishMBPerS     float64     `json:"publish_mb_per_s"`
	ReceiveMsgsPerS   float64     `json:"receive_msgs_per_s"`
	PublishLatencyMs  Percentiles `json:"publish_latency_ms"`
	EndToEndLatencyMs Percentiles `json:"e2e_latency_ms"`
	SendErrors        uint64      `json:"send_errors"`
	// Acked and Received count the interval's samples of each latency.
	Acked    uint64 `json:"acked"`
	Received uint64 `json:"received"`
	// BacklogMsgs is how many acknowledged messages the subscriptions had
	// yet to receive when the interval ended, a message counting once per
	// subscription that lacks it; BacklogMB is their size.
	BacklogMsgs uint64  `json:"backlog_msgs"`
	BacklogMB   float64 `json:"backlog_mb"`
	// Phase is the part of a backlog run (Workload.BacklogBytes) the
	// interval ended in; empty in other runs.
	Phase Phase `json:"phase,omitempty"`
}

// Totals are the measured phase's figures (warm-up excluded).
type Totals struct {
	Seconds           float64
	Acked             uint64
	AckedBytes        uint64
	Received          uint64
	ReceivedBytes     uint64
	PublishLatencyMs  Percentiles
	EndToEndLatencyMs Percentiles
}

type counters struct {
	acked, ackedBytes, received, receivedBytes, failed uint64
}

// Recorder collects latencies and counts from producers and consumers. It is
// safe for concurrent use.
type Recorder struct {
	mu struct {
		sync.Mutex
		measureStart time.Time // end of the warm-up
		sendEnd      time.Time // producers stopped sending
		measureEnd   time.Time // producers flushed: end of the throughput window
		total        counters
		pub, e2e     *hdrhistogram.Histogram // measured phase
		win          counters
		winPub       *hdrhistogram.Histogram // current interval
		winE2E       *hdrhistogram.Histogram
		winStart     time.Time
		intervals    []Interval
		// A backlog run's phase, and its drain: from the consumers'
		// start until they caught up or the load ended.
		phase      Phase
		drainStart time.Time
		drainEnd   time.Time
		drainPub   *hdrhistogram.Histogram
	}
	start time.Time
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// NewRecorder returns a recorder whose run starts at now, in warm-up until
// StartMeasuring.
func NewRecorder(now time.Time) *Recorder {
	r := &Recorder{start: now}
	r.mu.pub, r.mu.e2e = newHist(), newHist()
	r.mu.winPub, r.mu.winE2E = newHist(), newHist()
	r.mu.drainPub = newHist()
	r.mu.winStart = now
	return r
}

func recordClamped(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMinMicros {
		us = histMinMicros
	}
	if us > histMaxMicros {
		us = histMaxMicros
	}
	_ = h.RecordValue(us)
}

// StartMeasuring ends the warm-up.
func (r *Recorder) StartMeasuring(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.measureStart.IsZero() {
		r.mu.measureStart = now
	}
}

// StopSending marks when producers stopped: messages sent later (none,
// normally) are not measured.
func (r *Recorder) StopSending(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.sendEnd.IsZero() {
		r.mu.sendEnd = now
	}
}

// StopMeasuring ends the throughput window (producers flushed).
func (r *Recorder) StopMeasuring(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.mu.measureStart.IsZero() && r.mu.measureEnd.IsZero() {
		r.mu.measureEnd = now
	}
}

// SetPhase moves a backlog run into phase p at now. Intervals report the
// phase they end in; messages sent from PhaseDrain until the next phase
// have their publish latency recorded apart as well (DrainPublishLatency),
// since what a drain does to publishing is what a backlog run is for.
func (r *Recorder) SetPhase(p Phase, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case p == PhaseDrain && r.mu.drainStart.IsZero():
		r.mu.drainStart = now
	case r.mu.phase == PhaseDrain && r.mu.drainEnd.IsZero():
		r.mu.drainEnd = now
	}
	r.mu.phase = p
}

// inDrainLocked reports whether a message sent at sent belongs to the
// drain, by its send time as inWindowLocked does for the measured phase.
func (r *Recorder) inDrainLocked(sent time.Time) bool {
	if r.mu.drainStart.IsZero() || sent.Before(r.mu.drainStart) {
		return false
	}
	return r.mu.drainEnd.IsZero() || !sent.After(r.mu.drainEnd)
}

// DrainPublishLatency returns the publish latency of the messages sent
// during a backlog run's drain.
func (r *Recorder) DrainPublishLatency() Percentiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	return percentilesOf(r.mu.drainPub)
}

// inWindowLocked reports whether a message sent at sent belongs to the
// measured phase: sent after the warm-up and before the producers stopped.
// Its acknowledgement or receipt may come later (during the flush and the
// drain) and still counts, so that slow answers are not left out.
func (r *Recorder) inWindowLocked(sent time.Time) bool {
	if r.mu.measureStart.IsZero() || sent.Before(r.mu.measureStart) {
		return false
	}
	return r.mu.sendEnd.IsZero() || !sent.After(r.mu.sendEnd)
}

// Acked records an acknowledged send of size bytes, sent at sent, and its
// publish latency.
func (r *Recorder) Acked(sent time.Time, latency time.Duration, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.win.acked++
	r.mu.win.ackedBytes += uint64(size)
	recordClamped(r.mu.winPub, latency)
	if r.inDrainLocked(sent) {
		recordClamped(r.mu.drainPub, latency)
	}
	if r.inWindowLocked(sent) {
		r.mu.total.acked++
		r.mu.total.ackedBytes += uint64(size)
		recordClamped(r.mu.pub, latency)
	}
}

// Failed records a send that got an error.
func (r *Recorder) Failed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.win.failed++
	r.mu.total.failed++
}

// Received records a first receipt of size bytes of a message sent at
// sent, and its end-to-end latency.
func (r *Recorder) Received(sent time.Time, latency time.Duration, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.win.received++
	r.mu.win.receivedBytes += uint64(size)
	recordClamped(r.mu.winE2E, latency)
	if r.inWindowLocked(sent) {
		r.mu.total.received++
		r.mu.total.receivedBytes += uint64(size)
		recordClamped(r.mu.e2e, latency)
	}
}

// Tick closes the current interval at now and returns it, with the
// backlog at now (Interval.BacklogMsgs) in messages and bytes.
func (r *Recorder) Tick(now time.Time, backlogMsgs, backlogBytes uint64) Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := now.Sub(r.mu.winStart).Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	w := r.mu.win
	iv := Interval{
		ElapsedS:          now.Sub(r.start).Seconds(),
		Warmup:            r.mu.measureStart.IsZero() || now.Before(r.mu.measureStart),
		PublishMsgsPerS:   float64(w.acked) / secs,
		PublishMBPerS:     float64(w.ackedBytes) / secs / 1e6,
		ReceiveMsgsPerS:   float64(w.received) / secs,
		PublishLatencyMs:  percentilesOf(r.mu.winPub),
		EndToEndLatencyMs: percentilesOf(r.mu.winE2E),
		SendErrors:        w.failed,
		Acked:             w.acked,
		Received:          w.received,
		BacklogMsgs:       backlogMsgs,
		BacklogMB:         float64(backlogBytes) / 1e6,
		Phase:             r.mu.phase,
	}
	r.mu.intervals = append(r.mu.intervals, iv)
	r.mu.win = counters{}
	r.mu.winPub.Reset()
	r.mu.winE2E.Reset()
	r.mu.winStart = now
	return iv
}

// Intervals returns every interval closed so far.
func (r *Recorder) Intervals() []Interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Interval(nil), r.mu.intervals...)
}

// Totals returns the measured phase's figures.
func (r *Recorder) Totals(now time.Time) Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.mu.measureEnd
	if end.IsZero() {
		end = now
	}
	secs := 0.0
	if !r.mu.measureStart.IsZero() {
		secs = end.Sub(r.mu.measureStart).Seconds()
	}
	return Totals{
		Seconds:           secs,
		Acked:             r.mu.total.acked,
		AckedBytes:        r.mu.total.ackedBytes,
		Received:          r.mu.total.received,
		ReceivedBytes:     r.mu.total.receivedBytes,
		PublishLatencyMs:  percentilesOf(r.mu.pub),
		EndToEndLatencyMs: percentilesOf(r.mu.e2e),
	}
}
