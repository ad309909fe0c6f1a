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
	iv := r.Tick(t0.Add(time.Second))
	if !iv.Warmup || iv.Acked != 1 || iv.SendErrors != 1 || iv.PublishMsgsPerS != 1 {
		t.Fatalf("interval %+v", iv)
	}
	if iv2 := r.Tick(t0.Add(2 * time.Second)); iv2.Acked != 0 {
		t.Fatalf("interval not reset: %+v", iv2)
	}
}
