package bookie

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// fillerLedger is the ledger fillFreeSegments writes and deletes.
const fillerLedger ids.LedgerID = 1 << 40

// fillFreeSegments leaves free segments in cfg.DataDir, full of 4 KiB
// records of a deleted ledger that the bookie has forgotten: a filler
// ledger is written over more segments than the bookie keeps free,
// deleted, then a second one is written past the filler's last segment
// and deleted too, and checkpoints run until the filler is forgotten. The
// next bookie on the directory writes into those segments, and wherever
// its data ends in one, whole old records follow. It returns how many
// segments are free.
func fillFreeSegments(t *testing.T, cfg Config) int {
	t.Helper()
	ctx := context.Background()
	cfg = cfg.withDefaults()
	b, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	second := fillerLedger + 1
	write := func(l ids.LedgerID, bytes int64) {
		var wg sync.WaitGroup
		var failed atomic.Value
		for e := ids.EntryID(0); int64(e)*(4<<10) < bytes; e++ {
			wg.Add(1)
			ent := Entry{Ledger: l, ID: e, LAC: e - 1, Payload: payload(l, e, 4<<10)}
			if err := b.AddAsync(ctx, ent, func(err error) {
				if err != nil {
					failed.Store(err)
				}
				wg.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			t.Fatal(err)
		}
	}
	write(fillerLedger, int64(cfg.JournalRecycleSegments+1)*cfg.JournalFileBytes)
	if err := b.Delete(ctx, fillerLedger); err != nil {
		t.Fatal(err)
	}
	write(second, 2*cfg.JournalFileBytes)
	if err := b.Delete(ctx, second); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		mustAdd(t, b, second+1, 0, -1, 10) // moves the journal position on
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
		b.mu.RLock()
		forgotten := b.mu.table.Get(fillerLedger) == nil
		b.mu.RUnlock()
		free, _ := journal.ListFree(b.journalDir)
		if forgotten && len(free) == cfg.JournalRecycleSegments {
			return len(free)
		}
		if time.Now().After(deadline) {
			t.Fatalf("filler forgotten %v, free segments %v", forgotten, free)
		}
	}
}

// Reclaimed segments are written again, and the records they held, of a
// ledger the bookie deleted and forgot, never come back: not while
// serving, not after a restart whose newest segment is a recycled one
// written for a third (old records after its data), and not when a
// restart must scan every segment (their indexes gone). An old record
// taken for a new one would revive the ledger. Everything written into
// the recycled segments reads back.
func TestRecycledSegmentsOldRecordsNeverPassForNewOnes(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = -1
	nfree := fillFreeSegments(t, cfg)
	b := openBookie(t, cfg)
	const l = 7
	perSegment := cfg.JournalFileBytes / (50<<10 + journal.HeaderSize)
	n := ids.EntryID(int64(nfree-1)*perSegment + perSegment/3)
	for e := range n {
		mustAdd(t, b, l, e, e-1, 50<<10)
	}
	if got := counterValue(b.metrics.recycled); got != float64(nfree) || b.active.End() > cfg.JournalFileBytes/2 || gaugeValue(b.metrics.freeSegments) != 0 {
		t.Fatalf("%v segments recycled, the last written to %d: want all %d free ones used, the last for about a third",
			got, b.active.End(), nfree)
	}
	check := func(b *Bookie, when string) {
		t.Helper()
		for e := range n {
			mustRead(t, b, l, e, 50<<10)
		}
		if _, err := b.Read(fillerLedger, 0); !errors.Is(err, ErrLedgerNotFound) {
			t.Fatalf("%s: the forgotten ledger's entry 0: %v, want not found", when, err)
		}
		b.mu.RLock()
		revived := b.mu.table.Get(fillerLedger) != nil
		b.mu.RUnlock()
		if revived {
			t.Fatalf("%s: records of the forgotten ledger were taken for new ones", when)
		}
		if c := counterValue(b.metrics.corruptions); c != 0 {
			t.Fatalf("%s: %v corruptions reported", when, c)
		}
	}
	check(b, "serving")
	b = reopen(t, b, false)
	check(b, "after a restart")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	xs, _ := filepath.Glob(filepath.Join(b.journalDir, "*.idx"))
	for _, x := range xs {
		os.Remove(x)
	}
	b = openBookie(t, cfg)
	check(b, "after a restart that scanned every segment")
	mustAdd(t, b, l, n, n-1, 50<<10)
	mustRead(t, b, l, n, 50<<10)
}

// unseed rewrites every record of segment id in the format of bookies from
// before recycling: no seeded flag, a CRC without the segment id.
func unseed(t *testing.T, b *Bookie, id uint32) {
	t.Helper()
	p := filepath.Join(b.journalDir, journal.Name(id))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	n := 0
	res := journal.Scan(data, 0, false, b.seed(id), func(off, size int, _ journal.Record) {
		rec := data[off : off+size]
		rec[9] &^= 2
		c := crc32.Update(0, castagnoli, rec[0:4])
		binary.LittleEndian.PutUint32(rec[4:], crc32.Update(c, castagnoli, rec[8:]))
		n++
	})
	if len(res.Damaged) != 0 || n == 0 {
		t.Fatalf("segment %d: %d records, %d damaged", id, n, len(res.Damaged))
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A data directory written before records were seeded with their segment
// id opens and reads back byte-identical; its segments, once reclaimed,
// are removed rather than reused (their records, checked without a seed,
// would pass for records of any id), while segments written since are
// kept free for reuse.
func TestSegmentsWrittenBeforeSeededRecordsAreReadAndNeverRecycled(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = -1
	b := openBookie(t, cfg)
	for e := range ids.EntryID(60) {
		mustAdd(t, b, 1, e, e-1, 50<<10) // ~3 MiB: several segments
	}
	mustAdd(t, b, 2, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	legacy, _ := journal.List(b.journalDir)
	for _, id := range legacy {
		unseed(t, b, id)
	}
	xs, _ := filepath.Glob(filepath.Join(b.journalDir, "*.idx"))
	for _, x := range xs {
		os.Remove(x) // so that the restart decodes every record
	}
	if err := os.Remove(filepath.Join(b.journalDir, keyFile)); err != nil { // nor had they a key
		t.Fatal(err)
	}

	b = openBookie(t, cfg)
	for e := range ids.EntryID(60) {
		mustRead(t, b, 1, e, 50<<10)
	}
	mustRead(t, b, 2, 0, 100)
	if err := b.Delete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for e := range ids.EntryID(60) {
		mustAdd(t, b, 3, e, e-1, 50<<10) // segments of today's format
	}
	if err := b.Delete(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		mustAdd(t, b, 4, 0, -1, 10)
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
		segs, _ := journal.List(b.journalDir)
		free, _ := journal.ListFree(b.journalDir)
		for _, id := range free {
			if id <= legacy[len(legacy)-1] {
				t.Fatalf("segment %d, of records without a seed, kept for reuse", id)
			}
		}
		if len(free) > 0 && segs[0] > legacy[len(legacy)-2] {
			break // every legacy segment but the one ledger 2 lives in is gone
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments %v, free %v: legacy %v not reclaimed or nothing kept free", segs, free, legacy)
		}
	}
	mustRead(t, b, 2, 0, 100)
}

// The free segments a bookie keeps are bounded by JournalRecycleSegments
// when it opens too (a lowered setting frees the disk at once), and a
// bookie set to keep none removes them all and reclaims by removing.
func TestFreeSegmentsBeyondTheLimitAreRemovedAtOpen(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = -1
	fillFreeSegments(t, cfg)
	for _, keep := range []int{1, -1} {
		cfg.JournalRecycleSegments = keep
		b := openBookie(t, cfg)
		b.spareWG.Wait() // the spare may take a free segment too
		free, _ := journal.ListFree(b.journalDir)
		if used := int(counterValue(b.metrics.recycled)); used+len(free) != max(0, keep) {
			t.Fatalf("JournalRecycleSegments %d: free segments %v left and %d used after open", keep, free, used)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b := openBookie(t, cfg)
	for e := range ids.EntryID(60) {
		mustAdd(t, b, 9, e, e-1, 50<<10)
	}
	if err := b.Delete(context.Background(), 9); err != nil {
		t.Fatal(err)
	}
	before := counterValue(b.metrics.reclaimed)
	for deadline := time.Now().Add(30 * time.Second); counterValue(b.metrics.reclaimed) == before; {
		mustAdd(t, b, 10, 0, -1, 10)
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing reclaimed")
		}
	}
	if free, _ := journal.ListFree(b.journalDir); len(free) != 0 {
		t.Fatalf("free segments %v kept with JournalRecycleSegments -1", free)
	}
}

// A journal whose key file is gone, or holds another journal's key, is
// not opened (its keyed records could not be told from garbage, and the
// newest segment would be truncated as torn): the error names the file,
// and with the right one back everything reads.
func TestBookieWithoutItsJournalKeyRefusesToOpen(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg)
	mustAdd(t, b, 1, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.journalDir, keyFile)
	key, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if r, err := Open(cfg, testLogger(t)); err == nil || !errors.Is(err, ErrCorruption) || !strings.Contains(err.Error(), keyFile) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("open without the journal key: %v, want a Corruption error naming %s", err, keyFile)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("a refused open made a new key")
	}
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	b = openBookie(t, cfg)
	mustRead(t, b, 1, 0, 100)

	// Another journal's key is refused too, once a sealed segment can
	// tell: the scan would otherwise take every record for garbage.
	for e := range ids.EntryID(30) {
		mustAdd(t, b, 2, e, e-1, 60<<10) // rotations: sealed segments
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Open(cfg, testLogger(t)); err == nil || !errors.Is(err, ErrCorruption) || !strings.Contains(err.Error(), "does not hold the key") {
		if r != nil {
			r.Close()
		}
		t.Fatalf("open with another journal's key: %v, want a Corruption error", err)
	}
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	b = openBookie(t, cfg)
	mustRead(t, b, 2, 29, 60<<10)
}

// A crash can leave the segment written last with its first group torn,
// and an unused spare after it: the key check does not take the spare for
// the newest segment, nor the torn one for a sealed one that proves the
// key wrong. The bookie opens, and the torn group is cut as a torn tail.
func TestTornFirstGroupBeforeAnUnusedSpareDoesNotFailTheKeyCheck(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg)
	mustAdd(t, b, 1, 0, -1, 100)
	first := b.active.ID
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	path, off, _ := recordFile(t, b, 1, 0)
	if off != 0 {
		t.Fatalf("the entry is at %d, want the segment's first record", off)
	}
	damage(t, path, journal.HeaderSize+10, func(p []byte) { p[0] ^= 0xff }) // never acknowledged, say
	spare, err := journal.Create(b.journalDir, first+1, cfg.JournalFileBytes, false)
	if err != nil {
		t.Fatal(err)
	}
	spare.Close()
	r, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open after a torn first group and an unused spare: %v", err)
	}
	defer r.Close()
	if _, err := r.Read(1, 0); err == nil {
		t.Fatal("the torn record was served")
	}
}
