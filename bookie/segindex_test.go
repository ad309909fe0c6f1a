package bookie

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// fillSegments writes, over several journal segments, entries of three
// ledgers, a fence with a recovery add after it, a delete, and a compaction
// that relocates entries: every kind of record the index replays.
func fillSegments(t *testing.T, b *Bookie) {
	t.Helper()
	ctx := context.Background()
	for e := range ids.EntryID(60) {
		for _, l := range []ids.LedgerID{1, 2, 3} {
			mustAdd(t, b, l, e, e-1, 20<<10)
		}
	}
	if _, _, err := b.Fence(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, Entry{Ledger: 2, ID: 60, LAC: 59, Payload: payload(2, 60, 20<<10), Recovery: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for range 2 { // both slots, so the first segments become compactable
		mustAdd(t, b, 4, 0, -1, 10)
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.compact(); err != nil {
		t.Fatal(err)
	}
}

func recoveredFrom(b *Bookie, from string) float64 {
	return counterValue(b.metrics.recovered.WithLabelValues(from))
}

// A restart applies every sealed segment from its index, scans only the
// newest one, and ends with the same index a scan of the whole journal
// builds.
func TestRestartReadsSealedSegmentsFromTheirIndexesAsAFullScanWould(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = 0.9
	b := openBookie(t, cfg)
	fillSegments(t, b)
	segs, _ := journal.List(b.journalDir)
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %v", segs)
	}
	b = reopen(t, b, false)
	// Background compaction may have reclaimed some segments meanwhile.
	if got := recoveredFrom(b, "index"); got < 2 {
		t.Fatalf("%v segments applied from their index, want every sealed one (at least 2)", got)
	}
	if got := recoveredFrom(b, "scan"); got != 1 {
		t.Fatalf("%v segments scanned, want 1 (the newest)", got)
	}
	fromIndexes := b.mu.table

	// The same directory without its segment indexes: a scan of every
	// segment (on the checkpoint's ledger states: segments may have been
	// reclaimed, so the journal alone no longer has every fence).
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	idx, _ := filepath.Glob(filepath.Join(b.journalDir, "*.idx"))
	for _, p := range idx {
		os.Remove(p)
	}
	// No compaction now: relocating entries would move them while the
	// two indexes are compared.
	cfg.CompactLiveFraction = -1
	b = openBookie(t, cfg)
	if got := recoveredFrom(b, "index"); got != 0 {
		t.Fatalf("%v segments from an index after every index was removed", got)
	}
	b.mu.RLock()
	same := b.mu.table.Equal(fromIndexes)
	b.mu.RUnlock()
	if !same {
		t.Fatal("the index recovered from segment indexes differs from a full journal scan")
	}
	for e := range ids.EntryID(61) {
		mustRead(t, b, 2, e, 20<<10)
	}
	mustRead(t, b, 1, 59, 20<<10)
}

// A damaged segment index is not trusted: the segment is scanned, its
// entries served, and a good index written in its place.
func TestDamagedSegmentIndexFallsBackToScanningTheSegment(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg)
	for e := range ids.EntryID(120) {
		mustAdd(t, b, 9, e, e-1, 20<<10)
	}
	first, _ := journal.List(b.journalDir)
	b = reopen(t, b, false)
	p := filepath.Join(b.journalDir, index.SegmentName(first[0]))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	damage(t, p, 40, func(x []byte) { x[0] ^= 1 })
	b = openBookie(t, cfg)
	if got := recoveredFrom(b, "scan"); got != 2 {
		t.Fatalf("%v segments scanned, want 2 (the damaged index's and the newest)", got)
	}
	for e := range ids.EntryID(120) {
		mustRead(t, b, 9, e, 20<<10)
	}
	b = reopen(t, b, false)
	if got := recoveredFrom(b, "scan"); got != 1 {
		t.Fatalf("%v segments scanned on the next restart, want 1: the index was not rewritten", got)
	}
}

// The checkpoint holds ledger states, not entry locations, so what it
// writes (and fsyncs on the journal's disk) does not grow with the entries
// the bookie stores.
func TestCheckpointSizeDoesNotGrowWithStoredEntries(t *testing.T) {
	b := openBookie(t, testConfig(t.TempDir()))
	size := func() int64 {
		t.Helper()
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(b.cfg.DataDir, fmt.Sprintf("checkpoint-%d", b.ckptSeq%2)))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	mustAdd(t, b, 1, 0, -1, 10)
	mustAdd(t, b, 2, 0, -1, 10)
	small := size()
	for e := range ids.EntryID(3000) {
		mustAdd(t, b, 1+ids.LedgerID(e%2), 1+e/2, e/2, 10)
	}
	if big := size(); big != small {
		t.Fatalf("checkpoint of 2 ledgers is %d bytes with 2 entries and %d with 3002", small, big)
	}
}
