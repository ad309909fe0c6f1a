package loadtest

import (
	"testing"
	"time"
)

func TestRecorderMeasuresBySendTimeNotArrivalTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRecorder(t0)
	r.StartMeasuring(t0.Add(time.Second))
	// Sent during the warm-up: counted per interval, not measured.
	r.Acked(t0.Add(500*time.Millisecond), time.Millisecond, 10)
	// Sent in the window, answered late (after the producers stopped and
	// flushed): measured, with its full latency.
	r.Acked(t0.Add(2*time.Second), 5*time.Second, 10)
	r.StopSending(t0.Add(3 * time.Second))
	r.StopMeasuring(t0.Add(4 * time.Second))
	r.Received(t0.Add(2*time.Second), 6*time.Second, 10)
	// Sent after the producers stopped (a straggler): not measured.
	r.Received(t0.Add(3500*time.Millisecond), time.Millisecond, 10)
	tot := r.Totals(t0.Add(9 * time.Second))
	if tot.Acked != 1 || tot.Received != 1 {
		t.Fatalf("measured %d acked, %d received; want 1 and 1", tot.Acked, tot.Received)
	}
	if tot.PublishLatencyMs.Max < 4990 || tot.EndToEndLatencyMs.Max < 5990 {
		t.Fatalf("late answers left out of the latencies: %+v %+v", tot.PublishLatencyMs, tot.EndToEndLatencyMs)
	}
	if tot.Seconds != 3 {
		t.Fatalf("window %vs, want 3s (warm-up end to flush)", tot.Seconds)
	}
}

func TestRecorderIntervalsCountEverything(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRecorder(t0)
	r.Acked(t0, time.Millisecond, 1000)
	r.Failed()
	iv := r.Tick(t0.Add(time.Second), 3, 3000)
	if !iv.Warmup || iv.Acked != 1 || iv.SendErrors != 1 || iv.PublishMsgsPerS != 1 ||
		iv.BacklogMsgs != 3 || iv.BacklogMB != 0.003 || iv.Phase != "" {
		t.Fatalf("interval %+v", iv)
	}
	if iv2 := r.Tick(t0.Add(2*time.Second), 0, 0); iv2.Acked != 0 {
		t.Fatalf("interval not reset: %+v", iv2)
	}
}

// A backlog run's intervals name their phase, and the publish latency of
// the messages sent during the drain, and only theirs, is kept apart.
func TestRecorderKeepsTheDrainApart(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewRecorder(t0)
	r.StartMeasuring(t0)
	r.SetPhase(PhaseBuild, t0)
	r.Acked(t0.Add(500*time.Millisecond), 900*time.Millisecond, 10)
	if iv := r.Tick(t0.Add(time.Second), 7, 70); iv.Phase != PhaseBuild || iv.BacklogMsgs != 7 {
		t.Fatalf("build interval %+v", iv)
	}
	r.SetPhase(PhaseDrain, t0.Add(time.Second))
	r.Acked(t0.Add(1500*time.Millisecond), 50*time.Millisecond, 10)
	r.SetPhase(PhaseEnd, t0.Add(2*time.Second))
	// Sent during the drain, answered after it: the drain's.
	r.Acked(t0.Add(1900*time.Millisecond), 60*time.Millisecond, 10)
	// Sent after it (the producers stopping): not.
	r.Acked(t0.Add(2100*time.Millisecond), 2*time.Second, 10)
	if iv := r.Tick(t0.Add(3*time.Second), 0, 0); iv.Phase != PhaseEnd {
		t.Fatalf("interval after the drain in phase %q", iv.Phase)
	}
	d := r.DrainPublishLatency()
	if d.P50 < 49 || d.Max < 59 || d.Max > 61 {
		t.Fatalf("drain publish latency %+v, want 50 and 60 ms only", d)
	}
	if tot := r.Totals(t0.Add(3 * time.Second)); tot.PublishLatencyMs.Max < 1999 {
		t.Fatalf("the whole run's latency lost a message: %+v", tot.PublishLatencyMs)
	}
}
