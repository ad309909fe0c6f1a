package bookie

import (
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
)

// runCheckpointer writes the indexes of sealed segments and a checkpoint of
// ledger states every CheckpointInterval, or when kicked (segment rotation,
// ledger delete), then removes reclaimable segments and compacts one. It
// stops when b.stop closes.
func (b *Bookie) runCheckpointer() {
	defer b.bgWG.Done()
	t := time.NewTicker(b.cfg.CheckpointInterval)
	defer t.Stop()
	// Kicks (rotation, delete) are coalesced to one checkpoint per minGap:
	// each costs an fsync on the journal's disk, and under a fast writer
	// rotations come many times a second.
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

// sealedSegment is the index of a sealed journal segment, to be written.
type sealedSegment struct {
	id   uint32
	recs []index.Rec
}

// writeSegmentIndexes writes the indexes of the segments sealed so far.
// One that cannot be written (a full disk) is kept for the next round and
// does not stop the checkpoint: without its index a segment is only scanned
// at restart, while the checkpoint is what lets reclaim free space. Needs
// ckptMu (so that reclaim does not race a segment's index).
func (b *Bookie) writeSegmentIndexes() {
	b.sealed.Lock()
	segs := b.sealed.segs
	b.sealed.segs = nil
	b.sealed.Unlock()
	for i, s := range segs {
		b.files.RLock()
		_, live := b.files.segs[s.id]
		b.files.RUnlock()
		if !live {
			continue // reclaimed already
		}
		if err := index.SaveSegment(b.journalDir, s.id, s.recs); err != nil {
			b.log.Warn("writing a journal segment index failed; will retry", "segment", journal.Name(s.id), "err", err)
			b.sealed.Lock()
			b.sealed.segs = append(segs[i:], b.sealed.segs...)
			b.sealed.Unlock()
			return
		}
	}
}

// checkpoint writes the indexes of newly sealed segments, then saves the
// ledger states with the journal position they reflect, if that moved,
// into the older slot, then reclaims segments.
func (b *Bookie) checkpoint() error {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	b.writeSegmentIndexes()
	b.mu.RLock()
	pos := b.mu.pos
	if pos == b.ckptPos && b.ckptSeq > 0 {
		b.mu.RUnlock()
		return b.reclaim()
	}
	start := time.Now()
	seq := b.ckptSeq + 1
	// States only (25 bytes a ledger): short enough to hold the lock for.
	data := index.Encode(nil, seq, pos, b.mu.table)
	b.mu.RUnlock()
	if err := index.Save(b.cfg.DataDir, seq, data); err != nil {
		return err
	}
	b.metrics.since(b.metrics.checkpoint, start)
	b.ckptSeq, b.ckptPos = seq, pos
	b.slotPos[seq%2] = pos
	b.log.Debug("index checkpoint", "seq", seq, "segment", journal.Name(pos.File), "offset", pos.Off, "bytes", len(data))
	return b.reclaim()
}

// reclaim lets go of (letGo) every segment that holds no live entry and lies wholly
// before the position of both checkpoint slots (so that its fence and delete
// records are in any checkpoint a restart may load), then forgets the
// deleted ledgers none of whose records is left (index.Table.Prune). Needs
// ckptMu.
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
		// The index first: a segment without one is scanned, an index
		// without its segment would be a stray.
		if err := index.RemoveSegment(b.journalDir, seg.ID); err != nil {
			return err
		}
		if err := b.letGo(seg); err != nil {
			return err
		}
		b.metrics.segments.Dec()
		b.metrics.reclaimed.Inc()
		b.log.Info("journal segment reclaimed", "segment", journal.Name(seg.ID))
	}
	// Only once every segment let go of is really gone from the disk.
	b.pruneDeleted()
	return nil
}

// pruneDeleted drops the states of deleted ledgers whose records all lie
// before the oldest segment still open, so that checkpoints do not carry
// every ledger ever deleted.
func (b *Bookie) pruneDeleted() {
	b.files.RLock()
	oldest := uint32(0)
	for id := range b.files.segs {
		if oldest == 0 || id < oldest {
			oldest = id
		}
	}
	b.files.RUnlock()
	if oldest == 0 {
		return
	}
	b.mu.Lock()
	n := b.mu.table.Prune(oldest)
	b.mu.Unlock()
	if n > 0 {
		b.log.Debug("deleted ledgers forgotten", "ledgers", n, "oldest_segment", journal.Name(oldest))
	}
}
