package client

import (
	"testing"
	"time"
)

// TestDeliverAfterRoundsUpToTheMillisecond: a DeliverAfter delay is never
// shortened (the due time is at or after the send plus the delay, by less
// than a millisecond), and messages sent within one millisecond with the
// same delay get the same due time, so they can share a batch.
func TestDeliverAfterRoundsUpToTheMillisecond(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		now   time.Time
		after time.Duration
		want  time.Time
	}{
		{base, 5 * time.Millisecond, base.Add(5 * time.Millisecond)},
		{base.Add(1), 5 * time.Millisecond, base.Add(6 * time.Millisecond)},
		{base.Add(999_999), 5 * time.Millisecond, base.Add(6 * time.Millisecond)},
		{base, 1500 * time.Microsecond, base.Add(2 * time.Millisecond)},
		{base.Add(400 * time.Microsecond), time.Nanosecond, base.Add(time.Millisecond)},
	} {
		m := &ProducerMessage{DeliverAfter: tc.after}
		got := m.deliverAt(tc.now)
		if got != tc.want.UnixNano() {
			t.Fatalf("send at %v + %v: due %v, want %v", tc.now.Sub(base), tc.after, time.Duration(got-base.UnixNano()), tc.want.Sub(base))
		}
		if earliest := tc.now.Add(tc.after).UnixNano(); got < earliest || got-earliest >= int64(time.Millisecond) {
			t.Fatalf("send at %v + %v: due %v is not within a millisecond after the delay", tc.now.Sub(base), tc.after, time.Duration(got-base.UnixNano()))
		}
	}
	// DeliverAt wins over DeliverAfter and is kept to the nanosecond;
	// neither set means at once.
	at := base.Add(123)
	if got := (&ProducerMessage{DeliverAt: at, DeliverAfter: time.Hour}).deliverAt(base); got != at.UnixNano() {
		t.Fatalf("DeliverAt with DeliverAfter: %d, want %d", got, at.UnixNano())
	}
	if got := (&ProducerMessage{DeliverAfter: -time.Second}).deliverAt(base); got != 0 {
		t.Fatalf("a negative delay: due %d, want 0 (at once)", got)
	}
}
