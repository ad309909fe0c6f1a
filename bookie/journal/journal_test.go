package journal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// testKey is the tests' journal key; testSeed the seed of the segment
// their records are written into.
const testKey = 0x5eed

var testSeed = SeedOf(testKey, 1)

func entry(l ids.LedgerID, e ids.EntryID, mark uint32, payload string) Record {
	return Record{Kind: KindEntry, Ledger: l, Entry: e, LAC: e - 1, SyncMark: mark, Payload: []byte(payload)}
}

func TestRecordRoundTripPreservesEveryField(t *testing.T) {
	recs := []Record{
		entry(1, 0, 0, "hello"),
		{Kind: KindEntry, Recovery: true, Ledger: 1<<63 + 5, Entry: 1 << 40, LAC: ids.NoEntry, SyncMark: 77},
		{Kind: KindFence, Ledger: 9, Entry: ids.NoEntry, LAC: ids.NoEntry},
		{Kind: KindDelete, Ledger: 9, Entry: ids.NoEntry, LAC: ids.NoEntry},
	}
	var buf []byte
	for i := range recs {
		buf = Append(buf, &recs[i], testSeed)
	}
	for i, want := range recs {
		got, n, err := Decode(buf, testSeed)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if n != want.Size() || got.Kind != want.Kind || got.Recovery != want.Recovery || got.Ledger != want.Ledger ||
			got.Entry != want.Entry || got.LAC != want.LAC || got.SyncMark != want.SyncMark || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("record %d: got %+v (n=%d), want %+v", i, got, n, want)
		}
		buf = buf[n:]
	}
}

func TestDecodeDetectsEveryFlippedByte(t *testing.T) {
	r := entry(3, 4, 0, "payload bytes")
	enc := Append(nil, &r, testSeed)
	for i := range enc {
		bad := bytes.Clone(enc)
		bad[i] ^= 0x40
		if _, _, err := Decode(bad, testSeed); err == nil {
			t.Fatalf("flip at byte %d not detected", i)
		}
	}
}

func TestDecodeChecksumErrorIsCorruption(t *testing.T) {
	r := entry(3, 4, 0, "x")
	enc := Append(nil, &r, testSeed)
	enc[len(enc)-1] ^= 1
	_, _, err := Decode(enc, testSeed)
	if !errors.Is(err, errcode.New(errcode.Corruption, "")) {
		t.Fatalf("got %v, want a Corruption error", err)
	}
}

// segment builds a preallocated-looking segment: groups of records, each
// group with its start as sync mark, followed by zeros.
func segment(groups [][]string, size int) (data []byte, starts []int) {
	e := ids.EntryID(0)
	for _, g := range groups {
		mark := uint32(len(data))
		for _, p := range g {
			starts = append(starts, len(data))
			r := entry(1, e, mark, p)
			data = Append(data, &r, testSeed)
			e++
		}
	}
	return append(data, make([]byte, max(0, size-len(data)))...), starts
}

func scanAll(data []byte, newest bool) (ScanResult, []ids.EntryID) {
	var got []ids.EntryID
	res := Scan(data, 0, newest, testSeed, func(_, _ int, r Record) { got = append(got, r.Entry) })
	return res, got
}

func TestScanStopsAtZeroTail(t *testing.T) {
	data, _ := segment([][]string{{"a", "b"}, {"c"}}, 4096)
	res, got := scanAll(data, true)
	if len(got) != 3 || res.Torn || len(res.Damaged) != 0 {
		t.Fatalf("got %v %+v", got, res)
	}
}

func TestScanTruncatesTornTailOfNewestSegment(t *testing.T) {
	data, starts := segment([][]string{{"a", "b"}, {"c", "d", "e"}}, 4096)
	// The last group was being written: its first record is torn, a later
	// record of the same group landed.
	data[starts[2]+HeaderSize] ^= 0xff
	res, got := scanAll(data, true)
	if len(got) != 2 || !res.Torn || res.End != starts[2] || len(res.Damaged) != 0 {
		t.Fatalf("got %v %+v, want entries 0,1 and a torn tail at %d", got, res, starts[2])
	}
}

func TestScanReportsDamageInDurableGroupOfNewestSegment(t *testing.T) {
	data, starts := segment([][]string{{"a", "b"}, {"c"}}, 4096)
	data[starts[0]+HeaderSize] ^= 0xff // group 1 was fsync'd: group 2 proves it
	res, got := scanAll(data, true)
	if len(got) != 2 || res.Torn || len(res.Damaged) != 1 || res.Damaged[0].Off != 0 {
		t.Fatalf("got %v %+v, want damage at 0 and entries 1,2", got, res)
	}
	if c := res.Damaged[0].Claimed; c == nil || c.Ledger != 1 || c.Entry != 0 {
		t.Fatalf("damage should claim ledger 1 entry 0, got %+v", c)
	}
}

func TestScanReportsDamageInOlderSegment(t *testing.T) {
	data, starts := segment([][]string{{"a", "b", "c"}}, 4096)
	data[starts[1]+HeaderSize] ^= 0xff
	res, got := scanAll(data, false)
	if len(got) != 2 || res.Torn || len(res.Damaged) != 1 {
		t.Fatalf("got %v %+v", got, res)
	}
}

func TestScanTruncatedRecordAtEndIsTorn(t *testing.T) {
	data, starts := segment([][]string{{"a"}, {"bbbbbbbb"}}, 0)
	data = data[:len(data)-3]
	res, got := scanAll(data, true)
	if len(got) != 1 || !res.Torn || res.End != starts[1] {
		t.Fatalf("got %v %+v", got, res)
	}
}

func FuzzDecode(f *testing.F) {
	r := entry(7, 3, 0, "seed payload")
	f.Add(Append(nil, &r, testSeed))
	fr := Record{Kind: KindFence, Ledger: 7, Entry: ids.NoEntry, LAC: ids.NoEntry}
	f.Add(Append(nil, &fr, testSeed))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := Decode(b, testSeed)
		if err != nil {
			return
		}
		if n > len(b) || n != rec.Size() {
			t.Fatalf("bad size %d of %d", n, len(b))
		}
		// Only records this version writes encode back to the same bytes
		// (an unseeded one gains the flag).
		again := Append(nil, &rec, testSeed)
		if Seeded(b) && !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
		Scan(b, 0, true, testSeed, func(int, int, Record) {})
	})
}

func FuzzScan(f *testing.F) {
	data, _ := segment([][]string{{"a", "b"}, {"c"}}, 256)
	f.Add(data, true)
	f.Fuzz(func(t *testing.T, b []byte, newest bool) {
		res := Scan(b, 0, newest, testSeed, func(off, n int, _ Record) {
			if off < 0 || off+n > len(b) {
				t.Fatalf("record out of bounds")
			}
		})
		if res.End < 0 || res.End > len(b) {
			t.Fatalf("end %d out of bounds", res.End)
		}
	})
}

// A segment whose creation failed (here: a preallocation no disk can
// satisfy) leaves no file, so the same id can be created once the cause is
// gone: the bookie retries a failed spare that way.
func TestCreateThatFailsLeavesNoFileAndTheIdCanBeCreatedAgain(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, 7, 1<<50, true); err == nil {
		t.Fatal("a 1 PiB preallocation succeeded")
	}
	if ids, _ := List(dir); len(ids) != 0 {
		t.Fatalf("segments %v left after a failed create", ids)
	}
	s, err := Create(dir, 7, 1<<20, true)
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	s.Close()
}

// Appends of any sizes, of bytes given or encoded in place, leave the file
// holding exactly their concatenation followed by zeros, whether they go
// through direct I/O (page-aligned writes that repeat the partial last
// page) or the page cache; and no append changes a byte written before it.
func TestAppendsLeaveTheirConcatenationAndNeverChangeEarlierBytes(t *testing.T) {
	for _, c := range []struct{ zero, buffered bool }{{true, false}, {false, false}, {false, true}} {
		buffered := c.buffered
		t.Run(fmt.Sprintf("zeros=%v/buffered=%v", c.zero, buffered), func(t *testing.T) {
			s, err := Create(t.TempDir(), 1, 1<<20, c.zero)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if buffered { // as on a file system that refuses O_DIRECT
				s.Seal()
			}
			t.Logf("direct I/O: %v", s.Direct())
			checkAppends(t, s)
		})
	}
}

func checkAppends(t *testing.T, s *Segment) {
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for i := 0; len(want) < 900<<10; i++ {
		n := 1 + rng.IntN(3*pageSize)
		if i%7 == 0 {
			n = pageSize - len(want)%pageSize // end exactly on a page
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(1 + rng.IntN(255))
		}
		// Every other append encodes in place (AppendWith), as the
		// bookie's writer does.
		var err error
		if i%2 == 0 {
			err = s.Append(p)
		} else {
			err = s.AppendWith(n, func(dst []byte) {
				if len(dst) != n {
					t.Fatalf("AppendWith(%d) gave %d bytes to encode into", n, len(dst))
				}
				copy(dst, p)
			})
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		want = append(want, p...)
		got, err := s.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("after append %d (%d bytes): the file differs from the appends", i, n)
		}
		if !allZero(got[len(want):]) {
			t.Fatalf("after append %d: non-zero bytes after the end", i)
		}
	}
}

// A sealed segment holds no write descriptor or buffer of its own, and
// still reads what was appended.
func TestSealReleasesTheWriteSideAndKeepsTheData(t *testing.T) {
	s, err := Create(t.TempDir(), 1, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(bytes.Repeat([]byte{7}, 5000)); err != nil {
		t.Fatal(err)
	}
	s.Seal()
	if s.w != s.f || s.abuf != nil || s.tail != nil {
		t.Fatal("a sealed segment keeps its write descriptor or buffers")
	}
	got := make([]byte, 5000)
	if err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{7}, 5000)) {
		t.Fatalf("read after seal: %v", err)
	}
}
