package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// recycleCase shapes recycledSegment's file.
type recycleCase struct {
	old, id uint32
	groups  [][]string
	// buffered appends through the page cache, as on a file system that
	// refuses O_DIRECT.
	buffered bool
	// oldPayload is the payload of the old records (default: bytes of
	// 0x5a, of sizes that vary).
	oldPayload []byte
}

// recycledSegment writes segment c.old full of records, frees it and
// recycles it as segment c.id, then appends c.groups of new records to it:
// the file a bookie writes into after reusing a reclaimed segment.
func recycledSegment(t *testing.T, c recycleCase) (seg *Segment, starts []int) {
	t.Helper()
	dir := t.TempDir()
	s, err := Create(dir, c.old, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	var stale []byte
	for e := ids.EntryID(0); len(stale) < 1<<20-16<<10; e++ {
		p := c.oldPayload
		if p == nil {
			p = bytes.Repeat([]byte{0x5a}, 1000+int(e)%3000)
		}
		r := entry(9, e, uint32(len(stale)), string(p))
		stale = Append(stale, &r, SeedOf(testKey, c.old))
	}
	if err := s.Append(stale); err != nil {
		t.Fatal(err)
	}
	if err := s.Free(dir); err != nil {
		t.Fatal(err)
	}
	if free, _ := ListFree(dir); len(free) != 1 || free[0] != c.old {
		t.Fatalf("free segments %v, want [%d]", free, c.old)
	}
	s, err = Recycle(dir, c.old, c.id, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if unwritten, err := s.Unwritten(); err != nil || !unwritten {
		t.Fatalf("a recycled segment must read as unwritten until written (%v, %v)", unwritten, err)
	}
	if segs, _ := List(dir); len(segs) != 1 || segs[0] != c.id {
		t.Fatalf("segments %v after recycling, want [%d]", segs, c.id)
	}
	if c.buffered {
		s.Seal()
	}
	var data []byte
	e := ids.EntryID(0)
	for _, g := range c.groups {
		mark := uint32(len(data))
		var buf []byte
		for _, p := range g {
			starts = append(starts, len(data)+len(buf))
			r := entry(1, e, mark, p)
			buf = Append(buf, &r, SeedOf(testKey, c.id))
			e++
		}
		if err := s.Append(buf); err != nil {
			t.Fatal(err)
		}
		data = append(data, buf...)
	}
	return s, starts
}

// A recycled segment keeps its earlier records past the end of the new
// data; they carry the CRCs of the segment's old id, so the scan of the new
// id ends where the new records end: no damage, no torn tail, none of the
// old records handed out, in the newest segment and in a sealed one; also
// when the new data ends on a page boundary, and when appends go through
// the page cache.
func TestScanOfRecycledSegmentEndsAtTheNewRecords(t *testing.T) {
	pageFill := string(make([]byte, pageSize-HeaderSize))
	for _, c := range []struct {
		name     string
		groups   [][]string
		buffered bool
	}{
		{"direct", [][]string{{"a", "b"}, {"c"}}, false},
		{"buffered", [][]string{{"a", "b"}, {"c"}}, true},
		{"page-aligned-end", [][]string{{pageFill}, {pageFill, pageFill}}, false},
		{"page-aligned-end/buffered", [][]string{{pageFill}, {pageFill, pageFill}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := recycledSegment(t, recycleCase{old: 3, id: 8, groups: c.groups, buffered: c.buffered})
			data, err := s.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, newest := range []bool{true, false} {
				var got []ids.LedgerID
				res := Scan(data, 0, newest, SeedOf(testKey, 8), func(_, _ int, r Record) { got = append(got, r.Ledger) })
				if len(got) != 3 || res.Torn || len(res.Damaged) != 0 || res.End != int(s.End()) {
					t.Fatalf("newest=%v: %d records (ledgers %v...), end %d, torn %v, %d damaged; want the 3 new records, end %d, no damage, not torn",
						newest, len(got), got[:min(5, len(got))], res.End, res.Torn, len(res.Damaged), s.End())
				}
			}
			// Under the id the file had, the old records are valid: the
			// seed alone tells them apart.
			n := 0
			Scan(data[4*pageSize:], 0, false, SeedOf(testKey, 3), func(int, int, Record) { n++ })
			if n == 0 {
				t.Fatal("no old record found under the old id: the test's file is not what it claims")
			}
		})
	}
}

// Entries' payloads are anybody's bytes: a producer may put records in
// them, seeded for the ids segments will have and claiming a sync mark
// that proves anything durable. Once such a segment is recycled, the scan
// looks at those bytes past the end of the new data, and takes none of
// them: the seed holds the journal's key, which no producer knows.
func TestRecordsForgedInOldPayloadsAreNotTakenWithoutTheKey(t *testing.T) {
	const attackerKey = 0xbad
	forged := Record{Kind: KindDelete, Ledger: 4242, Entry: ids.NoEntry, LAC: ids.NoEntry, SyncMark: 0xffffffff}
	var payload []byte
	for len(payload) < 3000 {
		payload = Append(payload, &forged, SeedOf(attackerKey, 8))
	}
	s, _ := recycledSegment(t, recycleCase{old: 3, id: 8, groups: [][]string{{"a", "b"}, {"c"}}, oldPayload: payload})
	data, err := s.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	scan := func(seed Seed) (ledgers []ids.LedgerID, res ScanResult) {
		res = Scan(data, 0, true, seed, func(_, _ int, r Record) { ledgers = append(ledgers, r.Ledger) })
		return ledgers, res
	}
	if got, res := scan(SeedOf(testKey, 8)); len(got) != 3 || slices.Contains(got, 4242) || len(res.Damaged) != 0 || res.Torn {
		t.Fatalf("%d records (forged delete taken: %v), %d damaged, torn %v: want the 3 new records only",
			len(got), slices.Contains(got, 4242), len(res.Damaged), res.Torn)
	}
	// Had the producer known the key, its records would have passed: the
	// key is what stops them.
	if got, _ := scan(SeedOf(attackerKey, 8)); !slices.Contains(got, 4242) {
		t.Fatal("the forged records do not pass even under the attacker's key: the test's file is not what it claims")
	}
}

// A torn last group in a recycled segment is a torn tail, like in a new
// one: the scan ends at the group's start.
func TestTornGroupInRecycledSegmentIsATornTail(t *testing.T) {
	s, starts := recycledSegment(t, recycleCase{old: 3, id: 8, groups: [][]string{{"a", "b"}, {"ccc", "ddd"}}})
	data, err := s.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	data[starts[2]+HeaderSize] ^= 0xff
	res := Scan(data, 0, true, SeedOf(testKey, 8), func(int, int, Record) {})
	if !res.Torn || res.End != starts[2] || len(res.Damaged) != 0 {
		t.Fatalf("%+v, want a torn tail at %d", res, starts[2])
	}
}

// Recycle refuses an id not above the one the free segment had (its old
// records would pass for new ones) and leaves the file for another try.
func TestRecycleRefusesAnIdNotAboveTheOldOne(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, 5, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Free(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{4, 5} {
		if _, err := Recycle(dir, 5, id, 1<<20); !errors.Is(err, ErrFreeID) {
			t.Fatalf("recycle 5 as %d: %v, want ErrFreeID", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FreeName(5))); err != nil {
		t.Fatal(err)
	}
	r, err := Recycle(dir, 5, 6, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if size, _ := r.Size(); size != 2<<20 {
		t.Fatalf("recycled segment of %d bytes, want the size asked for", size)
	}
}

// A segment is never freed over a free file of the same id: Free fails
// and leaves both files as they were.
func TestFreeNeverReplacesAFreeFileOfTheSameID(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(dir, 4, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Free(dir); err != nil {
		t.Fatal(err)
	}
	b, err := Create(dir, 4, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Free(dir); !errors.Is(err, os.ErrExist) {
		t.Fatalf("freeing segment 4 over 00000004.free: %v, want ErrExist", err)
	}
	if segs, _ := List(dir); len(segs) != 1 {
		t.Fatalf("segments %v: the one not freed was lost", segs)
	}
}
