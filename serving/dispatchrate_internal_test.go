package serving

import (
	"testing"
	"time"
)

func TestPacerAllowsASecondsBurstThenSpacesToTheRate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var p pacer
	// Idle: a second's worth (100 messages at 100/s) goes at once.
	if w := p.charge(t0, 100, 0, 100, 0); w != 0 {
		t.Fatalf("the first second's worth waits %v", w)
	}
	// Past it, each message costs 10 ms.
	if w := p.charge(t0, 50, 0, 100, 0); w != 500*time.Millisecond {
		t.Fatalf("50 more wait %v, want 500ms", w)
	}
	// Time passing pays the debt.
	if w := p.charge(t0.Add(500*time.Millisecond), 1, 0, 100, 0); w != 10*time.Millisecond {
		t.Fatalf("one more, 500ms later, waits %v, want 10ms", w)
	}
	// A long idle spell earns no more than a second's worth.
	later := t0.Add(time.Hour)
	if w := p.charge(later, 150, 0, 100, 0); w != 500*time.Millisecond {
		t.Fatalf("150 after an hour idle wait %v, want 500ms", w)
	}
}

func TestPacerChargesTheSlowerOfTheMessageAndByteRates(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var p pacer
	p.charge(t0, 1000, 1<<20, 1000, 1<<20) // the burst, spent
	// 10 messages of 100 KiB: 10 ms by messages, ~977 ms by bytes.
	want := time.Duration(float64(10*100<<10) / float64(1<<20) * float64(time.Second))
	if w := p.charge(t0, 10, 10*100<<10, 1000, 1<<20); w != want {
		t.Fatalf("waits %v, want %v (the byte rate's)", w, want)
	}
	var q pacer
	q.charge(t0, 1000, 0, 1000, 1<<30)
	if w := q.charge(t0, 500, 1, 1000, 1<<30); w != 500*time.Millisecond {
		t.Fatalf("small messages wait %v, want 500ms (the message rate's)", w)
	}
}
