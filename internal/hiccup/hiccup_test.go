package hiccup

import (
	"runtime"
	"testing"
	"time"
)

// With one P, a goroutine that never yields holds it until the runtime
// preempts it (about 10 ms): the meter must see that stall, and count the
// wake-ups it hid.
func TestMeterSeesAGoroutineHoldingTheOnlyProcessor(t *testing.T) {
	for _, precise := range []bool{true, false} {
		t.Run(map[bool]string{true: "hrtimer", false: "runtime-timer"}[precise], func(t *testing.T) {
			meterSeesAStall(t, precise)
		})
	}
}

func meterSeesAStall(t *testing.T, precise bool) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	m := start(precise)
	if precise && runtime.GOOS == "linux" && m.hr == nil {
		t.Fatal("no hrtimer on Linux")
	}
	waitForSample(t, m)
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	h := m.Stop()
	if h.Max() < 5000 {
		t.Fatalf("max lateness %d µs: a 50 ms spin on the only P went unseen", h.Max())
	}
	var late int64
	for _, bar := range h.Distribution() {
		if bar.From > 1000 {
			late += bar.Count
		}
	}
	if late < 5 {
		t.Fatalf("%d samples above 1 ms: the wake-ups a stall hides are not counted", late)
	}
}

// TestResetDropsTheWarmUp: a sample taken before Reset is not in what Stop
// returns. The marker is far longer than any wake-up the meter itself can
// record in this test, so a stalled meter cannot fake or hide it.
func TestResetDropsTheWarmUp(t *testing.T) {
	const marker = 50 * time.Second
	m := Start()
	waitForSample(t, m)
	m.record(marker)
	if got := m.max(); got < marker.Microseconds() {
		t.Fatalf("max %d µs before Reset: the marker was not recorded", got)
	}
	m.Reset()
	if h := m.Stop(); h.Max() >= marker.Microseconds() {
		t.Fatalf("max %d µs after Reset: the warm-up's sample was kept", h.Max())
	}
}

func (m *Meter) max() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hist.Max()
}

func (m *Meter) count() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hist.TotalCount()
}

func waitForSample(t *testing.T, m *Meter) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); m.count() == 0; time.Sleep(Interval) {
		if time.Now().After(deadline) {
			t.Fatal("no sample in 10 s")
		}
	}
}
