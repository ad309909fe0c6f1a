package client

import (
	"testing"
	"time"
)

// The nack delay is fixed without a maximum, and doubles with each
// redelivery up to the maximum with one.
func TestNackDelayGrowsWithRedeliveriesUpToTheMaximum(t *testing.T) {
	fixed := redelivery{nackDelay: time.Second}
	backoff := redelivery{nackDelay: 100 * time.Millisecond, nackMax: time.Second}
	for count, want := range map[uint32][2]time.Duration{
		0:  {time.Second, 100 * time.Millisecond},
		1:  {time.Second, 200 * time.Millisecond},
		3:  {time.Second, 800 * time.Millisecond},
		4:  {time.Second, time.Second},
		40: {time.Second, time.Second},
	} {
		if got := fixed.delayFor(count); got != want[0] {
			t.Errorf("fixed, %d redeliveries: %v, want %v", count, got, want[0])
		}
		if got := backoff.delayFor(count); got != want[1] {
			t.Errorf("backoff, %d redeliveries: %v, want %v", count, got, want[1])
		}
	}
	if got := (&redelivery{}).delayFor(5); got != 0 {
		t.Errorf("no delay set: %v", got)
	}
}
