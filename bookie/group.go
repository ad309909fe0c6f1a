package bookie

import (
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// This file is the deterministic core of group commit: which requests join a
// group, and which of them are written. No I/O, no clock reads.

type opKind uint8

const (
	opAdd opKind = iota
	opFence
	opDelete
	// opRelocate copies a live entry out of a segment being compacted; it
	// is written whatever the ledger's fence, and applied only if the entry
	// still lives where it was copied from.
	opRelocate
)

// request is one journal operation, answered exactly once through done.
// done must never block: it runs on the journal writer or syncer goroutine.
type request struct {
	op       opKind
	ledger   ids.LedgerID
	entry    ids.EntryID
	lac      ids.EntryID
	payload  []byte
	recovery bool
	from     index.Loc // opRelocate: where the entry lived
	done     func(result)
}

// result is the outcome of a request. lac and last are set for fences.
type result struct {
	err       error
	lac, last ids.EntryID
}

func (r *request) size() int { return journal.HeaderSize + len(r.payload) }

func (r *request) record(syncMark uint32) journal.Record {
	rec := journal.Record{Ledger: r.ledger, Entry: ids.NoEntry, LAC: ids.NoEntry, SyncMark: syncMark}
	switch r.op {
	case opAdd, opRelocate:
		rec.Kind, rec.Entry, rec.LAC, rec.Payload, rec.Recovery = journal.KindEntry, r.entry, r.lac, r.payload, r.recovery
	case opFence:
		rec.Kind = journal.KindFence
	case opDelete:
		rec.Kind = journal.KindDelete
	}
	return rec
}

// collector decides when to stop collecting a group: at maxBytes, or
// maxDelay after the group's first request. (An empty queue while no fsync
// is running also ends the group; the writer sees that itself.)
type collector struct {
	maxBytes int
	maxDelay time.Duration
	start    time.Time
	bytes    int
}

func (c *collector) reset(now time.Time) { c.start, c.bytes = now, 0 }
func (c *collector) add(r *request)      { c.bytes += r.size() }
func (c *collector) full(now time.Time) bool {
	return c.bytes >= c.maxBytes || now.Sub(c.start) >= c.maxDelay
}

// remaining is how long the group may still wait for more requests.
func (c *collector) remaining(now time.Time) time.Duration {
	return max(0, c.maxDelay-now.Sub(c.start))
}

// statusFunc reports a ledger's durable fenced and deleted flags.
type statusFunc func(ids.LedgerID) (fenced, deleted bool)

type rejection struct {
	req *request
	err error
}

// plan decides, in arrival order, which requests of a group are written.
// A fence or delete takes effect for every request after it in the same
// group, so no add that arrived after a fence is ever written, let alone
// acknowledged: fence replies are computed from the index once the group is
// applied, and every accepted non-recovery add of that ledger came before
// the fence.
func plan(reqs []*request, status statusFunc) (accepted []*request, rejected []rejection) {
	type flags struct{ fenced, deleted bool }
	pending := map[ids.LedgerID]flags{}
	get := func(l ids.LedgerID) flags {
		if f, ok := pending[l]; ok {
			return f
		}
		f, d := status(l)
		return flags{f, d}
	}
	for _, r := range reqs {
		f := get(r.ledger)
		switch {
		case f.deleted && r.op != opDelete:
			rejected = append(rejected, rejection{r, ErrLedgerNotFound})
			continue
		case r.op == opAdd && f.fenced && !r.recovery:
			rejected = append(rejected, rejection{r, ErrFenced})
			continue
		case r.op == opFence:
			f.fenced = true
		case r.op == opDelete:
			f.deleted = true
		}
		pending[r.ledger] = f
		accepted = append(accepted, r)
	}
	return accepted, rejected
}
