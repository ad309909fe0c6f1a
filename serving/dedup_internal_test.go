package serving

import (
	"testing"

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
