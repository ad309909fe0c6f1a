package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Re-replication, as BookKeeper's AutoRecovery: a bookie that is gone for
// good (its disk lost, or decommissioned) leaves every entry it held with
// one copy fewer, until another loss loses it. Rereplicate copies what a
// lost bookie held of one closed ledger to other bookies and records them
// in the ledger's metadata; the serving tier calls it for the ledgers of
// the topics it owns once a bookie has been missing for a while.

// ErrLedgerNotClosed: re-replication is for closed ledgers only; an open
// one is the writer's (ensemble change) or its recovery's business.
var ErrLedgerNotClosed = errcode.New(errcode.InvalidArgument, "ledger: not closed")

// rereplicateWindow and rereplicateBytes bound the adds in flight to one
// replacement bookie, under a bookie's default per-stream limits.
const (
	rereplicateWindow = 256
	rereplicateBytes  = 32 << 20
)

// Rereplicate moves closed ledger id off bookie lost. For each fragment
// whose ensemble holds lost, it picks a live bookie outside the ensemble
// and copies to it, with recovery adds each answered after its fsync,
// every entry of the fragment whose write set holds lost, read from the
// other bookies of its write set; then it records every replacement in one
// compare-and-swap of the ledger's metadata. Until that CAS the metadata
// is unchanged, so a failure or a crash halfway loses nothing: the copies
// are merely orphaned (and deleted with the ledger). It answers the ledger
// as stored afterwards, unchanged when lost holds no part of it;
// ErrNotEnoughBookies when no bookie outside an ensemble is live, and
// ErrEntryNotFound when no other bookie holds an entry.
func (c *Client) Rereplicate(ctx context.Context, id ids.LedgerID, lost string) (*metadata.Ledger, error) {
	l, err := c.store.GetLedger(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrLedgerNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	if l.State != metadata.LedgerClosed {
		return nil, fmt.Errorf("%w: ledger %d is %s", ErrLedgerNotClosed, id, l.State)
	}
	if l.Deleting || !names(l, lost) {
		return l, nil // being deleted: a copy would only be left behind
	}
	live, err := c.liveBookies(ctx)
	if err != nil {
		return nil, err
	}
	replaced := make([]metadata.Fragment, len(l.Fragments))
	var copied []string // the bookies given copies, to delete if unused
	for i, f := range l.Fragments {
		replaced[i] = metadata.Fragment{FirstEntry: f.FirstEntry, Bookies: slices.Clone(f.Bookies)}
		k := slices.Index(f.Bookies, lost)
		if k < 0 {
			continue
		}
		spare := slices.DeleteFunc(slices.Clone(live), func(b string) bool { return b == lost || slices.Contains(f.Bookies, b) })
		if len(spare) == 0 {
			return nil, fmt.Errorf("%w: no live bookie outside %v to replace %s in ledger %d", ErrNotEnoughBookies, f.Bookies, lost, id)
		}
		to, err := c.spareFor(ctx, spare, id, f.FirstEntry)
		if err != nil {
			return nil, fmt.Errorf("%w: no live bookie outside %v can take ledger %d in place of %s: %w", ErrNotEnoughBookies, f.Bookies, id, lost, err)
		}
		last := l.LastEntry
		if i+1 < len(l.Fragments) {
			last = l.Fragments[i+1].FirstEntry - 1
		}
		if f.FirstEntry <= last {
			copied = append(copied, to)
			plan := copyPlan{spans: []span{{f.FirstEntry, last}}, avoid: lost,
				want: func(e ids.EntryID) bool { return inWriteSet(len(f.Bookies), l.WriteQuorum, k, e) }}
			if _, err := c.copyEntries(ctx, l, plan, to); err != nil {
				return nil, fmt.Errorf("ledger %d: copying entries %d..%d from the bookies of %s to %s: %w", id, f.FirstEntry, last, lost, to, err)
			}
		}
		replaced[i].Bookies[k] = to
	}
	// Record the copies, unless the ledger is being deleted (its record
	// marked or gone: the copies are deleted now, best effort, as nothing
	// will ever name them) or the fragments changed meanwhile (another
	// re-replication won: its copies may be on the same bookies, and a
	// later one may still name them, so this one's are left unused).
	for {
		cur, err := c.store.GetLedger(ctx, id)
		if errors.Is(err, metadata.ErrNotFound) || (err == nil && cur.Deleting) {
			for _, b := range copied {
				if derr := c.deleteOn(ctx, b, id); derr != nil {
					c.log.Warn("deleting a re-replicated copy of a ledger being deleted", "ledger", id, "bookie", b, "err", derr)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %d", ErrLedgerNotFound, id)
			}
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		if !sameFragments(cur.Fragments, l.Fragments) {
			return cur, nil
		}
		cur.Fragments = replaced
		err = c.store.UpdateLedger(ctx, cur)
		if errors.Is(err, metadata.ErrBadVersion) {
			continue // another field changed (an offload's record, say): try again
		}
		if err != nil {
			return nil, err
		}
		c.log.Info("ledger re-replicated off a lost bookie", "ledger", id, "lost", lost, "fragments", replaced)
		return cur, nil
	}
}

// spareFor picks, in random order, a bookie of spare that answers which
// entries of ledger id it holds (from first, one entry asked), and so can
// take copies of it. One that deleted the ledger cannot: its tombstone
// refuses every add to the ledger (LEDGER_NOT_FOUND) until the journal
// segments before it are reclaimed, and the auditor's garbage collection
// leaves one on each bookie whose copy was over-replicated, which may
// later be a spare for that ledger, the only one or one of a few. Nor can
// one that does not answer. A spare picked blindly failed the copy, and
// the round, each time it was picked.
func (c *Client) spareFor(ctx context.Context, spare []string, id ids.LedgerID, first ids.EntryID) (string, error) {
	var errs []error
	for _, i := range rand.Perm(len(spare)) {
		_, err := c.entriesOn(ctx, spare[i], id, first, first)
		if err == nil {
			return spare[i], nil
		}
		errs = append(errs, fmt.Errorf("bookie %s: %w", spare[i], err))
	}
	return "", errors.Join(errs...)
}

func sameFragments(a, b []metadata.Fragment) bool {
	return slices.EqualFunc(a, b, func(x, y metadata.Fragment) bool {
		return x.FirstEntry == y.FirstEntry && slices.Equal(x.Bookies, y.Bookies)
	})
}

// span is the entries first..last, both included.
type span struct{ first, last ids.EntryID }

// copyPlan says which entries of a ledger a copy takes and where it reads
// them.
type copyPlan struct {
	spans []span
	// want, when set, picks the entries of spans to copy; nil takes all.
	want func(ids.EntryID) bool
	// avoid is the bookie read only when the others of a write set fail.
	avoid string
	// unreadable, when set, is told of an entry that could not be read,
	// and the copy goes on without it when it answers true; else the
	// copy stops with the read's error.
	unreadable func(ids.EntryID, error) bool
}

// copyEntries copies to bookie to the entries of closed ledger l that p
// names, each read from a bookie of its write set, with recovery adds
// each answered after its fsync. It answers how many adds to
// acknowledged, all of those sent when it answers no error.
func (c *Client) copyEntries(ctx context.Context, l *metadata.Ledger, p copyPlan, to string) (int, error) {
	bc, err := c.bookie(to)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := bc.Add(ctx)
	if err != nil {
		return 0, errcode.FromError(err)
	}
	// Adds in flight are bounded in count and bytes, under the bookie's
	// per-stream limits; the answers come back on their own goroutine.
	inflight := semaphore.NewWeighted(rereplicateBytes)
	count := make(chan struct{}, rereplicateWindow)
	var mu sync.Mutex
	sizes := map[int64]int64{}
	acked := 0
	copied := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}
	answered := make(chan error, 1)
	go func() {
		for {
			resp, err := st.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					answered <- nil
					return
				}
				answered <- errcode.FromError(err)
				cancel()
				return
			}
			if resp.GetErrorCode() != 0 {
				answered <- errcode.New(errcode.Code(resp.GetErrorCode()), "bookie %s: entry %d: %s", to, resp.GetEntryId(), resp.GetErrorMessage())
				cancel() // wakes the sender, which may wait for room
				return
			}
			mu.Lock()
			n := sizes[resp.GetEntryId()]
			delete(sizes, resp.GetEntryId())
			acked++
			mu.Unlock()
			inflight.Release(n)
			<-count
		}
	}()
	send := func(en Entry) error {
		n := min(int64(len(en.Payload))+1, rereplicateBytes)
		if err := inflight.Acquire(ctx, n); err != nil {
			return c.copyFailed(ctx, answered, to)
		}
		select {
		case count <- struct{}{}:
		case <-ctx.Done():
			return c.copyFailed(ctx, answered, to)
		}
		mu.Lock()
		sizes[int64(en.ID)] = n
		mu.Unlock()
		if err := st.Send(&bookiepb.AddRequest{RequestId: uint64(en.ID) + 1, LedgerId: uint64(l.ID), EntryId: int64(en.ID),
			Lac: int64(l.LastEntry), Payload: en.Payload, Recovery: true}); err != nil {
			return c.copyFailed(ctx, answered, to)
		}
		select {
		case err := <-answered:
			if err == nil {
				err = errcode.New(errcode.Unavailable, "bookie %s ended the stream early", to)
			}
			return err
		default:
			return nil
		}
	}
	for _, sp := range p.spans {
		for e := sp.first; e <= sp.last; {
			got, err := c.read(ctx, l, e, sp.last, p.avoid)
			if err != nil {
				if ctx.Err() != nil {
					return copied(), c.copyFailed(ctx, answered, to)
				}
				if p.unreadable == nil || !p.unreadable(e, err) {
					return copied(), err
				}
				e++
				continue
			}
			for _, en := range got {
				if p.want != nil && !p.want(en.ID) {
					continue
				}
				if err := send(en); err != nil {
					return copied(), err
				}
			}
			e = got[len(got)-1].ID + 1
		}
	}
	if err := st.CloseSend(); err != nil {
		return copied(), errcode.FromError(err)
	}
	// The bookie ends the stream once it has answered every add.
	select {
	case err := <-answered:
		if err != nil {
			return copied(), err
		}
		if len(count) != 0 {
			return copied(), errcode.New(errcode.Unavailable, "bookie %s ended the stream with %d adds unanswered", to, len(count))
		}
		return copied(), nil
	case <-ctx.Done():
		return copied(), ctx.Err()
	}
}

// copyFailed answers why a copy's stream stopped taking adds: the bookie's
// own error when it gave one.
func (c *Client) copyFailed(ctx context.Context, answered <-chan error, to string) error {
	select {
	case err := <-answered:
		if err != nil {
			return err
		}
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errcode.New(errcode.Unavailable, "bookie %s stopped taking adds", to)
}
