package bookie

import (
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// runCheckpointer writes an index checkpoint every CheckpointInterval, or
// when kicked (segment rotation, ledger delete), then removes reclaimable
// segments. It stops when b.stop closes.
func (b *Bookie) runCheckpointer() {
	defer b.bgWG.Done()
	t := time.NewTicker(b.cfg.CheckpointInterval)
	defer t.Stop()
	// Kicks (rotation, delete) are coalesced to one checkpoint per minGap:
	// each writes the whole index and an fsync on the journal's disk, and
	// under a fast writer rotations come many times a second.
	minGap := b.cfg.CheckpointInterval / 10
	var last time.Time
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-b.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-b.stop:
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		if err := b.checkpoint(); err != nil {
			b.log.Error("index checkpoint failed", "err", err)
		}
		if err := b.compact(); err != nil {
			b.log.Error("journal compaction failed", "err", err)
		}
	}
}

func (b *Bookie) kickCheckpoint() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// checkpoint saves the index with the journal position it covers, if that
// moved, into the older slot, then reclaims segments.
func (b *Bookie) checkpoint() error {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	b.mu.RLock()
	pos := b.mu.pos
	if pos == b.ckptPos && b.ckptSeq > 0 {
		b.mu.RUnlock()
		return b.reclaim()
	}
	start := time.Now()
	seq := b.ckptSeq + 1
	t := b.mu.table
	ledgers := make([]ids.LedgerID, 0, len(t.Ledgers))
	for id := range t.Ledgers {
		ledgers = append(ledgers, id)
	}
	entries := t.Entries()
	b.mu.RUnlock()
	// The lock is taken per chunk of entries, not for the whole encoding,
	// so adds keep flowing (index.Encoder says why the result is exact).
	enc := index.NewEncoder(seq, pos, len(ledgers), entries)
	for _, id := range ledgers {
		b.mu.RLock()
		led := t.Get(id)
		le := enc.Ledger(id, led)
		for !le.Entries(led) {
			b.mu.RUnlock()
			b.mu.RLock()
		}
		le.End(led)
		b.mu.RUnlock()
	}
	data := enc.Finish()
	if err := index.Save(b.cfg.DataDir, seq, data); err != nil {
		return err
	}
	b.metrics.since(b.metrics.checkpoint, start)
	b.ckptSeq, b.ckptPos = seq, pos
	b.slotPos[seq%2] = pos
	b.log.Debug("index checkpoint", "seq", seq, "segment", journal.Name(pos.File), "offset", pos.Off, "bytes", len(data))
	return b.reclaim()
}

// reclaim removes every segment that holds no live entry and lies wholly
// before the position of both checkpoint slots (so that its fence and delete
// records are in any checkpoint a restart may load). Needs ckptMu.
func (b *Bookie) reclaim() error {
	bound := min(b.slotPos[0].File, b.slotPos[1].File)
	var dead []*journal.Segment
	b.mu.RLock()
	b.files.Lock()
	for id, seg := range b.files.segs {
		if id < bound && b.mu.table.Live[id] == 0 {
			dead = append(dead, seg)
			delete(b.files.segs, id)
		}
	}
	b.files.Unlock()
	b.mu.RUnlock()
	for _, seg := range dead {
		if err := seg.Remove(b.journalDir); err != nil {
			return err
		}
		b.metrics.segments.Dec()
		b.metrics.reclaimed.Inc()
		b.log.Info("journal segment reclaimed", "segment", journal.Name(seg.ID))
	}
	return nil
}
