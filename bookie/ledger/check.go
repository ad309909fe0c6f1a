package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// The periodic ledger check, as BookKeeper's auditor runs its
// LedgerChecker every auditorPeriodicCheckInterval. A bookie of a write
// set that was down while entries were written, with no spare bookie to
// replace it, misses them, and so does one whose copy was still in
// flight when the ledger was closed: those entries have fewer than Qw
// copies, nothing else ever copies them, and one more lost bookie may
// leave a single copy or none. A pass goes through every closed ledger,
// a few a round, and for each fragment and each live bookie of its
// ensemble compares the entries the bookie should hold (its write sets)
// with those its index lists (bookie ListEntries, no payload read; a
// bookie leaves out the entries its scrubber or a read found damaged), and
// copies the missing ones back to that bookie from the other bookies of
// their write sets. The metadata does not change: the bookie is still in
// the ensemble.

// DefaultCheckInterval is AuditorConfig.CheckInterval's default: a pass
// over every closed ledger a day (BookKeeper's default is a week; its
// check reads each fragment's first and last entries, this one lists
// every entry from the bookies' indexes).
const DefaultCheckInterval = 24 * time.Hour

// maxChecksPerRound bounds the ledgers an audit round checks, so that a
// pass over many ledgers is spread over many rounds; a variable so that a
// test can make it small.
var maxChecksPerRound = 64

// checkInterval is the configured interval, 0 when the check is off.
func (a *Auditor) checkInterval() time.Duration {
	return orDefault(a.cfg.CheckInterval, DefaultCheckInterval)
}

// checkDue reports whether a pass should start now: the last one is done
// and began an interval ago.
func (a *Auditor) checkDue(now time.Time) bool {
	return a.checkInterval() > 0 && len(a.check.queue) == 0 && !now.Before(a.check.next)
}

// startCheck starts a pass over the ledgers of a full scan, when one is
// due. Each is read again when its turn comes: it may have changed since.
func (a *Auditor) startCheck(all []*metadata.Ledger, now time.Time) {
	if !a.checkDue(now) {
		return
	}
	for _, l := range all {
		if checkable(l) {
			a.check.queue = append(a.check.queue, l.ID)
		}
	}
	slices.Sort(a.check.queue)
	a.check.next = now.Add(a.checkInterval())
	a.check.pass = checkPass{}
	a.log.Info("ledger check: pass started", "ledgers", len(a.check.queue))
}

// checkable reports whether a pass checks l: closed, not being deleted,
// and with its bookie copies still meant to be there (an offloaded ledger
// keeps them until the deletion lag passed).
func checkable(l *metadata.Ledger) bool {
	return l.State == metadata.LedgerClosed && !l.Deleting && (l.Offload == nil || l.Offload.State != metadata.OffloadDeleted)
}

// checkSome checks the next ledgers of the pass under way, at most
// maxChecksPerRound. A bookie that fails to list a ledger's entries is
// left alone for the rest of the round, so that a hung one costs one
// request timeout a round.
func (a *Auditor) checkSome(ctx context.Context) {
	if len(a.check.queue) == 0 {
		return
	}
	live, err := a.c.liveBookies(ctx)
	if err != nil {
		a.log.Debug("ledger check: listing bookies", "err", err)
		return
	}
	down := map[string]bool{}
	for range min(len(a.check.queue), maxChecksPerRound) {
		if ctx.Err() != nil {
			return
		}
		l, err := a.c.store.GetLedger(ctx, a.check.queue[0])
		if err != nil && !errors.Is(err, metadata.ErrNotFound) {
			a.log.Debug("ledger check: reading a ledger; tried again next round", "ledger", a.check.queue[0], "err", err)
			return
		}
		a.check.queue = a.check.queue[1:]
		if err == nil && checkable(l) {
			a.checkLedger(ctx, l, live, down)
		}
	}
	if len(a.check.queue) == 0 {
		p := a.check.pass
		a.log.Info("ledger check: pass finished", "ledgers", p.ledgers, "missing_entries", p.missing, "copied_entries", p.copied, "failures", p.failures)
	}
}

// checkLedger checks closed ledger l on each bookie of its fragments that
// is live (writable: a read-only bookie's disk is full, a draining one is
// being emptied, a lost one is Rereplicate's) and not down this round,
// and copies back what one misses.
func (a *Auditor) checkLedger(ctx context.Context, l *metadata.Ledger, live []string, down map[string]bool) {
	a.checkedLedgers.Inc()
	a.check.pass.ledgers++
	for i := range l.Fragments {
		f := &l.Fragments[i]
		last := l.LastEntry
		if i+1 < len(l.Fragments) {
			last = l.Fragments[i+1].FirstEntry - 1
		}
		if f.FirstEntry > last {
			continue
		}
		for k, b := range f.Bookies {
			if down[b] || !slices.Contains(live, b) {
				continue
			}
			err := a.checkOn(ctx, l, f, k, last)
			if ctx.Err() != nil {
				return // stopping: nothing failed
			}
			if err != nil {
				a.checkFailures.Inc()
				a.check.pass.failures++
				a.log.Warn("ledger check: a bookie's copies of a fragment could not be checked or completed; tried again next pass",
					"ledger", l.ID, "bookie", b, "entries", fmt.Sprintf("%d..%d", f.FirstEntry, last), "err", err)
				if errors.Is(err, errListing) && errcode.CodeOf(err) != errcode.LedgerNotFound {
					down[b] = true
				}
			}
		}
	}
}

// errListing marks the failures to list a bookie's entries.
var errListing = errors.New("listing the entries it holds")

// checkOn copies back to the bookie at index k of fragment f of l the
// entries f.FirstEntry..last it should hold and does not.
func (a *Auditor) checkOn(ctx context.Context, l *metadata.Ledger, f *metadata.Fragment, k int, last ids.EntryID) error {
	b := f.Bookies[k]
	held, err := a.c.entriesOn(ctx, b, l.ID, f.FirstEntry, last)
	if err != nil {
		return fmt.Errorf("%w: %w", errListing, err)
	}
	miss := missingEntries(len(f.Bookies), l.WriteQuorum, k, f.FirstEntry, last, held)
	if len(miss) == 0 {
		return nil
	}
	n := 0
	for _, s := range miss {
		n += int(s.last - s.first + 1)
	}
	a.missingEntries.Add(float64(n))
	a.check.pass.missing += n
	// An entry no bookie holds any more (every one answered that it has
	// none) is lost whatever the next pass does: the copy goes on past it,
	// so that it does not keep the entries after it short for good.
	var lost []ids.EntryID
	plan := copyPlan{spans: miss, avoid: b, unreadable: func(e ids.EntryID, err error) bool {
		// Only when every bookie said so: one saying so beside one that
		// timed out is a failure to retry next pass, not a loss.
		if !errors.Is(err, errOnNoBookie) {
			return false
		}
		lost = append(lost, e)
		return true
	}}
	copied, err := a.c.copyEntries(ctx, l, plan, b)
	a.copiedEntries.Add(float64(copied))
	a.check.pass.copied += copied
	if err == nil && len(lost) > 0 {
		err = fmt.Errorf("%w: %d entries, the first %d, are on no bookie of their write sets", ErrEntryNotFound, len(lost), lost[0])
	}
	if err != nil {
		return fmt.Errorf("copying back %d missing entries (%d copied): %w", n, copied, err)
	}
	a.log.Info("ledger check: copied back entries a bookie of their write sets missed", "ledger", l.ID, "bookie", b, "entries", n)
	return nil
}

// missingEntries answers, as ascending spans, the entries of first..last
// that the bookie at index k of an ensemble of n should hold with write
// quorum qw and that held, the ascending spans it holds, lacks.
func missingEntries(n, qw, k int, first, last ids.EntryID, held []span) []span {
	var out []span
	gap := func(from, to ids.EntryID) {
		for e := from; e <= to; e++ {
			if !inWriteSet(n, qw, k, e) {
				continue
			}
			if m := len(out); m > 0 && out[m-1].last+1 == e {
				out[m-1].last = e
			} else {
				out = append(out, span{e, e})
			}
		}
	}
	from := first
	for _, h := range held {
		if h.last < from {
			continue
		}
		if h.first > last {
			break
		}
		if h.first > from {
			gap(from, h.first-1)
		}
		from = h.last + 1
	}
	if from <= last {
		gap(from, last)
	}
	return out
}

// entriesOn answers the entries of ledger id in first..last that bookie b
// stores, as ascending spans, asking until its answers cover the range.
func (c *Client) entriesOn(ctx context.Context, b string, id ids.LedgerID, first, last ids.EntryID) ([]span, error) {
	bc, err := c.bookie(b)
	if err != nil {
		return nil, err
	}
	var out []span
	for from := first; from <= last; {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		resp, err := bc.ListEntries(rctx, &bookiepb.ListEntriesRequest{LedgerId: uint64(id), FirstEntry: int64(from), LastEntry: int64(last)})
		cancel()
		if err != nil {
			return nil, errcode.FromError(err)
		}
		next := ids.EntryID(resp.GetNextEntry())
		if next <= from || next > last+1 {
			return nil, errcode.New(errcode.Internal, "ledger: bookie %s listed entries of %d up to %d, asked %d..%d", b, id, next, from, last)
		}
		for _, r := range resp.GetRanges() {
			s := span{ids.EntryID(r.GetFirstEntry()), ids.EntryID(r.GetLastEntry())}
			if s.first < from || s.last < s.first || s.last >= next || (len(out) > 0 && s.first <= out[len(out)-1].last) {
				return nil, errcode.New(errcode.Internal, "ledger: bookie %s listed entries %d..%d of %d, asked %d..%d", b, s.first, s.last, id, from, next-1)
			}
			if m := len(out); m > 0 && out[m-1].last+1 == s.first {
				out[m-1].last = s.last // an answer's bound split a run
			} else {
				out = append(out, s)
			}
		}
		from = next
	}
	return out, nil
}
