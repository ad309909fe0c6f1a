package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
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

// A first open that retried until its context ended reports why it could
// not open (the last retriable failure), not the cancellation that cut its
// last attempt; but a real answer that came just as the context ended
// stands, and so does any error while the context is alive.
func TestAnOpenAtItsDeadlineReportsTheLastRetriableFailureNotTheCut(t *testing.T) {
	notEnough := errcode.New(errcode.NotEnoughBookies, "2 bookies of 3")
	refused := errcode.New(errcode.Unauthorized, "no produce permission")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	alive := context.Background()
	for _, c := range []struct {
		name      string
		ctx       context.Context
		err, last error
		want      error // errors.Is of the answer
		wantCtx   bool  // and of the context's error too
	}{
		{"cut by the cancellation", ended, context.Canceled, notEnough, notEnough, true},
		{"cut, reported as closed", ended, errcode.New(errcode.Closed, "stream closed"), notEnough, notEnough, true},
		{"cut, reported as a timeout", ended, errcode.New(errcode.Timeout, "open timed out"), notEnough, notEnough, true},
		{"a refusal as the context ended", ended, refused, notEnough, refused, false},
		{"the last failure itself", ended, notEnough, notEnough, notEnough, false},
		{"nothing retried before", ended, context.Canceled, nil, context.Canceled, false},
		{"context alive", alive, context.Canceled, notEnough, context.Canceled, false},
		{"opened", ended, nil, notEnough, nil, false},
	} {
		got := atDeadline(c.ctx, c.err, c.last)
		if c.want == nil {
			if got != nil {
				t.Errorf("%s: %v, want nil", c.name, got)
			}
			continue
		}
		if !errors.Is(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if c.wantCtx && !errors.Is(got, context.Canceled) {
			t.Errorf("%s: %v does not say the open was cut short", c.name, got)
		}
		if !c.wantCtx && c.want != context.Canceled && errors.Is(got, context.Canceled) {
			t.Errorf("%s: %v, want the answer as it came", c.name, got)
		}
	}
}
