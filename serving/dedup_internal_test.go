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
// waiting or batches still being written (a resend of those, arriving
// next, would be written twice without its state), and not one that just
// lost its stream.
func TestDedupEvictsTheProducerNameGoneLongest(t *testing.T) {
	tp := &topic{}
	tp.mu.dedup = map[string]*dedupState{}
	tp.mu.prods = map[string]*producer{"connected": nil}
	now := time.Now()
	for name, ago := range map[string]time.Duration{"gone-3s": 3 * time.Second, "gone-1s": time.Second, "waiting-5s": 5 * time.Second,
		"writing-10s": 10 * time.Second, "connected": 0} {
		d := dedupFor(tp.mu.dedup, name)
		d.left = now.Add(-ago)
	}
	tp.mu.dedup["waiting-5s"].waiters = []*pendingBatch{{}}
	tp.mu.dedup["writing-10s"].pushed = 7 // accepted up to 7, written up to -1

	const recent = 40 // producers that just lost their streams
	for i := range recent {
		dedupFor(tp.mu.dedup, fmt.Sprintf("recent-%d", i)).left = now.Add(-time.Duration(i) * time.Millisecond)
	}
	for _, want := range []string{"gone-3s", "gone-1s"} {
		tp.evictDedupLocked()
		if _, kept := tp.mu.dedup[want]; kept {
			t.Fatalf("%s kept; remembered: %v", want, slices.Collect(maps.Keys(tp.mu.dedup)))
		}
		if len(tp.mu.dedup) != 5+recent-1 {
			t.Fatalf("after evicting %s: %d names remembered", want, len(tp.mu.dedup))
		}
		tp.mu.dedup[want] = &dedupState{left: now} // the count stays; want is recent now
	}
	for _, name := range []string{"connected", "waiting-5s", "writing-10s"} {
		if _, kept := tp.mu.dedup[name]; !kept {
			t.Fatalf("%s evicted", name)
		}
	}
}

// Receipts read back from earlier owners' entries go before those the ring
// holds, newest kept when they do not all fit, and the read back stops
// once the ring is full or starts at or before the sequence id sought.
func TestEarlierReceiptsGoBeforeTheRingsAndOnlyWhileTheyMayHoldTheOneSought(t *testing.T) {
	rec := func(seq uint64) receipt {
		return receipt{first: seq, last: seq, pos: ids.Position{Ledger: 3, Entry: ids.EntryID(seq)}}
	}
	recs := func(from, to uint64) (rs []receipt) {
		for seq := from; seq <= to; seq++ {
			rs = append(rs, rec(seq))
		}
		return rs
	}
	d := dedupFor(map[string]*dedupState{}, "p")
	e := earlierReceipts{ledger: 3, next: 99, budget: maxEarlierEntries}
	if !e.mayHold(d, 5) {
		t.Fatal("an empty ring: reading back may find any receipt")
	}
	for _, r := range recs(10_000, 10_009) {
		d.persist(r)
	}
	if !e.mayHold(d, 50) || e.mayHold(d, 10_000) || e.mayHold(d, 10_005) {
		t.Fatal("reading back must go on only for sequence ids before the ring's oldest")
	}
	d.prepend(recs(9_997, 9_999))
	for seq := uint64(9_997); seq <= 10_009; seq++ {
		if r, ok := d.find(seq); !ok || r.pos.Entry != ids.EntryID(seq) {
			t.Fatalf("sequence id %d: %+v %v", seq, r, ok)
		}
	}
	// 1024 more do not fit beside the 13: the newest 1011 are kept.
	d.prepend(recs(9_997-maxRecentReceipts, 9_996))
	if len(d.recent) != maxRecentReceipts {
		t.Fatalf("the ring holds %d receipts, want it full (%d)", len(d.recent), maxRecentReceipts)
	}
	oldest := uint64(10_010 - maxRecentReceipts)
	if _, ok := d.find(oldest - 1); ok {
		t.Fatal("the oldest receipts read back were kept in place of newer ones")
	}
	if r, ok := d.find(oldest); !ok || r.pos.Entry != ids.EntryID(oldest) {
		t.Fatalf("the oldest receipt kept: %+v %v", r, ok)
	}
	if e.mayHold(d, 0) {
		t.Fatal("a full ring takes no older receipts: reading back must stop")
	}
	d.persist(rec(10_010)) // wraps: recent is no longer oldest first
	if r, ok := d.find(10_010); !ok || r.pos.Entry != 10_010 {
		t.Fatalf("after the ring wrapped: %+v %v", r, ok)
	}
	if (&earlierReceipts{}).mayHold(dedupFor(map[string]*dedupState{}, "q"), 1) {
		t.Fatal("with nothing left to read back, reading back must stop")
	}
}
