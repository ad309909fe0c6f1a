package bookie

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// The damage marks (index.Table.MarkDamaged) are kept in DataDir/DAMAGED
// as well as in the index. A sealed segment is loaded at open from its
// segment index, its records not read: a mark held only in memory was
// forgotten by a restart, and the damaged entry listed as stored again
// until a read or the next scrub pass found it, up to a day later, while
// the ledger check counted that copy as held. The file is rewritten whole
// (journal.WriteFileSync) each time an entry is marked, which is rare; at
// open, the marks that still apply (the entry still lives at the damaged
// location) are set again and the others dropped from the file.

// damagedFile names the file of damage marks: one line per mark, "ledger
// entry segment offset length", in decimal.
const damagedFile = "DAMAGED"

// maxDamagedMarks bounds the marks the file keeps; past it (a disk
// failing wholesale), new marks are held in memory only.
const maxDamagedMarks = 100_000

// damageMark is an entry whose record at loc failed its check.
type damageMark struct {
	ledger ids.LedgerID
	entry  ids.EntryID
	loc    index.Loc
}

// recordDamaged adds m to the file of damage marks.
func (b *Bookie) recordDamaged(m damageMark) {
	b.damaged.Lock()
	defer b.damaged.Unlock()
	if len(b.damaged.marks) >= maxDamagedMarks {
		return
	}
	b.damaged.marks = append(b.damaged.marks, m)
	if err := b.writeDamagedLocked(); err != nil {
		b.log.Error("damage mark not stored: a restart forgets it until a read or a scrub finds the record again",
			"ledger", m.ledger, "entry", m.entry, "err", err)
	}
}

func (b *Bookie) writeDamagedLocked() error {
	var sb strings.Builder
	for _, m := range b.damaged.marks {
		fmt.Fprintf(&sb, "%d %d %d %d %d\n", m.ledger, m.entry, m.loc.File, m.loc.Off, m.loc.Len)
	}
	return journal.WriteFileSync(b.cfg.DataDir, damagedFile, []byte(sb.String()), 0o644)
}

// loadDamaged sets again, in the index open built, the stored damage
// marks that still apply, drops the others (an entry copied back since
// lives elsewhere, a deleted ledger is gone), and stores with them the
// marks the scan at open set (b.damaged.marks then): the segment it
// found them in may be sealed and loaded from its index next time.
func (b *Bookie) loadDamaged() error {
	scanned := b.damaged.marks
	data, err := os.ReadFile(filepath.Join(b.cfg.DataDir, damagedFile))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
	}
	if err != nil {
		return err
	}
	var kept []damageMark
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	for _, line := range lines {
		var m damageMark
		if _, err := fmt.Sscanf(line, "%d %d %d %d %d", &m.ledger, &m.entry, &m.loc.File, &m.loc.Off, &m.loc.Len); err != nil {
			if line != "" {
				b.log.Warn("damage marks: a line that does not parse is dropped", "line", line, "err", err)
			}
			continue
		}
		b.mu.Lock()
		b.mu.table.MarkDamaged(m.ledger, m.entry, m.loc) // false when the scan at open marked it already
		applies := b.mu.table.DamagedAt(m.ledger, m.entry, m.loc)
		b.mu.Unlock()
		if applies && len(kept) < maxDamagedMarks {
			kept = append(kept, m)
		}
	}
	have := make(map[damageMark]bool, len(kept))
	for _, m := range kept {
		have[m] = true
	}
	for _, m := range scanned {
		b.mu.Lock()
		applies := b.mu.table.DamagedAt(m.ledger, m.entry, m.loc) // a later segment's copy cleared it
		b.mu.Unlock()
		if applies && len(kept) < maxDamagedMarks && !have[m] {
			kept, have[m] = append(kept, m), true
		}
	}
	b.damaged.Lock()
	defer b.damaged.Unlock()
	b.damaged.marks = kept
	if len(kept) == len(lines) && len(scanned) == 0 {
		return nil
	}
	return b.writeDamagedLocked()
}
