package index

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
)

func sampleRecs(id uint32) []Rec {
	return []Rec{
		{Op: OpPut, Ledger: 1, Entry: 0, LAC: ids.NoEntry, Loc: Loc{id, 0, 40}},
		{Op: OpPut, Ledger: 1, Entry: 1, LAC: 0, Loc: Loc{id, 40, 50}},
		{Op: OpFence, Ledger: 1, Entry: ids.NoEntry, LAC: ids.NoEntry, Loc: Loc{id, 90, 38}},
		{Op: OpPut, Ledger: 2, Entry: 1 << 40, LAC: 3, Loc: Loc{id, 128, 60}},
		{Op: OpDelete, Ledger: 3, Entry: ids.NoEntry, LAC: ids.NoEntry, Loc: Loc{id, 188, 38}},
	}
}

func TestSegmentIndexRoundTripKeepsEveryRecordInOrder(t *testing.T) {
	dir := t.TempDir()
	if err := SaveSegment(dir, 7, sampleRecs(7)); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSegment(dir, 7, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleRecs(7)) {
		t.Fatalf("got %+v\nwant %+v", got, sampleRecs(7))
	}
	if err := RemoveSegment(dir, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSegment(dir, 7, 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after remove: %v", err)
	}
	if err := RemoveSegment(dir, 7); err != nil {
		t.Fatalf("removing a missing index: %v", err)
	}
}

func TestSegmentIndexDamageIsDetected(t *testing.T) {
	enc := EncodeSegment(7, sampleRecs(7))
	for i := range enc {
		bad := append([]byte(nil), enc...)
		bad[i] ^= 0x10
		if _, err := DecodeSegment(bad, 7, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: got %v", i, err)
		}
	}
	for _, n := range []int{0, 1, len(enc) / 2, len(enc) - 1} {
		if _, err := DecodeSegment(enc[:n], 7, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: got %v", n, err)
		}
	}
}

// An index that is valid in itself but does not describe the segment at
// hand (another segment's, or one reaching past the file's end, as after a
// hand truncation) must not be used.
func TestSegmentIndexOfAnotherSegmentOrPastItsEndIsRejected(t *testing.T) {
	enc := EncodeSegment(7, sampleRecs(7))
	if _, err := DecodeSegment(enc, 8, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("another segment's index: %v", err)
	}
	if _, err := DecodeSegment(enc, 7, 200); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("records past the end of a 200-byte segment: %v", err)
	}
	if _, err := DecodeSegment(enc, 7, 226); err != nil {
		t.Fatalf("records ending exactly at the segment's end: %v", err)
	}
	overlap := sampleRecs(7)
	overlap[1].Loc.Off = 20
	if _, err := DecodeSegment(EncodeSegment(7, overlap), 7, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("overlapping records: %v", err)
	}
}

func TestStaleTemporaryIndexIsNotLoaded(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, SegmentName(3)+".tmp"), EncodeSegment(3, sampleRecs(3)), 0o644)
	if _, err := LoadSegment(dir, 3, 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a .tmp file was read as the index: %v", err)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	enc := EncodeSegment(7, sampleRecs(7))
	f.Add(enc[:len(enc)-4])
	enc = EncodeSegment(7, nil)
	f.Add(enc[:len(enc)-4])
	f.Add([]byte(segMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeSegment(b, 7, 1<<20)
		// Also with a valid CRC appended, to reach the structure behind it.
		fixed := binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, castagnoli))
		recs, err := DecodeSegment(fixed, 7, 1<<20)
		if err != nil {
			return
		}
		if again := EncodeSegment(7, recs); string(again) != string(fixed) {
			t.Fatal("a valid index does not re-encode to its own bytes")
		}
		tb := New()
		for _, r := range recs {
			tb.Apply(r)
		}
	})
}
