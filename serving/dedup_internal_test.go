package serving

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/ids"
)

// A reconnecting producer resends every batch it had in flight, up to the
// node's per-producer limit: each resend must find its original receipt
// (not 0:0), so the ring remembers at least that many, newest first once
// it wraps, and forgets only older ones.
func TestDedupRemembersTheReceiptsOfEveryBatchAProducerMayHaveInFlight(t *testing.T) {
	if limit := (Config{}).withDefaults().MaxPendingPerProducer; maxRecentReceipts < limit {
		t.Fatalf("%d receipts remembered, fewer than the %d batches a producer may have in flight", maxRecentReceipts, limit)
	}
	d := dedupFor(map[string]*dedupState{}, "p")
	const n = maxRecentReceipts + 500
	for i := range uint64(n) {
		d.persist(receipt{first: 2 * i, last: 2*i + 1, pos: ids.Position{Ledger: 7, Entry: ids.EntryID(i)}})
		if r, ok := d.find(2*i + 1); !ok || r.pos.Entry != ids.EntryID(i) {
			t.Fatalf("batch %d just persisted: %+v %v", i, r, ok)
		}
	}
	for i := range uint64(n) {
		r, ok := d.find(2 * i)
		if remembered := i >= n-maxRecentReceipts; ok != remembered || (ok && r.pos.Entry != ids.EntryID(i)) {
			t.Fatalf("batch %d of %d: found %v at %v, want found %v", i, n, ok, r.pos, remembered)
		}
	}
}

// At the limit of remembered producer names, the name whose producer left
// longest ago is forgotten: not a connected one, not one with resends
// waiting, and not one that just lost its stream (its resend, arriving
// next, would be written twice without its state).
func TestDedupEvictsTheProducerNameGoneLongest(t *testing.T) {
	tp := &topic{}
	tp.mu.dedup = map[string]*dedupState{}
	tp.mu.prods = map[string]*producer{"connected": nil}
	now := time.Now()
	for name, ago := range map[string]time.Duration{"gone-3s": 3 * time.Second, "gone-1s": time.Second, "waiting-5s": 5 * time.Second, "connected": 0} {
		d := dedupFor(tp.mu.dedup, name)
		d.left = now.Add(-ago)
	}
	tp.mu.dedup["waiting-5s"].waiters = []*pendingBatch{{}}
	const recent = 40 // producers that just lost their streams
	for i := range recent {
		dedupFor(tp.mu.dedup, fmt.Sprintf("recent-%d", i)).left = now.Add(-time.Duration(i) * time.Millisecond)
	}
	for _, want := range []string{"gone-3s", "gone-1s"} {
		tp.evictDedupLocked()
		if _, kept := tp.mu.dedup[want]; kept {
			t.Fatalf("%s kept; remembered: %v", want, slices.Collect(maps.Keys(tp.mu.dedup)))
		}
		if len(tp.mu.dedup) != 4+recent-1 {
			t.Fatalf("after evicting %s: %d names remembered", want, len(tp.mu.dedup))
		}
		tp.mu.dedup[want] = &dedupState{left: now} // the count stays; want is recent now
	}
	for _, name := range []string{"connected", "waiting-5s"} {
		if _, kept := tp.mu.dedup[name]; !kept {
			t.Fatalf("%s evicted", name)
		}
	}
}
