package index

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

func sampleTable() *Table {
	t := New()
	t.Put(1, 0, ids.NoEntry, Loc{1, 0, 40})
	t.Put(1, 1, 0, Loc{1, 40, 50})
	t.Put(2, 5, 3, Loc{2, 0, 60})
	t.Fence(2)
	t.Put(3, 0, ids.NoEntry, Loc{1, 90, 40})
	t.Delete(3, 1)
	t.Fence(4)
	return t
}

func TestTableTracksLACLastAndLiveCounts(t *testing.T) {
	tb := sampleTable()
	if l := tb.Get(1); l.LAC != 0 || l.Last != 1 || l.Entries.Len() != 2 {
		t.Fatalf("ledger 1: %+v", l)
	}
	if tb.Live[1] != 2 || tb.Live[2] != 1 {
		t.Fatalf("live: %v", tb.Live)
	}
	tb.Put(1, 1, 0, Loc{2, 60, 50}) // overwrite moves the entry
	if tb.Live[1] != 1 || tb.Live[2] != 2 {
		t.Fatalf("live after overwrite: %v", tb.Live)
	}
	tb.Delete(1, 2)
	tb.Put(1, 7, 6, Loc{2, 200, 40}) // a put into a deleted ledger is ignored
	if _, ok := tb.Live[1]; ok || tb.Live[2] != 1 || tb.Get(1).Entries.Len() != 0 {
		t.Fatalf("live after delete: %v", tb.Live)
	}
}

// statesEqual reports whether t and u hold the same ledgers with the same
// flags, LAC and last entry (what a checkpoint keeps).
func statesEqual(t, u *Table) bool {
	if len(t.Ledgers) != len(u.Ledgers) {
		return false
	}
	for id, l := range t.Ledgers {
		o := u.Ledgers[id]
		if o == nil || l.Fenced != o.Fenced || l.Deleted != o.Deleted || l.DeletedIn != o.DeletedIn || l.LAC != o.LAC || l.Last != o.Last {
			return false
		}
	}
	return true
}

func TestCheckpointRoundTripKeepsLedgerStatesAndNoEntries(t *testing.T) {
	tb := sampleTable()
	enc := Encode(nil, 42, Position{3, 1234}, tb)
	cp, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != 42 || cp.Pos != (Position{3, 1234}) {
		t.Fatalf("header: %+v", cp)
	}
	if !statesEqual(cp.Table, tb) {
		t.Fatal("ledger states differ after a round trip")
	}
	if cp.Table.Entries() != 0 {
		t.Fatalf("checkpoint holds %d entries: locations belong in segment indexes", cp.Table.Entries())
	}
}

// A checkpoint written before deleted ledgers kept the segment of their
// delete record (-1 in its place) loads with the checkpoint's own segment
// as that bound, which is never too low: the record lies before Position.
// A segment past Position is damage.
func TestCheckpointDeleteSegmentBoundedByPosition(t *testing.T) {
	tb := New()
	tb.Delete(5, 3)
	enc := Encode(nil, 1, Position{4, 100}, tb)
	body := enc[:len(enc)-4]
	old := append([]byte(nil), body...)
	binary.LittleEndian.PutUint64(old[headerSize+17:], ^uint64(0)) // -1
	cp, err := Decode(binary.LittleEndian.AppendUint32(old, crc32.Checksum(old, castagnoli)))
	if err != nil || cp.Table.Get(5).DeletedIn != 4 || cp.Table.Get(5).Last != ids.NoEntry {
		t.Fatalf("old checkpoint: %v %+v", err, cp.Table.Get(5))
	}
	bad := append([]byte(nil), body...)
	binary.LittleEndian.PutUint64(bad[headerSize+17:], 5)
	if _, err := Decode(binary.LittleEndian.AppendUint32(bad, crc32.Checksum(bad, castagnoli))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a delete segment past the position: %v", err)
	}
}

// Prune forgets exactly the deleted ledgers whose delete record (and so
// every record of theirs) lies before the oldest segment left, keeps a
// ledger deleted again in a later segment, and leaves live ledgers alone;
// a pruned ledger no longer goes into checkpoints.
func TestPruneForgetsOnlyLedgersWhoseSegmentsAreGone(t *testing.T) {
	tb := New()
	tb.Put(1, 0, ids.NoEntry, Loc{1, 0, 40})
	tb.Delete(1, 2)
	tb.Delete(2, 3)
	tb.Delete(3, 2)
	tb.Delete(3, 5) // deleted again later: its records may reach segment 5
	tb.Put(4, 0, ids.NoEntry, Loc{1, 40, 40})
	tb.Fence(6)
	if n := tb.Prune(2); n != 0 {
		t.Fatalf("pruned %d with segment 2 still there", n)
	}
	if n := tb.Prune(4); n != 2 || tb.Get(1) != nil || tb.Get(2) != nil {
		t.Fatalf("prune(4): %d, ledger 1 %v, ledger 2 %v", n, tb.Get(1), tb.Get(2))
	}
	if l := tb.Get(3); l == nil || !l.Deleted || l.DeletedIn != 5 {
		t.Fatalf("ledger 3 deleted again in segment 5: %+v", l)
	}
	if tb.Get(4) == nil || tb.Get(6) == nil {
		t.Fatal("prune removed a ledger that was not deleted")
	}
	if n := tb.Prune(6); n != 1 || tb.Get(3) != nil {
		t.Fatalf("prune(6): %d", n)
	}
	cp, err := Decode(Encode(nil, 1, Position{6, 0}, tb))
	if err != nil || len(cp.Table.Ledgers) != 2 {
		t.Fatalf("checkpoint after pruning: %v, %d ledgers", err, len(cp.Table.Ledgers))
	}
}

func TestCheckpointDamageIsDetected(t *testing.T) {
	enc := Encode(nil, 1, Position{1, 0}, sampleTable())
	for i := range enc {
		bad := append([]byte(nil), enc...)
		bad[i] ^= 0x10
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: got %v", i, err)
		}
	}
	if _, err := Decode(enc[:len(enc)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: got %v", err)
	}
}

func TestLoadPicksNewestValidSlot(t *testing.T) {
	dir := t.TempDir()
	for seq := uint64(1); seq <= 3; seq++ {
		if err := Save(dir, seq, Encode(nil, seq, Position{uint32(seq), 0}, New())); err != nil {
			t.Fatal(err)
		}
	}
	cps, damaged, err := Load(dir)
	if err != nil || damaged != 0 || len(cps) != 2 || cps[0].Seq != 3 || cps[1].Seq != 2 {
		t.Fatalf("load: %v %d %+v", err, damaged, cps)
	}
	// Damage the newest: the older one is used.
	p := filepath.Join(dir, slotName(3))
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	os.WriteFile(p, b, 0o644)
	cps, damaged, err = Load(dir)
	if err != nil || damaged != 1 || len(cps) != 1 || cps[0].Seq != 2 {
		t.Fatalf("load after damage: %v %d %+v", err, damaged, cps)
	}
}

// encodeV1 writes t in the first checkpoint format (entry locations
// included), as bookies wrote it before segment indexes.
func encodeV1(seq uint64, pos Position, t *Table) []byte {
	b := appendHeader(nil, magicV1, seq, pos, len(t.Ledgers))
	for id, led := range t.Ledgers {
		b = binary.LittleEndian.AppendUint64(b, uint64(id))
		b = append(b, led.flags())
		b = binary.LittleEndian.AppendUint64(b, uint64(led.LAC))
		b = binary.LittleEndian.AppendUint64(b, uint64(led.Last))
		b = binary.LittleEndian.AppendUint32(b, uint32(led.Entries.Len()))
		for e, loc := range led.Entries.All() {
			b = binary.LittleEndian.AppendUint64(b, uint64(e))
			b = binary.LittleEndian.AppendUint32(b, loc.File)
			b = binary.LittleEndian.AppendUint32(b, loc.Off)
			b = binary.LittleEndian.AppendUint32(b, loc.Len)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// A data directory written before segment indexes existed holds a
// first-format checkpoint: it must still load, whole, or the directory
// would not open.
func TestFirstFormatCheckpointStillLoads(t *testing.T) {
	tb := sampleTable()
	cp, err := Decode(encodeV1(9, Position{2, 60}, tb))
	if err != nil {
		t.Fatal(err)
	}
	tb.Get(3).DeletedIn = 2 // this format kept no segment: Pos's bounds it
	if cp.Seq != 9 || cp.Pos != (Position{2, 60}) || !cp.Table.Equal(tb) {
		t.Fatalf("first-format checkpoint read as %+v", cp)
	}
	bad := encodeV1(9, Position{2, 60}, tb)
	bad[40] ^= 1
	if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged first-format checkpoint: %v", err)
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	enc := Encode(nil, 1, Position{1, 0}, sampleTable())
	f.Add(enc[:len(enc)-4])
	v1 := encodeV1(1, Position{1, 0}, sampleTable())
	f.Add(v1[:len(v1)-4])
	enc = Encode(nil, 0, Position{}, New())
	f.Add(enc[:len(enc)-4])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b)
		// Also decode b with a valid CRC appended, so the fuzzer reaches the
		// structure behind the checksum.
		fixed := binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
		cp, err := Decode(fixed)
		if err != nil {
			return
		}
		again, err := Decode(Encode(nil, cp.Seq, cp.Pos, cp.Table))
		if err != nil || !statesEqual(again.Table, cp.Table) {
			t.Fatalf("re-encoded checkpoint differs: %v", err)
		}
	})
}

// A tombstone said to lie in a segment past the one a checkpoint is taken
// in (an earlier version's checkpoint bounded it by its own position, a
// spare since removed) is moved back, so that the checkpoint decodes, and
// Prune still forgets the ledger once its segment goes.
func TestClampedTombstoneLetsAnEarlierPositionsCheckpointDecode(t *testing.T) {
	tb := New()
	tb.Put(7, 0, ids.NoEntry, Loc{File: 3, Off: 0, Len: 100})
	tb.Delete(7, 5)
	tb.ClampDeletedIn(4)
	cp, err := Decode(Encode(nil, 1, Position{File: 4, Off: 10}, tb))
	if err != nil {
		t.Fatalf("a checkpoint at segment 4 of a ledger deleted in 5, clamped: %v", err)
	}
	if led := cp.Table.Get(7); led == nil || !led.Deleted || led.DeletedIn != 4 {
		t.Fatalf("ledger 7 after the round trip: %+v", led)
	}
	if n := tb.Prune(5); n != 1 || tb.Get(7) != nil {
		t.Fatalf("pruned %d, ledger 7 %+v: want it forgotten once segment 4 is gone", n, tb.Get(7))
	}
}

// LiveLedgers pages through the ledgers a table holds as a sorted list
// would, deleted ones left out, however the page bound cuts them.
func TestLiveLedgersPagesThroughTheUndeletedLedgersInOrder(t *testing.T) {
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 4))
		tb := New()
		var want []ids.LedgerID
		for range r.IntN(300) {
			id := ids.LedgerID(1 + r.Uint64N(1000))
			if tb.Get(id) != nil {
				continue
			}
			switch r.IntN(3) {
			case 0:
				tb.Put(id, 0, ids.NoEntry, Loc{File: 1, Len: 40})
				want = append(want, id)
			case 1:
				tb.Fence(id) // a fence alone is a ledger the bookie knows
				want = append(want, id)
			default:
				tb.Put(id, 0, ids.NoEntry, Loc{File: 1, Len: 40})
				tb.Delete(id, 1)
			}
		}
		slices.Sort(want)
		max := 1 + r.IntN(40)
		var got []ids.LedgerID
		for first := ids.LedgerID(0); ; {
			page, more := tb.LiveLedgers(first, max)
			if len(page) > max || (more && len(page) != max) {
				t.Fatalf("seed %d: a page of %d (more %v), bound %d", seed, len(page), more, max)
			}
			got = append(got, page...)
			if !more {
				break
			}
			first = page[len(page)-1] + 1
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d, pages of %d: listed %v, want %v", seed, max, got, want)
		}
	}
}
