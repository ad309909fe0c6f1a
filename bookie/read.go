package bookie

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// Read returns one entry, read from disk with its CRC verified. It fails with
// ErrLedgerNotFound, ErrEntryNotFound, or ErrCorruption (no bytes returned).
func (b *Bookie) Read(l ids.LedgerID, e ids.EntryID) (Entry, error) {
	loc, err := b.lookup(l, e)
	if err != nil {
		return Entry{}, err
	}
	return b.readAt(l, e, loc)
}

// ReadRange calls fn with entries first..last (inclusive) in order, reading
// each with one positioned read. It stops after maxBytes of payload (at
// least one entry is passed; maxBytes <= 0 or above Config.MaxReadBytes
// means Config.MaxReadBytes) and returns nil: the caller asks again from the
// next entry. A missing entry ends the range with ErrEntryNotFound after the
// entries before it. ctx cancellation stops the range between entries.
func (b *Bookie) ReadRange(ctx context.Context, l ids.LedgerID, first, last ids.EntryID, maxBytes int, fn func(Entry) error) error {
	if l == 0 || first < 0 || last < first {
		return fmt.Errorf("%w: ledger %d range %d..%d", ErrInvalidArgument, l, first, last)
	}
	if maxBytes <= 0 || maxBytes > b.cfg.MaxReadBytes {
		maxBytes = b.cfg.MaxReadBytes
	}
	sent := 0
	for e := first; e <= last && (e == first || sent < maxBytes); e++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		ent, err := b.Read(l, e)
		if err != nil {
			return err
		}
		sent += len(ent.Payload)
		if err := fn(ent); err != nil {
			return err
		}
	}
	return nil
}

// An answer of ListEntries looks at most at listSpan entry ids, holding
// the index's lock for listChunk of them at a time, so that neither a huge
// range nor a call's answer goes unbounded and the syncer, which updates
// the index after each fdatasync, is not held up; it holds at most
// listRanges ranges, well under any message limit a bookie is given.
const (
	listSpan   = 1 << 20
	listChunk  = 1 << 16
	listRanges = 1 << 14
)

// ListEntries answers which entries of ledger l in first..last the bookie
// stores, as ascending, disjoint, non-adjacent ranges taken from the index
// (no record is read), and the first entry the answer does not cover:
// last+1, or less when the answer reached its bounds, and the caller asks
// again from there. An entry whose record was found damaged (by a read,
// the scrubber or the scan at open) is not listed: to the auditor's
// ledger check it is missing here, and a copy from another bookie
// replaces it; reading it meanwhile is ErrCorruption. An unknown ledger
// has no entries; a deleted one fails with ErrLedgerNotFound.
func (b *Bookie) ListEntries(l ids.LedgerID, first, last ids.EntryID) ([]index.Range, ids.EntryID, error) {
	if l == 0 || first < 0 || last < first || last == math.MaxInt64 {
		return nil, 0, fmt.Errorf("%w: ledger %d range %d..%d", ErrInvalidArgument, l, first, last)
	}
	if last-first >= listSpan {
		last = first + listSpan - 1
	}
	var rs []index.Range
	for from := first; ; {
		to := from + min(last-from, listChunk-1)
		var next ids.EntryID
		var err error
		if rs, next, err = b.appendRanges(rs, l, from, to); err != nil {
			return nil, 0, err
		}
		if next <= to || to == last {
			return rs, next, nil
		}
		from = to + 1
	}
}

// appendRanges is one chunk of ListEntries, under the index's lock.
func (b *Bookie) appendRanges(rs []index.Range, l ids.LedgerID, first, last ids.EntryID) ([]index.Range, ids.EntryID, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	led := b.mu.table.Get(l)
	if led == nil {
		return rs, last + 1, nil
	}
	if led.Deleted {
		return nil, 0, fmt.Errorf("%w: ledger %d", ErrLedgerNotFound, l)
	}
	rs, next := led.Entries.AppendRanges(rs, first, last, listRanges)
	return rs, next, nil
}

// listLedgerIDs bounds the ledgers one answer of ListLedgers holds
// (8 bytes each on the wire).
const listLedgerIDs = 1 << 14

// ListLedgers answers, ascending, the ledgers from first up that the
// bookie stores (its index holds entries of them, or a fence alone) and
// did not delete, and the first ledger id the answer does not cover: 0
// once it holds every such ledger, else the caller asks again from there.
// An answer looks at every ledger the index holds under its read lock,
// as a checkpoint's encoding does.
func (b *Bookie) ListLedgers(first ids.LedgerID) ([]ids.LedgerID, ids.LedgerID) {
	b.mu.RLock()
	ls, more := b.mu.table.LiveLedgers(first, listLedgerIDs)
	b.mu.RUnlock()
	if !more {
		return ls, 0
	}
	return ls, ls[len(ls)-1] + 1
}

func (b *Bookie) lookup(l ids.LedgerID, e ids.EntryID) (index.Loc, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	led := b.mu.table.Get(l)
	if led == nil || led.Deleted {
		return index.Loc{}, fmt.Errorf("%w: ledger %d", ErrLedgerNotFound, l)
	}
	loc, ok := led.Entries.Get(e)
	if !ok {
		return index.Loc{}, fmt.Errorf("%w: ledger %d entry %d", ErrEntryNotFound, l, e)
	}
	return loc, nil
}

func (b *Bookie) readAt(l ids.LedgerID, e ids.EntryID, loc index.Loc) (Entry, error) {
	rec, err := b.readRecord(l, e, loc, make([]byte, loc.Len))
	if err != nil {
		return Entry{}, err
	}
	return Entry{Ledger: l, ID: e, LAC: rec.LAC, Payload: rec.Payload, Recovery: rec.Recovery}, nil
}

// readRecord reads the record of entry e of ledger l at loc into buf
// (loc.Len bytes) and checks it: its CRC, and that it is that entry. A
// record that fails is marked damaged in the index (markDamaged), so that
// the ledger check copies the entry back from another bookie.
func (b *Bookie) readRecord(l ids.LedgerID, e ids.EntryID, loc index.Loc, buf []byte) (journal.Record, error) {
	b.files.RLock()
	seg := b.files.segs[loc.File]
	var err error
	if seg != nil {
		err = seg.ReadAt(buf, int64(loc.Off))
	}
	b.files.RUnlock()
	if seg == nil {
		// The segment was reclaimed: the ledger was deleted meanwhile.
		return journal.Record{}, fmt.Errorf("%w: ledger %d", ErrLedgerNotFound, l)
	}
	if err != nil {
		b.markDamaged(l, e, loc, err)
		return journal.Record{}, fmt.Errorf("%w: ledger %d entry %d: read %s@%d: %v", ErrCorruption, l, e, journal.Name(loc.File), loc.Off, err)
	}
	rec, n, err := journal.Decode(buf, b.seed(loc.File))
	if err == nil && (n != len(buf) || rec.Kind != journal.KindEntry || rec.Ledger != l || rec.Entry != e) {
		err = fmt.Errorf("record at the location is ledger %d entry %d", rec.Ledger, rec.Entry)
	}
	if err != nil {
		b.metrics.corruptions.Inc()
		b.markDamaged(l, e, loc, err)
		return journal.Record{}, fmt.Errorf("%w: ledger %d entry %d at %s@%d: %v", ErrCorruption, l, e, journal.Name(loc.File), loc.Off, err)
	}
	return rec, nil
}

// markDamaged marks entry e of ledger l damaged in the index if it still
// lives at loc, whose record could not be read back (why). A marked entry
// is left out of ListEntries, so the auditor's ledger check sees it
// missing here and copies it back from a bookie that holds it intact; the
// copy, a recovery add, replaces the damaged record. Reads of it answer
// ErrCorruption meanwhile, as before. An unreadable record is marked as a
// damaged one is: at worst a sound record is copied again.
func (b *Bookie) markDamaged(l ids.LedgerID, e ids.EntryID, loc index.Loc, why error) {
	b.mu.Lock()
	marked := b.mu.table.MarkDamaged(l, e, loc)
	b.mu.Unlock()
	if marked {
		b.log.Error("journal record damaged: entry marked so that the ledger check copies it back from another bookie",
			"ledger", l, "entry", e, "segment", journal.Name(loc.File), "offset", loc.Off, "err", why)
		b.recordDamaged(damageMark{ledger: l, entry: e, loc: loc})
	}
}

// LACInfo is what a bookie knows of a ledger's progress.
type LACInfo struct {
	// LAC is the max of the LACs piggy-backed on the ledger's stored entries.
	LAC ids.EntryID
	// Last is the highest stored entry id (-1 if none).
	Last   ids.EntryID
	Fenced bool
}

type waiter struct {
	ch chan struct{}
	n  int
}

// ReadLAC returns the ledger's LAC info. With wait > 0 it long-polls: it
// returns as soon as the LAC exceeds previous, or when wait (capped at
// Config.MaxLongPoll) passes, ctx is done or the bookie closes, with the
// info at that time. An unknown ledger reads as empty (-1, -1): its first
// entry may still come. A deleted ledger fails with ErrLedgerNotFound.
func (b *Bookie) ReadLAC(ctx context.Context, l ids.LedgerID, previous ids.EntryID, wait time.Duration) (LACInfo, error) {
	if l == 0 {
		return LACInfo{}, fmt.Errorf("%w: ledger id 0", ErrInvalidArgument)
	}
	wait = min(wait, b.cfg.MaxLongPoll)
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		info, w, err := b.lacOrWait(l, previous, wait > 0)
		if err != nil || w == nil {
			return info, err
		}
		select {
		case <-w.ch:
			continue
		case <-timeout:
		case <-ctx.Done():
		case <-b.stop:
		}
		b.unwait(l, w)
		info, _, err = b.lacOrWait(l, previous, false)
		return info, err
	}
}

// lacOrWait returns the info, and a waiter to block on if wanted and the
// LAC is not past previous yet.
func (b *Bookie) lacOrWait(l ids.LedgerID, previous ids.EntryID, wantWait bool) (LACInfo, *waiter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	info := LACInfo{LAC: ids.NoEntry, Last: ids.NoEntry}
	if led := b.mu.table.Get(l); led != nil {
		if led.Deleted {
			return info, nil, fmt.Errorf("%w: ledger %d", ErrLedgerNotFound, l)
		}
		info = LACInfo{LAC: led.LAC, Last: led.Last, Fenced: led.Fenced}
	}
	if !wantWait || info.LAC > previous {
		return info, nil, nil
	}
	w := b.mu.waiters[l]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		b.mu.waiters[l] = w
	}
	w.n++
	return info, w, nil
}

func (b *Bookie) unwait(l ids.LedgerID, w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.waiters[l] == w {
		if w.n--; w.n == 0 {
			delete(b.mu.waiters, l)
		}
	}
}

// wakeLocked wakes the LAC waiters of l. Needs mu.
func (b *Bookie) wakeLocked(l ids.LedgerID) {
	if w := b.mu.waiters[l]; w != nil {
		close(w.ch)
		delete(b.mu.waiters, l)
	}
}
