package bookie

import (
	"fmt"
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// runWriter is the journal writer: the only goroutine that writes the
// journal. It takes the first queued request, collects whatever else is
// already queued (up to GroupMaxBytes or GroupMaxDelay), writes the group
// with one write and one fdatasync, applies it to the index and only then
// answers every request of the group. Adds that arrive while it writes wait
// in the queue and form the next group. It returns once the queue is closed
// and drained.
func (b *Bookie) runWriter() {
	defer b.writerWG.Done()
	c := collector{maxBytes: b.cfg.GroupMaxBytes, maxDelay: b.cfg.GroupMaxDelay}
	var group []*request
	for first := range b.queue {
		group = append(group[:0], first)
		c.reset(time.Now())
		c.add(first)
		group = b.collect(group, &c)
		b.commit(group)
		clear(group)
	}
}

// collect appends queued requests to group until the queue is empty or the
// collector says the group is full.
func (b *Bookie) collect(group []*request, c *collector) []*request {
	for !c.full(time.Now()) {
		select {
		case r, ok := <-b.queue:
			if !ok {
				return group
			}
			group = append(group, r)
			c.add(r)
		default:
			return group
		}
	}
	return group
}

// commit writes one group and answers its requests.
func (b *Bookie) commit(group []*request) {
	if err := b.failure(); err != nil {
		answerAll(group, err)
		return
	}
	b.mu.RLock()
	accepted, rejected := plan(group, b.statusLocked)
	b.mu.RUnlock()
	for _, rj := range rejected {
		rj.req.done(result{err: fmt.Errorf("%w: ledger %d", rj.err, rj.req.ledger)})
	}
	if len(accepted) == 0 {
		return
	}
	locs, err := b.write(accepted)
	if err != nil {
		b.fail(err)
		answerAll(accepted, fmt.Errorf("%w: %v", ErrUnavailable, err))
		return
	}
	b.apply(accepted, locs)
}

func answerAll(group []*request, err error) {
	for _, r := range group {
		r.done(result{err: err})
	}
}

func (b *Bookie) fail(err error) {
	b.log.Error("journal write failed; the bookie accepts no more writes", "err", err)
	b.mu.Lock()
	b.mu.failed = err
	b.mu.Unlock()
}

// statusLocked reports a ledger's durable flags. Needs mu (read).
func (b *Bookie) statusLocked(l ids.LedgerID) (fenced, deleted bool) {
	led := b.mu.table.Get(l)
	if led == nil {
		return false, false
	}
	return led.Fenced, led.Deleted
}

// write encodes the group into one buffer, writes it at the end of the
// active segment (rotating first if it does not fit) and fsyncs it.
func (b *Bookie) write(group []*request) ([]index.Loc, error) {
	size := 0
	for _, r := range group {
		size += r.size()
	}
	if b.activeOff > 0 && b.activeOff+int64(size) > b.cfg.JournalFileBytes {
		if err := b.rotate(); err != nil {
			return nil, err
		}
	}
	mark := uint32(b.activeOff)
	locs := make([]index.Loc, len(group))
	buf := b.buf[:0]
	for i, r := range group {
		rec := r.record(mark)
		locs[i] = index.Loc{File: b.active.ID, Off: uint32(b.activeOff) + uint32(len(buf)), Len: uint32(rec.Size())}
		buf = journal.Append(buf, &rec)
	}
	b.buf = buf
	if err := b.active.WriteAt(buf, b.activeOff); err != nil {
		return nil, err
	}
	if !b.cfg.UnsafeNoFsync {
		took, err := b.active.Sync()
		if err != nil {
			return nil, err
		}
		if took > b.cfg.SlowFsync {
			b.log.Warn("slow fdatasync", "took", took, "bytes", len(buf))
		}
	}
	b.activeOff += int64(len(buf))
	if cap(b.buf) > 2*b.cfg.GroupMaxBytes+2*b.cfg.MaxEntryBytes {
		b.buf = nil // do not keep a huge buffer after an outsized group
	}
	return locs, nil
}

// rotate starts a new segment. The old one was fsync'd by the previous group.
func (b *Bookie) rotate() error {
	seg, err := journal.Create(b.journalDir, b.active.ID+1, b.cfg.JournalFileBytes)
	if err != nil {
		return err
	}
	b.files.Lock()
	b.files.segs[seg.ID] = seg
	b.files.Unlock()
	b.active, b.activeOff = seg, 0
	b.kickCheckpoint()
	return nil
}

// apply records a durable group in the index, wakes LAC waiters and answers
// every request.
func (b *Bookie) apply(group []*request, locs []index.Loc) {
	b.mu.Lock()
	t := b.mu.table
	deleted := false
	for i, r := range group {
		switch r.op {
		case opAdd:
			t.Put(r.ledger, r.entry, r.lac, locs[i])
		case opFence:
			t.Fence(r.ledger)
		case opDelete:
			t.Delete(r.ledger)
			deleted = true
		}
		b.wakeLocked(r.ledger)
	}
	b.mu.pos = index.Position{File: b.active.ID, Off: uint32(b.activeOff)}
	results := make([]result, len(group))
	for i, r := range group {
		if r.op == opFence {
			led := t.Get(r.ledger)
			results[i] = result{lac: led.LAC, last: led.Last}
		}
	}
	b.mu.Unlock()
	for i, r := range group {
		r.done(results[i])
	}
	if deleted {
		b.kickCheckpoint()
	}
}
