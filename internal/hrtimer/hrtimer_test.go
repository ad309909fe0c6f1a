package hrtimer

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

// waitTimeout bounds every wait: long enough for a loaded machine, short
// enough that a timer that never expires fails the test.
const waitTimeout = 10 * time.Second

func newTimer(t *testing.T) *Timer {
	t.Helper()
	tm, err := New()
	if runtime.GOOS != "linux" {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("New off Linux: %v, want ErrUnsupported", err)
		}
		t.Skip("no hrtimer off Linux")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tm.Close() })
	return tm
}

// wait runs tm.Wait and fails the test if it has not returned in time.
func wait(t *testing.T, tm *Timer) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- tm.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("Wait did not return within %v", waitTimeout)
		return nil
	}
}

func TestTimerNeverExpiresBeforeItsDeadline(t *testing.T) {
	tm := newTimer(t)
	for _, d := range []time.Duration{50 * time.Microsecond, time.Millisecond, 20 * time.Millisecond} {
		start := time.Now()
		tm.Reset(d)
		if err := wait(t, tm); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < d {
			t.Fatalf("armed for %v, expired after %v", d, got)
		}
	}
}

// TestResetReplacesTheArmedDeadline: a deadline brought forward expires
// then, and zero or less expires at once (a zero timerfd value would
// disarm it instead).
func TestResetReplacesTheArmedDeadline(t *testing.T) {
	tm := newTimer(t)
	for _, d := range []time.Duration{time.Millisecond, 0, -time.Second} {
		tm.Reset(time.Hour)
		tm.Reset(d)
		if err := wait(t, tm); err != nil {
			t.Fatalf("Reset(%v): %v", d, err)
		}
	}
}

func TestCloseEndsAWaitInProgress(t *testing.T) {
	tm := newTimer(t)
	tm.Reset(time.Hour)
	done := make(chan error, 1)
	go func() { done <- tm.Wait() }()
	// Whether Close comes before or during the Wait, the Wait must end.
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close left a Wait blocked")
	}
	tm.Reset(time.Millisecond) // on a closed timer: nothing to arm, no panic
}

// TestCloseReleasesTheDescriptor: the SDK's linger clock makes a timer
// whenever its first send loop starts after the last one ended (a client
// whose only producer reconnects, say), so a closed one must give its
// descriptor back.
func TestCloseReleasesTheDescriptor(t *testing.T) {
	newTimer(t) // skips off Linux
	before := openFDs(t)
	const n = 50
	for range n {
		tm, err := New()
		if err != nil {
			t.Fatal(err)
		}
		tm.Reset(time.Microsecond)
		if err := wait(t, tm); err != nil {
			t.Fatal(err)
		}
		if err := tm.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := openFDs(t); after >= before+n {
		t.Fatalf("open descriptors grew from %d to %d over %d timers made and closed", before, after, n)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// BenchmarkLateness measures how late a 1 ms wait ends, on the runtime's
// timer and on a Timer, in an idle process and in one with two goroutines
// that work 0.5 ms and sleep 1.1 ms over and over, as a producing
// application's goroutines do.
func BenchmarkLateness(b *testing.B) {
	const d = time.Millisecond
	for _, load := range []string{"idle", "busy"} {
		for _, kind := range []string{"runtime", "hrtimer"} {
			b.Run(kind+"/"+load, func(b *testing.B) {
				waitOnce := runtimeWait(d)
				if kind == "hrtimer" {
					tm, err := New()
					if err != nil {
						b.Skip(err)
					}
					defer tm.Close()
					waitOnce = func() {
						tm.Reset(d)
						if err := tm.Wait(); err != nil {
							b.Fatal(err)
						}
					}
				}
				if load == "busy" {
					stop := make(chan struct{})
					defer close(stop)
					for range 2 {
						go busySleeper(stop)
					}
				}
				late := make([]time.Duration, 0, 1024)
				for b.Loop() {
					start := time.Now()
					waitOnce()
					late = append(late, time.Since(start)-d)
				}
				slices.Sort(late)
				at := func(q float64) float64 { return float64(late[int(q*float64(len(late)-1))].Microseconds()) }
				b.ReportMetric(at(0.5), "late-p50-µs")
				b.ReportMetric(at(0.9), "late-p90-µs")
				b.ReportMetric(at(0.99), "late-p99-µs")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func runtimeWait(d time.Duration) func() {
	t := time.NewTimer(time.Hour)
	return func() {
		t.Reset(d)
		<-t.C
	}
}

// busySleeper works 0.5 ms and sleeps 1.1 ms, over and over, until stop.
func busySleeper(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		for end := time.Now().Add(500 * time.Microsecond); time.Now().Before(end); {
		}
		t.Reset(1100 * time.Microsecond)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
