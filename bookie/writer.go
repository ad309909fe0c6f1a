package bookie

import (
	"errors"
	"fmt"
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// The journal is written by two goroutines in a pipeline, as BookKeeper's
// journal and force-write threads:
//
//   - the writer takes queued requests, decides which are written (plan),
//     encodes them and writes them to the active segment with one write
//     call (direct I/O where the file system allows it, else the page
//     cache; journal.Segment.Append), then hands the group to the syncer;
//   - the syncer takes every group written so far, issues one fdatasync that
//     covers them all, applies them to the index and answers their requests.
//
// While an fdatasync runs, the writer keeps collecting the adds that arrive
// (up to GroupMaxBytes per write, GroupMaxDelay per group) and writes them;
// the next fdatasync covers all of them. When no fdatasync is running and the
// queue is empty, a group is written at once: no add waits for company.

// written is a group written, not yet durable: waiting for its fdatasync.
type written struct {
	reqs []*request
	locs []index.Loc
	seg  *journal.Segment
	end  int64 // offset in seg just after the group
}

// runWriter is the writer stage. It returns once the queue is closed and
// drained, after closing syncCh.
func (b *Bookie) runWriter() {
	defer b.writerWG.Done()
	defer close(b.syncCh)
	c := collector{maxBytes: b.cfg.GroupMaxBytes, maxDelay: b.cfg.GroupMaxDelay}
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var group []*request
	for first := range b.queue {
		group = append(group[:0], first)
		c.reset(time.Now())
		c.add(first)
		group = b.collect(group, &c, wait)
		b.writeGroup(group)
		clear(group)
	}
}

// collect appends queued requests to group until the collector says the
// group is full, or the queue is empty and no fdatasync is running (a
// running one would not cover this group anyway).
func (b *Bookie) collect(group []*request, c *collector, wait *time.Timer) []*request {
	for now := time.Now(); !c.full(now); now = time.Now() {
		select {
		case r, ok := <-b.queue:
			if !ok {
				return group
			}
			group = append(group, r)
			c.add(r)
			continue
		default:
		}
		if !b.syncBusy.Load() {
			return group
		}
		wait.Reset(c.remaining(now))
		select {
		case r, ok := <-b.queue:
			if !ok {
				return group
			}
			group = append(group, r)
			c.add(r)
		case <-b.syncDone:
		case <-wait.C:
		}
		wait.Stop()
	}
	return group
}

// writeGroup plans, encodes and writes one group and hands it to the syncer.
func (b *Bookie) writeGroup(group []*request) {
	if err := b.failure(); err != nil {
		answerAll(group, err)
		return
	}
	if err := b.makeRoom(group); err != nil {
		var se *segmentError
		if !errors.As(err, &se) {
			b.fail(err)
			answerAll(group, b.failure())
			return
		}
		// A full disk: rotate made the bookie read-only until a
		// segment is made. What the group holds besides new adds goes
		// in the active segment's reserve, if it fits.
		if group = b.withoutNewAdds(group, se); len(group) == 0 {
			return
		}
	}
	b.mu.Lock()
	accepted, rejected := plan(group, b.statusLocked)
	for _, r := range accepted {
		if r.op == opFence || r.op == opDelete {
			f := b.mu.planned[r.ledger]
			f.fenced = f.fenced || r.op == opFence
			f.deleted = f.deleted || r.op == opDelete
			b.mu.planned[r.ledger] = f
		}
	}
	b.mu.Unlock()
	for _, rj := range rejected {
		err := fmt.Errorf("%w: ledger %d", rj.err, rj.req.ledger)
		if rj.req.op == opAdd {
			b.metrics.addDone(err, 0)
		}
		rj.req.done(result{err: err})
	}
	if len(accepted) == 0 {
		return
	}
	locs, err := b.write(accepted)
	if err != nil {
		b.fail(err)
		answerAll(accepted, b.failure())
		return
	}
	b.syncCh <- &written{reqs: accepted, locs: locs, seg: b.active, end: b.active.End()}
}

func answerAll(group []*request, err error) {
	for _, r := range group {
		r.done(result{err: err})
	}
}

func (b *Bookie) fail(err error) {
	b.log.Error("journal write failed; the bookie accepts no more writes", "err", err)
	b.mu.Lock()
	if b.mu.failed == nil {
		b.mu.failed = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	b.mu.Unlock()
}

// plannedFlags are the fences and deletes written but not yet applied.
type plannedFlags struct{ fenced, deleted bool }

// statusLocked reports a ledger's flags, counting fences and deletes that
// are written but not yet durable (so adds after them are rejected). Needs mu.
func (b *Bookie) statusLocked(l ids.LedgerID) (fenced, deleted bool) {
	p := b.mu.planned[l]
	if led := b.mu.table.Get(l); led != nil {
		return p.fenced || led.Fenced, p.deleted || led.Deleted
	}
	return p.fenced, p.deleted
}

// durableMark returns the offset of the active segment known to be fsync'd.
func (b *Bookie) durableMark() uint32 {
	d := b.durable.Load()
	if uint32(d>>32) != b.active.ID {
		return 0
	}
	return uint32(d)
}

// write encodes the group and writes it at the end of the active segment,
// where it fits (makeRoom). The records are encoded straight into the
// segment's write buffer (journal.Segment.AppendWith).
func (b *Bookie) write(group []*request) ([]index.Loc, error) {
	size := 0
	for _, r := range group {
		size += r.size()
	}
	mark, off, id := b.durableMark(), uint32(b.active.End()), b.active.ID
	seed := b.seed(id)
	nrecs := len(b.activeRecs)
	locs := make([]index.Loc, len(group))
	err := b.active.AppendWith(size, func(dst []byte) {
		buf := dst[:0]
		for i, r := range group {
			rec := r.record(mark)
			locs[i] = index.Loc{File: id, Off: off + uint32(len(buf)), Len: uint32(rec.Size())}
			b.activeRecs = append(b.activeRecs, indexRec(rec, locs[i]))
			buf = journal.Append(buf, &rec, seed)
		}
		if len(buf) != size || &buf[0] != &dst[0] {
			panic("bookie: a group's records do not fill the size computed for them")
		}
	})
	if err != nil {
		b.activeRecs = b.activeRecs[:nrecs]
		return nil, err
	}
	b.active.DropBufferOver(2*b.cfg.GroupMaxBytes + 2*b.cfg.MaxEntryBytes)
	return locs, nil
}

// segmentError: the next journal segment could not be made (a full disk,
// most likely). Unlike a failed fdatasync it leaves the journal sound.
type segmentError struct{ err error }

func (e *segmentError) Error() string { return "journal: no new segment: " + e.err.Error() }
func (e *segmentError) Unwrap() error { return e.err }

// makeRoom rotates to the next segment if group would not fit in the
// active one. A group with new adds must also leave the segment's reserve
// free (reserveBytes): fences, deletes and recovery adds can then still be
// written when no new segment can be made. It runs before the group is
// planned, so that a group it fails for leaves no trace in the planner's
// state.
func (b *Bookie) makeRoom(group []*request) error {
	size, limit := 0, b.activeLimit
	for _, r := range group {
		size += r.size()
		if staysOutOfReserve(r) {
			limit = b.activeLimit - reserveBytes(b.cfg)
		}
	}
	if end := b.active.End(); end > 0 && end+int64(size) > limit {
		return b.rotate()
	}
	return nil
}

// reserveBytes is the end of a segment that new adds and relocations
// leave free.
func reserveBytes(cfg Config) int64 { return min(64<<10, cfg.JournalFileBytes/16) }

// staysOutOfReserve reports whether r may not be written into a segment's
// reserve: new adds and compaction's relocations, which can wait for a
// new segment, unlike fences, deletes and recovery adds.
func staysOutOfReserve(r *request) bool {
	return (r.op == opAdd && !r.recovery) || r.op == opRelocate
}

// withoutNewAdds splits group, which could not be written for want of a
// new segment (se), into what still fits in the active segment without
// one: its fences, deletes and recovery adds, if they fit. The rest is
// answered with ErrReadOnly.
func (b *Bookie) withoutNewAdds(group []*request, se *segmentError) []*request {
	var keep, refuse []*request
	size := 0
	for _, r := range group {
		if staysOutOfReserve(r) {
			refuse = append(refuse, r)
		} else {
			keep = append(keep, r)
			size += r.size()
		}
	}
	if b.active.End()+int64(size) > b.activeLimit {
		refuse, keep = group, nil
	}
	answerAll(refuse, fmt.Errorf("%w: %v", ErrReadOnly, se))
	return keep
}

// rotate starts a new segment after making the old one durable in full, so
// that only the newest segment can ever have a torn tail.
func (b *Bookie) rotate() error {
	if err := b.syncSegment(b.active); err != nil {
		return err
	}
	b.active.Seal()
	s := <-b.spare
	if s.err != nil {
		// Try once more here: the cause may have passed (a full disk
		// freed meanwhile).
		b.log.Warn("creating the spare journal segment failed; retrying", "err", s.err)
		if s.seg, s.err = b.createSegment(b.active.ID+1, false); s.err != nil {
			// Nothing was written: the journal is sound, and the
			// active segment takes groups that still fit. Read-only
			// until a segment is made: the next rotation takes
			// another spare, tried meanwhile (and again by the disk
			// check, retrySpare).
			se := &segmentError{s.err}
			b.setCause(causeSegment, se.Error())
			b.prepareSpare(b.active.ID+1, false)
			return se
		}
	}
	seg := s.seg
	b.files.Lock()
	b.files.segs[seg.ID] = seg
	b.files.Unlock()
	b.sealed.Lock()
	b.sealed.segs = append(b.sealed.segs, sealedSegment{id: b.active.ID, recs: b.activeRecs})
	b.sealed.Unlock()
	b.activeRecs = make([]index.Rec, 0, cap(b.activeRecs))
	fillRate := float64(b.active.End()) / time.Since(b.activeSince).Seconds()
	b.active, b.activeSince, b.activeLimit = seg, time.Now(), b.cfg.JournalFileBytes
	b.prepareSpare(seg.ID+1, prewriteNext(fillRate, float64(b.zeroRate.Load())))
	b.metrics.segments.Inc()
	b.kickCheckpoint()
	return nil
}

func (b *Bookie) syncSegment(seg *journal.Segment) error {
	if b.cfg.UnsafeNoFsync {
		return nil
	}
	took, err := seg.Sync()
	if b.hooks.syncErr != nil && err == nil {
		err = b.hooks.syncErr()
	}
	if b.hooks.synced != nil {
		b.hooks.synced(took)
	}
	b.metrics.fsync.Observe(took.Seconds())
	if took > b.cfg.SlowFsync {
		b.log.Warn("slow fdatasync", "took", took, "segment", journal.Name(seg.ID))
	}
	return err
}

// runSyncer is the sync stage: one fdatasync for every group written so
// far, then index updates and answers, in write order. It returns once
// syncCh is closed and drained.
func (b *Bookie) runSyncer() {
	defer b.writerWG.Done()
	var batch []*written
	for w := range b.syncCh {
		b.syncBusy.Store(true)
		batch = append(batch[:0], w)
		for more := true; more; {
			select {
			case w, ok := <-b.syncCh:
				if ok {
					batch = append(batch, w)
				}
				more = ok
			default:
				more = false
			}
		}
		b.syncBatch(batch)
		clear(batch)
		b.syncBusy.Store(false)
		select {
		case b.syncDone <- struct{}{}:
		default:
		}
	}
}

func (b *Bookie) syncBatch(batch []*written) {
	if b.hooks.beforeSync != nil {
		b.hooks.beforeSync()
	}
	err := b.failure()
	for i, w := range batch {
		if err == nil && (i == len(batch)-1 || batch[i+1].seg != w.seg) {
			err = b.syncSegment(w.seg)
		}
	}
	if err != nil {
		b.fail(err)
		for _, w := range batch {
			answerAll(w.reqs, b.failure())
		}
		return
	}
	last := batch[len(batch)-1]
	b.durable.Store(uint64(last.seg.ID)<<32 | uint64(last.end))
	b.apply(batch)
}

// apply records durable groups in the index, wakes LAC waiters and answers
// every request, in write order.
func (b *Bookie) apply(batch []*written) {
	b.mu.Lock()
	t := b.mu.table
	deleted := false
	for _, w := range batch {
		for i, r := range w.reqs {
			switch r.op {
			case opAdd:
				t.Put(r.ledger, r.entry, r.lac, w.locs[i])
			case opRelocate:
				if led := t.Get(r.ledger); led != nil && entryAt(led, r.entry) == r.from {
					t.Put(r.ledger, r.entry, r.lac, w.locs[i])
				}
			case opFence:
				t.Fence(r.ledger)
				delete(b.mu.planned, r.ledger)
			case opDelete:
				t.Delete(r.ledger, w.locs[i].File)
				delete(b.mu.planned, r.ledger)
				deleted = true
			}
			b.wakeLocked(r.ledger)
		}
	}
	last := batch[len(batch)-1]
	b.mu.pos = index.Position{File: last.seg.ID, Off: uint32(last.end)}
	results := make([][]result, len(batch))
	for j, w := range batch {
		results[j] = make([]result, len(w.reqs))
		for i, r := range w.reqs {
			if r.op == opFence {
				led := t.Get(r.ledger)
				results[j][i] = result{lac: led.LAC, last: led.Last}
			}
		}
	}
	b.mu.Unlock()
	n := 0
	for j, w := range batch {
		for i, r := range w.reqs {
			if r.op == opAdd {
				b.metrics.addDone(nil, len(r.payload))
			}
			r.done(results[j][i])
		}
		n += len(w.reqs)
	}
	b.metrics.batchAdds.Observe(float64(n))
	if deleted {
		b.kickCheckpoint()
	}
}

// entryAt is the location of entry e of led (zero if absent).
func entryAt(led *index.Ledger, e ids.EntryID) index.Loc {
	loc, _ := led.Entries.Get(e)
	return loc
}
