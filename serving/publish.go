package serving

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// maxBatchMessages bounds the messages of one batch (one entry).
const maxBatchMessages = 100_000

// publish validates one batch and hands it to the ledger. Per-batch errors go
// back on the stream as SendError and change nothing; the returned error
// (topic no longer served here) ends the stream.
func (t *topic) publish(p *producer, req *servingpb.SendBatch) error {
	msgs, sent, err := batchMessages(req)
	if err != nil {
		p.sendError(0, 0, err)
		return nil
	}
	first, last := msgs[0].SequenceID, msgs[len(msgs)-1].SequenceID
	if err := t.checkBatch(msgs); err != nil {
		t.rejectInOrder(p, first, last, err)
		return nil
	}
	for i := range msgs {
		if err := schemaVersionOf(p.schemaVersion, msgs[i].Properties); err != nil {
			t.rejectInOrder(p, first, last, err)
			return nil
		}
	}
	if p.queueFull || p.pending.Load() >= int64(t.n.cfg.MaxPendingPerProducer) {
		// Retriable: the producer sends this batch again, and every later
		// one, on its next stream. A later one written from this stream
		// meanwhile would make that resend look like a duplicate, answered
		// and never written; so the rest of the stream is refused too.
		p.queueFull = true
		p.sendError(first, last, errcode.New(errcode.ProducerQueueFull, "producer %s has %d batches pending", p.name, p.pending.Load()))
		return nil
	}
	b := &pendingBatch{p: p, first: first, last: last, msgs: msgs, sent: sent, received: time.Now()}
	if sz := b.entrySize(math.MaxInt64); sz > t.n.cfg.MaxEntryBytes {
		t.rejectInOrder(p, first, last, errcode.New(errcode.MessageTooLarge, "batch of %d bytes over the entry limit of %d", sz, t.n.cfg.MaxEntryBytes))
		return nil
	}
	err = t.accept(p, b, false)
	if errors.Is(err, errEarlierReceipt) {
		t.readEarlierReceipts(p.name, last)
		err = t.accept(p, b, true)
	}
	return err
}

// errEarlierReceipt is accept's answer for a resend of a batch that an
// earlier owner wrote and whose receipt is not known here yet.
var errEarlierReceipt = errors.New("serving: receipt of an earlier owner's batch not read yet")

// accept writes b, or answers it as a resend, or queues it; without
// rebuilt, a resend of a batch whose receipt an earlier owner's entries may
// hold is errEarlierReceipt instead.
func (t *topic) accept(p *producer, b *pendingBatch, rebuilt bool) error {
	first, last := b.first, b.last
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.drain.done != nil {
		// A graceful unload: neither written nor answered. The stream
		// ends once the batches in flight are answered, and the producer
		// sends this one again to the next owner; ending it now could
		// lose those receipts.
		return nil
	}
	if err := t.servingErrLocked(); err != nil {
		return err
	}
	if t.mu.prods[p.name] != p { // fenced by an exclusive producer
		return errcode.New(errcode.ProducerFenced, "producer %s of %s was fenced", p.name, t.name)
	}
	d := dedupFor(t.mu.dedup, p.name)
	if int64(last) <= d.persisted {
		r, ok := d.find(last)
		if !ok && !rebuilt && t.mu.earlier.mayHold(d, last) {
			return errEarlierReceipt
		}
		p.pending.Add(1)
		p.receipt(b, r, true)
		return nil
	}
	p.pending.Add(1)
	if int64(last) <= d.pushed {
		d.waiters = append(d.waiters, b)
		return nil
	}
	if t.terminatedLocked() {
		p.pending.Add(-1)
		// After the receipts of p's batches in flight, and every later
		// batch of p's too.
		rejectInOrderLocked(d, rejected{p: p, first: first, last: last, err: t.terminatedErr(), quota: true})
		return nil
	}
	if t.rejectForQuotaLocked(d, p, first, last) {
		return nil
	}
	d.pushed = int64(last)
	if t.mu.rolling {
		t.mu.queued = append(t.mu.queued, b)
		return nil
	}
	t.appendLocked(b)
	return nil
}

// batchMessages returns the messages of a batch, and their encoding when
// the producer sent them encoded (the node then writes those bytes as they
// came, compressed or not, after checking them decompressed).
func batchMessages(req *servingpb.SendBatch) ([]entry.Message, *sentEncoding, error) {
	if enc, n := req.GetEncoded(), req.GetCount(); len(enc) > 0 || n > 0 || len(req.GetMessages()) == 0 {
		if n == 0 || n > maxBatchMessages || len(req.GetMessages()) > 0 {
			return nil, nil, errcode.New(errcode.InvalidArgument, "a batch holds 1 to %d messages, in one form, got %d encoded and %d others", maxBatchMessages, n, len(req.GetMessages()))
		}
		sent := &sentEncoding{bytes: enc, codec: entry.Compression(req.GetCompression()), size: int(req.GetUncompressedSize())}
		raw := enc
		if sent.codec != entry.CompressionNone {
			if !sent.codec.Valid() {
				return nil, nil, errcode.New(errcode.InvalidArgument, "unknown compression %d", req.GetCompression())
			}
			if sent.size > entry.MaxUncompressedBytes {
				return nil, nil, errcode.New(errcode.MessageTooLarge, "batch of %d bytes uncompressed over the limit of %d", sent.size, entry.MaxUncompressedBytes)
			}
			var err error
			if raw, err = entry.Decompress(sent.codec, enc, sent.size); err != nil {
				return nil, nil, errcode.New(errcode.InvalidArgument, "malformed compressed batch: %v", err)
			}
		}
		ms, err := entry.DecodeMessages(raw, int(n))
		if err != nil {
			return nil, nil, errcode.New(errcode.InvalidArgument, "malformed encoded batch: %v", err)
		}
		return ms, sent, nil
	}
	ms := req.GetMessages()
	if len(ms) > maxBatchMessages {
		return nil, nil, errcode.New(errcode.InvalidArgument, "a batch holds 1 to %d messages, got %d", maxBatchMessages, len(ms))
	}
	return toEntryMessages(ms), nil, nil
}

// checkBatch enforces the message size limit and ascending sequence ids.
func (t *topic) checkBatch(ms []entry.Message) error {
	maxBytes := t.maxMessageBytes()
	for i := range ms {
		if uint64(len(ms[i].Payload)) > maxBytes {
			return errcode.New(errcode.MessageTooLarge, "message of %d bytes over the limit of %d", len(ms[i].Payload), maxBytes)
		}
		if i > 0 && ms[i].SequenceID <= ms[i-1].SequenceID {
			return errcode.New(errcode.InvalidArgument, "sequence ids of a batch must ascend")
		}
	}
	return nil
}

func (t *topic) maxMessageBytes() uint64 {
	if p := t.pol(); p.MaxMessageBytes > 0 {
		return p.MaxMessageBytes
	}
	return metadata.DefaultNamespacePolicy().MaxMessageBytes
}

// appendLocked encodes b with the next publish time and appends it.
func (t *topic) appendLocked(b *pendingBatch) {
	pt := max(time.Now().UnixNano(), t.mu.lastPub+1)
	t.mu.lastPub = pt
	b.batch = &entry.Batch{ProducerName: b.p.name, PublishTime: pt, Messages: b.msgs}
	var payload []byte
	switch {
	case b.sent != nil && b.sent.codec != entry.CompressionNone:
		payload = entry.AppendCompressedEntry(make([]byte, 0, b.entrySize(pt)), b.p.name, pt, len(b.msgs), b.sent.codec, b.sent.size, b.sent.bytes)
	case b.sent != nil:
		payload = entry.AppendEntry(make([]byte, 0, b.entrySize(pt)), b.p.name, pt, len(b.msgs), b.sent.bytes)
	default:
		payload = entry.Encode(b.batch)
	}
	b.size = len(payload)
	t.mu.inflight++
	w, start := t.mu.w, time.Now()
	w.Append(payload, func(id ids.EntryID, err error) {
		t.complete(completion{w: w, b: b, id: id, err: err, start: start})
	})
}

// complete queues an append completion for run; it never blocks, so it is
// safe inside the ledger writer's callback (even a synchronous one).
func (t *topic) complete(c completion) {
	t.compMu.Lock()
	t.compMu.q = append(t.compMu.q, c)
	t.compMu.Unlock()
	select {
	case t.compSignal <- struct{}{}:
	default:
	}
}

// applyCompletions applies queued completions in order: receipts, cache,
// consumer wake-ups, and a roll when the ledger is full.
func (t *topic) applyCompletions() {
	t.compMu.Lock()
	q := t.compMu.q
	t.compMu.q = nil
	t.compMu.Unlock()
	t.mu.Lock()
	var failed error
	for _, c := range q {
		if err := t.appliedLocked(c); err != nil && failed == nil {
			failed = err
		}
	}
	if failed == nil {
		t.maybeStartRollLocked()
		t.checkDrainedLocked()
	}
	t.mu.Unlock()
	if failed != nil {
		reason := reasonWrite
		if errcode.CodeOf(failed) == errcode.Fenced {
			reason = reasonFenced
		}
		t.drop(reason, errcode.New(errcode.TopicFenced, "topic %s dropped: %v", t.name, failed), false)
	}
}

func (t *topic) appliedLocked(c completion) error {
	if !t.appendingLocked() || c.w != t.mu.w {
		return nil
	}
	t.mu.inflight--
	if c.err != nil {
		return c.err
	}
	b, pos := c.b, ids.Position{Ledger: c.w.ID(), Entry: c.id}
	cur := &t.mu.cur
	cur.entries++
	cur.bytes += uint64(b.size)
	if cur.firstPub == 0 {
		cur.firstPub = b.batch.PublishTime
	}
	cur.lastPub = b.batch.PublishTime
	cur.lastPosition = pos
	t.mu.lastPos = pos
	t.mu.msgsIn += uint64(len(b.msgs))
	t.mu.bytesIn += uint64(b.size)
	r := receipt{first: b.first, last: b.last, pos: pos, publishTime: b.batch.PublishTime}
	d := dedupFor(t.mu.dedup, b.p.name)
	d.persist(r)
	b.p.receipt(b, r, false)
	t.releaseWaitersLocked(d)
	t.mu.cache.add(&cachedEntry{pos: pos, batch: b.batch, size: b.size})
	now := time.Now()
	t.n.m.bookieWrite.Observe(now.Sub(c.start).Seconds())
	t.n.m.publishLatency.Observe(now.Sub(b.received).Seconds())
	t.n.m.publishedMessages.WithLabelValues(t.name).Add(float64(len(b.msgs)))
	t.n.m.publishedBytes.WithLabelValues(t.name).Add(float64(b.size))
	for _, s := range t.mu.subs {
		s.signal()
	}
	if !t.mu.rolling && t.shouldRollLocked() {
		t.mu.rolling = true
	}
	return nil
}

func (t *topic) releaseWaitersLocked(d *dedupState) {
	keep := d.waiters[:0]
	for _, w := range d.waiters {
		if int64(w.last) > d.persisted {
			keep = append(keep, w)
			continue
		}
		r, _ := d.find(w.last)
		w.p.receipt(w, r, true)
	}
	d.waiters = keep
	releaseRejectsLocked(d)
}

func (t *topic) shouldRollLocked() bool {
	c, cfg := &t.mu.cur, t.n.cfg
	if c.entries == 0 {
		return false
	}
	return c.entries >= cfg.MaxLedgerEntries || c.bytes >= cfg.MaxLedgerBytes || time.Since(c.created) >= cfg.MaxLedgerAge
}

func (t *topic) maybeRollOnAge() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.state == topicServing && !t.mu.rolling && t.shouldRollLocked() {
		t.mu.rolling = true
		t.maybeStartRollLocked()
	}
}

// maybeStartRollLocked starts the roll once the old ledger has no appends in
// flight; batches accepted meanwhile wait in queued.
func (t *topic) maybeStartRollLocked() {
	if !t.mu.rolling || t.mu.rollRunning || t.mu.inflight > 0 || t.mu.state != topicServing {
		return
	}
	t.mu.rollRunning = true
	t.goOwned(t.roll)
}

// roll closes the current ledger, opens the next one, records both in the
// managed ledger (compare-and-swap, with the producers' dedup snapshot) and
// resumes appending.
func (t *topic) roll() {
	ctx, cancel := context.WithTimeout(t.ctx, t.n.cfg.LoadTimeout)
	defer cancel()
	t.mlMu.Lock()
	defer t.mlMu.Unlock()
	t.mu.Lock()
	if t.mu.state == topicDropped {
		// Its writer is abandoned, and a deletion that waited for mlMu
		// may have deleted its ledgers: a ledger made now would be named
		// by nothing.
		t.mu.Unlock()
		return
	}
	old, cur := t.mu.w, t.mu.cur
	t.mu.Unlock()
	err := old.Close(ctx, cur.annotate(t.name))
	if err != nil {
		t.dropOnError("closing ledger", err)
		return
	}
	o := t.createOptions()
	o.After = old.ID()
	w, err := t.n.ledgers.Create(ctx, o)
	if err != nil {
		t.dropOnError("creating ledger", err)
		return
	}
	t.mu.Lock()
	next := cloneML(t.mu.ml)
	li := &next.Ledgers[len(next.Ledgers)-1]
	li.Entries, li.Bytes, li.Closed = cur.entries, cur.bytes, true
	li.FirstPublishTime, li.LastPublishTime = cur.firstPub, cur.lastPub
	next.Ledgers = append(next.Ledgers, metadata.LedgerInfo{ID: w.ID(), CreatedAt: time.Now().UnixNano()})
	next.Producers = persistedSeqs(t.mu.dedup)
	t.mu.Unlock()
	if err := t.n.meta.PutManagedLedger(ctx, next); err != nil {
		go func() { _ = w.Close(context.Background(), nil) }()
		t.dropOnError("storing managed ledger", metaConflict("roll", err))
		return
	}
	t.switchWriter(next, w)
}

// switchWriter installs the new ledger and appends the queued batches (also
// while draining: they were accepted, and the unload closes w).
func (t *topic) switchWriter(ml *metadata.ManagedLedger, w Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.ml = ml
	t.mu.w = w
	t.mu.cur = ledgerProgress{created: time.Now(), lastPosition: ids.Position{Ledger: w.ID(), Entry: ids.NoEntry}}
	t.mu.rolling, t.mu.rollRunning = false, false
	if !t.appendingLocked() {
		go func() { _ = w.Close(context.Background(), nil) }()
		return
	}
	q := t.mu.queued
	t.mu.queued = nil
	for _, b := range q {
		t.appendLocked(b)
	}
	t.checkDrainedLocked()
	t.log.Debug("rolled ledger", "ledger", w.ID())
}

// appendingLocked reports whether appends complete into receipts: while the
// topic is served, and while a graceful unload drains it.
func (t *topic) appendingLocked() bool {
	return t.mu.state == topicServing || t.mu.state == topicDraining
}

// dropOnError drops the topic after a failed ledger or metadata operation.
func (t *topic) dropOnError(what string, err error) {
	reason := reasonWrite
	switch errcode.CodeOf(err) {
	case errcode.Fenced:
		reason = reasonFenced
	case errcode.TopicFenced, errcode.BadVersion:
		reason = reasonMeta
	}
	t.drop(reason, errcode.New(errcode.TopicFenced, "topic %s dropped: %s: %v", t.name, what, err), false)
}
