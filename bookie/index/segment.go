package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/strata-mq/strata/internal/ids"
)

// Op is what a journal record does to the table.
type Op uint8

// The ops of journal records.
const (
	OpPut    Op = 1
	OpFence  Op = 2
	OpDelete Op = 3
)

// Rec is one journal record as the index sees it.
type Rec struct {
	Op     Op
	Ledger ids.LedgerID
	Entry  ids.EntryID // NoEntry for fence and delete
	LAC    ids.EntryID // NoEntry for fence and delete
	Loc    Loc
}

// Apply applies one journal record to t.
func (t *Table) Apply(r Rec) {
	switch r.Op {
	case OpPut:
		t.Put(r.Ledger, r.Entry, r.LAC, r.Loc)
	case OpFence:
		t.Fence(r.Ledger)
	case OpDelete:
		t.Delete(r.Ledger, r.Loc.File)
	}
}

const (
	segMagic  = "STRSIX01"
	segHeader = 16
	segRec    = 33
)

// SegmentName is the file name of segment id's index.
func SegmentName(id uint32) string { return fmt.Sprintf("%08x.idx", id) }

// EncodeSegment encodes the index of segment id, whose records are recs in
// journal order.
func EncodeSegment(id uint32, recs []Rec) []byte {
	b := make([]byte, 0, segHeader+len(recs)*segRec+4)
	b = append(b, segMagic...)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(recs)))
	for _, r := range recs {
		b = append(b, byte(r.Op))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Ledger))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Entry))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.LAC))
		b = binary.LittleEndian.AppendUint32(b, r.Loc.Off)
		b = binary.LittleEndian.AppendUint32(b, r.Loc.Len)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// DecodeSegment parses the index of segment id, whose file is size bytes
// long. Anything that is not an index of that segment, with records in
// order, not overlapping and inside the file, gives ErrCorrupt.
func DecodeSegment(b []byte, id uint32, size int64) ([]Rec, error) {
	if len(b) < segHeader+4 || string(b[:8]) != segMagic {
		return nil, ErrCorrupt
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) ||
		binary.LittleEndian.Uint32(body[8:]) != id {
		return nil, ErrCorrupt
	}
	count := uint64(binary.LittleEndian.Uint32(body[12:]))
	rest := body[segHeader:]
	if uint64(len(rest)) != count*segRec {
		return nil, ErrCorrupt
	}
	recs := make([]Rec, 0, count)
	end := int64(0) // the previous record's end
	for ; len(rest) > 0; rest = rest[segRec:] {
		r := Rec{
			Op:     Op(rest[0]),
			Ledger: ids.LedgerID(binary.LittleEndian.Uint64(rest[1:])),
			Entry:  ids.EntryID(binary.LittleEndian.Uint64(rest[9:])),
			LAC:    ids.EntryID(binary.LittleEndian.Uint64(rest[17:])),
			Loc:    Loc{File: id, Off: binary.LittleEndian.Uint32(rest[25:]), Len: binary.LittleEndian.Uint32(rest[29:])},
		}
		valid := r.Ledger != 0 && r.Loc.Len != 0 && int64(r.Loc.Off) >= end && r.LAC >= ids.NoEntry
		switch r.Op {
		case OpPut:
			valid = valid && r.Entry >= 0
		case OpFence, OpDelete:
			valid = valid && r.Entry == ids.NoEntry && r.LAC == ids.NoEntry
		default:
			valid = false
		}
		end = int64(r.Loc.Off) + int64(r.Loc.Len)
		if !valid || end > size {
			return nil, ErrCorrupt
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// SaveSegment writes the index of sealed segment id into dir. It does not
// fsync: the index is immutable and checked on load, so a crash that loses
// or tears it only costs a scan of the segment, and an fsync here would
// queue behind, and delay, the journal's own.
func SaveSegment(dir string, id uint32, recs []Rec) error {
	final := filepath.Join(dir, SegmentName(id))
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, EncodeSegment(id, recs), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// LoadSegment reads the index of segment id from dir; size is the
// segment's file size. A missing index gives fs.ErrNotExist, a damaged one
// ErrCorrupt.
func LoadSegment(dir string, id uint32, size int64) ([]Rec, error) {
	b, err := os.ReadFile(filepath.Join(dir, SegmentName(id)))
	if err != nil {
		return nil, err
	}
	return DecodeSegment(b, id, size)
}

// RemoveSegment deletes the index of segment id, if there is one.
func RemoveSegment(dir string, id uint32) error {
	err := os.Remove(filepath.Join(dir, SegmentName(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
