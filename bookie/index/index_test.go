package index

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
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
	t.Delete(3)
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
	tb.Delete(1)
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
		if o == nil || l.Fenced != o.Fenced || l.Deleted != o.Deleted || l.LAC != o.LAC || l.Last != o.Last {
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
