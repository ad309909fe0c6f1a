package serving

import (
	"context"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// Receipts of an earlier owner's batches. A resend is answered with the
// position its batch was first written at, which the owner that wrote it
// keeps in memory (dedupState.recent). A new owner that recovered the last
// ledger read it through and has its receipts; one that found it recorded
// closed by a graceful unload (unload.go) read nothing. That owner answered
// every batch it wrote before it let its producers go, so resends of such
// batches are rare (a producer whose connection broke on its own just
// before the move); for them, the new owner reads the earlier owners'
// entries back, newest first, a chunk at a time, and only as far as the
// resend needs, stopping after maxEarlierEntries in all.

// maxEarlierEntries bounds the entries one load reads back for receipts:
// about a second of reads, and more than the batches a producer keeps in
// flight (the SDK's 512) as long as fewer than 20 producers share the
// topic's last entries.
const maxEarlierEntries = 10_000

// earlierReceipts is how far back a topic has read its earlier owners'
// entries for their receipts: the next read ends at entry next of ledger
// (going backwards), and budget entries are left to read.
type earlierReceipts struct {
	ledger ids.LedgerID // 0: nothing (more) to read
	next   ids.EntryID
	budget int
}

// mayHold reports whether reading further back may find the receipt of
// d's batch holding sequence id seq. The ring of recent receipts only
// takes older ones while it is not full (and so not wrapped: recent[0] is
// its oldest), and once its oldest starts at or before seq the batch is
// not among the earlier entries.
func (e *earlierReceipts) mayHold(d *dedupState, seq uint64) bool {
	if e.ledger == 0 || e.budget <= 0 || len(d.recent) >= maxRecentReceipts {
		return false
	}
	return len(d.recent) == 0 || d.recent[0].first > seq
}

// readEarlierReceipts reads earlier owners' entries back until the receipt
// of name's batch holding seq is known, or cannot be found; the receipts of
// every producer met on the way are kept. Reads of several producers are
// serialised.
func (t *topic) readEarlierReceipts(name string, seq uint64) {
	t.earlierMu.Lock()
	defer t.earlierMu.Unlock()
	ctx, cancel := context.WithTimeout(t.ctx, t.n.cfg.MetaTimeout)
	defer cancel()
	for {
		t.mu.Lock()
		id, first, last, ok := t.earlierChunkLocked(name, seq)
		t.mu.Unlock()
		if !ok {
			return
		}
		es, err := t.readAll(ctx, id, first, last)
		t.n.m.earlierReads.Add(float64(len(es)))
		t.mu.Lock()
		if err != nil {
			t.log.Warn("reading earlier entries for the receipts of resends: answering them without their positions", "ledger", id, "err", err)
			t.mu.earlier.ledger = 0
		} else {
			t.addEarlierLocked(es, id, first)
		}
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// earlierChunkLocked answers the next entries to read back for the receipt
// of name's batch holding seq, if reading on may find it.
func (t *topic) earlierChunkLocked(name string, seq uint64) (id ids.LedgerID, first, last ids.EntryID, ok bool) {
	e := &t.mu.earlier
	d := t.mu.dedup[name]
	if d == nil || !e.mayHold(d, seq) {
		return 0, 0, 0, false
	}
	if _, found := d.find(seq); found {
		return 0, 0, 0, false
	}
	for e.next < 0 { // the ledger before, in the managed ledger's order
		i := t.orderLocked().index(e.ledger) - 1
		if i < 0 {
			e.ledger = 0
			return 0, 0, 0, false
		}
		e.ledger, e.next = t.mu.ml.Ledgers[i].ID, ids.EntryID(t.entriesLocked(i)-1)
	}
	step := ids.EntryID(min(t.n.cfg.ReadAheadEntries, e.budget))
	return e.ledger, max(0, e.next-step+1), e.next, true
}

// readAll reads entries first to last of ledger id, in as many reads as
// it takes.
func (t *topic) readAll(ctx context.Context, id ids.LedgerID, first, last ids.EntryID) ([]*cachedEntry, error) {
	var out []*cachedEntry
	for first <= last {
		es, err := t.readEntries(ctx, id, first, last)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, errcode.New(errcode.EntryNotFound, "empty read of ledger %d from entry %d", id, first)
		}
		out = append(out, es...)
		first = es[len(es)-1].pos.Entry + 1
	}
	return out, nil
}

// addEarlierLocked puts the receipts of es (entries first on of ledger id,
// oldest first) before those each producer's ring holds, and moves the
// read back past them.
func (t *topic) addEarlierLocked(es []*cachedEntry, id ids.LedgerID, first ids.EntryID) {
	byName := map[string][]receipt{}
	for _, ce := range es {
		b := ce.batch
		if len(b.Messages) == 0 {
			continue
		}
		byName[b.ProducerName] = append(byName[b.ProducerName], receipt{first: b.Messages[0].SequenceID,
			last: b.Messages[len(b.Messages)-1].SequenceID, pos: ce.pos, publishTime: b.PublishTime})
	}
	for name, rs := range byName {
		if d := t.mu.dedup[name]; d != nil { // a name evicted since is not brought back
			d.prepend(rs)
		}
	}
	e := &t.mu.earlier
	if e.ledger == id {
		e.next = first - 1
		e.budget -= len(es)
	}
}
