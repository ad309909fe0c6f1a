package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

// recycledSegment writes segment old full of records, frees it and
// recycles it as segment id, then appends groups of new records to it: the
// file a bookie writes into after reusing a reclaimed segment.
func recycledSegment(t *testing.T, old, id uint32, groups [][]string) (seg *Segment, starts []int) {
	t.Helper()
	dir := t.TempDir()
	s, err := Create(dir, old, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	var stale []byte
	for e := ids.EntryID(0); len(stale) < 1<<20-8<<10; e++ {
		r := entry(9, e, uint32(len(stale)), string(make([]byte, 1000+int(e)%3000)))
		stale = Append(stale, &r, old)
	}
	if err := s.Append(stale); err != nil {
		t.Fatal(err)
	}
	if err := s.Free(dir); err != nil {
		t.Fatal(err)
	}
	if free, _ := ListFree(dir); len(free) != 1 || free[0] != old {
		t.Fatalf("free segments %v, want [%d]", free, old)
	}
	s, err = Recycle(dir, old, id, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if unwritten, err := s.Unwritten(); err != nil || !unwritten {
		t.Fatalf("a recycled segment must read as unwritten until written (%v, %v)", unwritten, err)
	}
	if segs, _ := List(dir); len(segs) != 1 || segs[0] != id {
		t.Fatalf("segments %v after recycling, want [%d]", segs, id)
	}
	var data []byte
	e := ids.EntryID(0)
	for _, g := range groups {
		mark := uint32(len(data))
		var buf []byte
		for _, p := range g {
			starts = append(starts, len(data)+len(buf))
			r := entry(1, e, mark, p)
			buf = Append(buf, &r, id)
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
// old records handed out, in the newest segment and in a sealed one.
func TestScanOfRecycledSegmentEndsAtTheNewRecords(t *testing.T) {
	s, _ := recycledSegment(t, 3, 8, [][]string{{"a", "b"}, {"c"}})
	data, err := s.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, newest := range []bool{true, false} {
		var got []ids.LedgerID
		res := Scan(data, 0, newest, 8, func(_, _ int, r Record) { got = append(got, r.Ledger) })
		if len(got) != 3 || res.Torn || len(res.Damaged) != 0 || res.End != int(s.End()) {
			t.Fatalf("newest=%v: %d records (ledgers %v...), end %d, torn %v, %d damaged; want the 3 new records, end %d, no damage, not torn",
				newest, len(got), got[:min(5, len(got))], res.End, res.Torn, len(res.Damaged), s.End())
		}
	}
	// Under the id the file had, the old records are all valid: the seed
	// alone tells them apart.
	n := 0
	Scan(data[4096:], 0, false, 3, func(int, int, Record) { n++ })
	if n == 0 {
		t.Fatal("no old record found under the old id: the test's file is not what it claims")
	}
}

// A torn last group in a recycled segment is a torn tail, like in a new
// one: the scan ends at the group's start.
func TestTornGroupInRecycledSegmentIsATornTail(t *testing.T) {
	s, starts := recycledSegment(t, 3, 8, [][]string{{"a", "b"}, {"ccc", "ddd"}})
	data, err := s.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	data[starts[2]+HeaderSize] ^= 0xff
	res := Scan(data, 0, true, 8, func(int, int, Record) {})
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
