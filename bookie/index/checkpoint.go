package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

const (
	magic       = "STRIDX01"
	headerSize  = 28
	ledgerFixed = 29
	entrySize   = 20
	flagFenced  = 1
	flagDeleted = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned for a checkpoint that fails its CRC or its structure.
var ErrCorrupt = errcode.New(errcode.Corruption, "index: corrupt checkpoint")

// Position is a place in the journal: segment id and byte offset.
type Position struct {
	File uint32
	Off  uint32
}

// Less orders positions.
func (p Position) Less(q Position) bool {
	return p.File < q.File || (p.File == q.File && p.Off < q.Off)
}

// Checkpoint is a Table and the journal position it covers.
type Checkpoint struct {
	Seq   uint64
	Pos   Position
	Table *Table
}

// Encode appends the checkpoint encoding of t at pos to dst, in one go.
func Encode(dst []byte, seq uint64, pos Position, t *Table) []byte {
	e := NewEncoder(seq, pos, len(t.Ledgers), t.Entries())
	for id, led := range t.Ledgers {
		le := e.Ledger(id, led)
		for !le.Entries(led) {
		}
		le.End(led)
	}
	return append(dst, e.Finish()...)
}

// Decode parses a checkpoint. Any damage gives ErrCorrupt.
func Decode(b []byte) (Checkpoint, error) {
	if len(b) < headerSize+4 || string(b[:8]) != magic {
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
	count := binary.LittleEndian.Uint32(body[24:])
	rest := body[headerSize:]
	for range count {
		var err error
		if rest, err = decodeLedger(rest, cp.Table); err != nil {
			return Checkpoint{}, err
		}
	}
	if len(rest) != 0 {
		return Checkpoint{}, ErrCorrupt
	}
	return cp, nil
}

func decodeLedger(b []byte, t *Table) ([]byte, error) {
	if len(b) < ledgerFixed {
		return nil, ErrCorrupt
	}
	id := ids.LedgerID(binary.LittleEndian.Uint64(b))
	flags := b[8]
	n := uint64(binary.LittleEndian.Uint32(b[25:]))
	if id == 0 || flags&^(flagFenced|flagDeleted) != 0 || t.Ledgers[id] != nil ||
		uint64(len(b)-ledgerFixed) < n*entrySize || (flags&flagDeleted != 0 && n != 0) {
		return nil, ErrCorrupt
	}
	led := newLedger()
	led.Fenced, led.Deleted = flags&flagFenced != 0, flags&flagDeleted != 0
	led.LAC = ids.EntryID(binary.LittleEndian.Uint64(b[9:]))
	led.Last = ids.EntryID(binary.LittleEndian.Uint64(b[17:]))
	t.Ledgers[id] = led
	b = b[ledgerFixed:]
	for range n {
		e := ids.EntryID(binary.LittleEndian.Uint64(b))
		loc := Loc{binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:]), binary.LittleEndian.Uint32(b[16:])}
		if _, dup := led.Entries.Get(e); dup || e < 0 || loc.Len == 0 {
			return nil, ErrCorrupt
		}
		led.Entries.Set(e, loc)
		t.hold(loc)
		b = b[entrySize:]
	}
	return b, nil
}

func slotName(seq uint64) string { return fmt.Sprintf("checkpoint-%d", seq%2) }

// Save writes data (from Encode with sequence seq) durably into its slot.
func Save(dir string, seq uint64, data []byte) error {
	final := filepath.Join(dir, slotName(seq))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
