package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

const (
	magic       = "STRIDX02"
	headerSize  = 28
	ledgerBlock = 25
	flagFenced  = 1
	flagDeleted = 2

	// The first format (STRIDX01) held every entry location too; Decode
	// still reads it, so that a data directory written before segment
	// indexes existed opens (its segments are then scanned once).
	magicV1       = "STRIDX01"
	ledgerFixedV1 = 29
	entrySizeV1   = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned for a checkpoint or segment index that fails its
// CRC or its structure.
var ErrCorrupt = errcode.New(errcode.Corruption, "index: corrupt checkpoint or segment index")

// Position is a place in the journal: segment id and byte offset.
type Position struct {
	File uint32
	Off  uint32
}

// Less orders positions.
func (p Position) Less(q Position) bool {
	return p.File < q.File || (p.File == q.File && p.Off < q.Off)
}

// Checkpoint is the ledger states of a Table and the journal position they
// reflect. Its Table holds no entry locations: those come from the journal's
// segment indexes.
type Checkpoint struct {
	Seq   uint64
	Pos   Position
	Table *Table
}

// Encode appends the checkpoint of t's ledger states at pos to dst. It is
// a sequential pass over the ledgers (25 bytes each), cheap enough to run
// under the table's lock.
func Encode(dst []byte, seq uint64, pos Position, t *Table) []byte {
	dst = slices.Grow(dst, headerSize+len(t.Ledgers)*ledgerBlock+4)
	start := len(dst)
	dst = appendHeader(dst, magic, seq, pos, len(t.Ledgers))
	for id, led := range t.Ledgers {
		lac, last := led.LAC, led.Last
		if led.Deleted {
			lac, last = ids.NoEntry, ids.EntryID(led.DeletedIn)
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(id))
		dst = append(dst, led.flags())
		dst = binary.LittleEndian.AppendUint64(dst, uint64(lac))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(last))
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// appendHeader appends a checkpoint header of either format.
func appendHeader(dst []byte, magic string, seq uint64, pos Position, ledgers int) []byte {
	dst = append(dst, magic...)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, pos.File)
	dst = binary.LittleEndian.AppendUint32(dst, pos.Off)
	return binary.LittleEndian.AppendUint32(dst, uint32(ledgers))
}

// flags is the ledger's flags byte in a checkpoint.
func (l *Ledger) flags() byte {
	var f byte
	if l.Fenced {
		f |= flagFenced
	}
	if l.Deleted {
		f |= flagDeleted
	}
	return f
}

// Decode parses a checkpoint, of either format. Any damage gives
// ErrCorrupt.
func Decode(b []byte) (Checkpoint, error) {
	if len(b) < headerSize+4 || (string(b[:8]) != magic && string(b[:8]) != magicV1) {
		return Checkpoint{}, ErrCorrupt
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return Checkpoint{}, ErrCorrupt
	}
	cp := Checkpoint{
		Seq:   binary.LittleEndian.Uint64(body[8:]),
		Pos:   Position{binary.LittleEndian.Uint32(body[16:]), binary.LittleEndian.Uint32(body[20:])},
		Table: New(),
	}
	count := uint64(binary.LittleEndian.Uint32(body[24:]))
	rest := body[headerSize:]
	if string(b[:8]) == magicV1 {
		if err := decodeV1(rest, count, cp.Pos, cp.Table); err != nil {
			return Checkpoint{}, err
		}
		return cp, nil
	}
	if uint64(len(rest)) != count*ledgerBlock {
		return Checkpoint{}, ErrCorrupt
	}
	for ; len(rest) > 0; rest = rest[ledgerBlock:] {
		id := ids.LedgerID(binary.LittleEndian.Uint64(rest))
		flags := rest[8]
		if id == 0 || flags&^(flagFenced|flagDeleted) != 0 || cp.Table.Ledgers[id] != nil {
			return Checkpoint{}, ErrCorrupt
		}
		led := newLedger()
		led.Fenced, led.Deleted = flags&flagFenced != 0, flags&flagDeleted != 0
		led.LAC = ids.EntryID(binary.LittleEndian.Uint64(rest[9:]))
		led.Last = ids.EntryID(binary.LittleEndian.Uint64(rest[17:]))
		cp.Table.Ledgers[id] = led
		if led.Deleted {
			// The delete record lies before Pos. Checkpoints written before
			// the segment was kept hold NoEntry: Pos's segment then bounds it.
			in := cp.Pos.File
			if led.Last != ids.NoEntry {
				if led.Last < 0 || led.Last > ids.EntryID(cp.Pos.File) {
					return Checkpoint{}, ErrCorrupt
				}
				in = uint32(led.Last)
			}
			led.LAC, led.Last = ids.NoEntry, ids.NoEntry
			cp.Table.entomb(id, led, in)
		}
	}
	return cp, nil
}

// decodeV1 reads the count ledger blocks of a first-format checkpoint,
// entry locations included, into t. A deleted ledger's delete record lies
// before pos, the only bound this format gives.
func decodeV1(b []byte, count uint64, pos Position, t *Table) error {
	for range count {
		if len(b) < ledgerFixedV1 {
			return ErrCorrupt
		}
		id := ids.LedgerID(binary.LittleEndian.Uint64(b))
		flags := b[8]
		n := uint64(binary.LittleEndian.Uint32(b[25:]))
		if id == 0 || flags&^(flagFenced|flagDeleted) != 0 || t.Ledgers[id] != nil ||
			uint64(len(b)-ledgerFixedV1) < n*entrySizeV1 || (flags&flagDeleted != 0 && n != 0) {
			return ErrCorrupt
		}
		led := newLedger()
		led.Fenced, led.Deleted = flags&flagFenced != 0, flags&flagDeleted != 0
		led.LAC = ids.EntryID(binary.LittleEndian.Uint64(b[9:]))
		led.Last = ids.EntryID(binary.LittleEndian.Uint64(b[17:]))
		t.Ledgers[id] = led
		if led.Deleted {
			led.LAC, led.Last = ids.NoEntry, ids.NoEntry
			t.entomb(id, led, pos.File)
		}
		b = b[ledgerFixedV1:]
		for range n {
			e := ids.EntryID(binary.LittleEndian.Uint64(b))
			loc := Loc{binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:]), binary.LittleEndian.Uint32(b[16:])}
			if _, dup := led.Entries.Get(e); dup || e < 0 || loc.Len == 0 {
				return ErrCorrupt
			}
			led.Entries.Set(e, loc)
			t.hold(loc)
			b = b[entrySizeV1:]
		}
	}
	if len(b) != 0 {
		return ErrCorrupt
	}
	return nil
}

func slotName(seq uint64) string { return fmt.Sprintf("checkpoint-%d", seq%2) }

// Save writes data (from Encode with sequence seq) durably into its slot.
func Save(dir string, seq uint64, data []byte) error {
	return journal.WriteFileSync(dir, slotName(seq), data, 0o644)
}

// Load returns the valid checkpoints in dir, newest first (zero, one or
// two), and how many slots held a damaged checkpoint.
func Load(dir string) (valid []Checkpoint, damaged int, err error) {
	for slot := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, slotName(uint64(slot))))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		cp, derr := Decode(b)
		if derr != nil {
			damaged++
			continue
		}
		valid = append(valid, cp)
	}
	if len(valid) == 2 && valid[1].Seq > valid[0].Seq {
		valid[0], valid[1] = valid[1], valid[0]
	}
	return valid, damaged, nil
}
