package loadtest

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// pacers returns the pacer this platform makes and the runtime-timer one.
func pacers(t *testing.T) map[string]*pacer {
	t.Helper()
	p := newPacer()
	t.Cleanup(p.close)
	if runtime.GOOS == "linux" && p.hr == nil {
		t.Fatal("no hrtimer pacer on Linux")
	}
	return map[string]*pacer{"default": p, "runtime": {minWait: time.Millisecond}}
}

// TestPacerNeverLetsAProducerRunAheadByItsShortestSleep: a producer is let
// go ahead of its schedule by less than the pacer's shortest sleep.
func TestPacerNeverLetsAProducerRunAheadByItsShortestSleep(t *testing.T) {
	for name, p := range pacers(t) {
		t.Run(name, func(t *testing.T) {
			for _, d := range []time.Duration{p.minWait / 2, p.minWait, 3 * time.Millisecond, 20 * time.Millisecond} {
				due := time.Now().Add(d)
				if err := p.sleepUntil(context.Background(), due); err != nil {
					t.Fatal(err)
				}
				if early := time.Until(due); early >= p.minWait {
					t.Fatalf("woke %v before a due time %v away (shortest sleep %v)", early, d, p.minWait)
				}
			}
		})
	}
}

// TestPacerStopsSleepingWhenTheRunEnds: a producer paced at a low rate is
// not held past the end of the run by its pacer.
func TestPacerStopsSleepingWhenTheRunEnds(t *testing.T) {
	for name, p := range pacers(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.sleepUntil(ctx, time.Now().Add(time.Hour)) }()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("sleep ended with %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a cancelled run left the pacer asleep")
			}
			// The pacer sleeps as before afterwards.
			due := time.Now().Add(2 * p.minWait)
			if err := p.sleepUntil(context.Background(), due); err != nil {
				t.Fatal(err)
			}
			if early := time.Until(due); early >= p.minWait {
				t.Fatalf("after a cancel, woke %v early", early)
			}
		})
	}
}
