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

// The set keeps the latest up to its bound, forgets the oldest first and
// forgets a partition's on demand; an ack makes every copy stale, a nack
// those up to the count of the copy nacked.
func TestRecentDoneKeepsTheLatestUpToTheBound(t *testing.T) {
	a := newRecentDone(3)
	id := func(p int32, e int64) MessageID { return MessageID{Ledger: 1, Entry: e, Partition: p} }
	for e := range int64(4) {
		a.add(id(0, e), ackedAll)
	}
	a.add(id(0, 3), 1) // again: no room taken, still acked
	if a.stale(id(0, 0), 0) || !a.stale(id(0, 1), 0) || !a.stale(id(0, 3), 7) {
		t.Fatalf("after 4 acks in 3 slots: %v", a.set)
	}
	a.forget(0)
	a.add(id(1, 9), 2)
	if len(a.set) != 1 || !a.stale(id(1, 9), 2) || a.stale(id(1, 9), 3) {
		t.Fatalf("after forgetting partition 0 and a nack at count 2: %v", a.set)
	}
	for e := range int64(3) {
		a.add(id(2, e), ackedAll)
	}
	if a.stale(id(1, 9), 0) || len(a.set) != 3 {
		t.Fatalf("after refilling: %v", a.set)
	}
}
