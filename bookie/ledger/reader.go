package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Entry is one entry read from a ledger.
type Entry struct {
	ID      ids.EntryID
	Payload []byte
}

// Read returns entries first..last (inclusive) of ledger l, or fewer when
// they pass MaxReadEntries or MaxReadBytes, or when an entry after the
// first cannot be read (at least one is returned, else the error). Each
// entry comes from a bookie of its write set; on error the next one is
// tried. ErrInvalidArgument for a bad range (or one past a closed ledger's
// last entry); ErrEntryNotFound if no bookie has an entry. Reading past the
// LAC of an open ledger is the caller's risk: an entry there may be lost.
func (c *Client) Read(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]Entry, error) {
	return c.read(ctx, l, first, last, "")
}

// read is Read asking bookie avoid (when not empty) only when the other
// bookies of a write set fail: re-replication reads around a lost bookie
// without waiting for it first.
func (c *Client) read(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID, avoid string) ([]Entry, error) {
	if first < 0 || last < first || (l.State == metadata.LedgerClosed && last > l.LastEntry) || len(l.Fragments) == 0 {
		return nil, fmt.Errorf("%w: read %d..%d of ledger %d (state %s, last entry %d)",
			ErrInvalidArgument, first, last, l.ID, l.State, l.LastEntry)
	}
	last = min(last, first+ids.EntryID(c.cfg.MaxReadEntries)-1)
	var out []Entry
	bytes := 0
	for e := first; e <= last && (len(out) == 0 || bytes < c.cfg.MaxReadBytes); {
		got, err := c.readRun(ctx, l, e, c.runEnd(l, e, last), avoid)
		if err != nil {
			if len(out) > 0 {
				// The entries before it are good: the caller's next read
				// starts at the failing one and gets the error then.
				return out, nil
			}
			return nil, err
		}
		for _, en := range got {
			out = append(out, en)
			bytes += len(en.Payload)
		}
		e = got[len(got)-1].ID + 1
	}
	return out, nil
}

// runEnd returns the last entry ≤ last that can be read from the same
// bookies as e: the end of e's fragment when the fragment does not stripe
// (E = Qw), else e itself.
func (c *Client) runEnd(l *metadata.Ledger, e, last ids.EntryID) ids.EntryID {
	if l.Ensemble != l.WriteQuorum {
		return e
	}
	for i, f := range l.Fragments {
		if f.FirstEntry <= e && (i+1 == len(l.Fragments) || l.Fragments[i+1].FirstEntry > e) {
			if i+1 < len(l.Fragments) {
				return min(last, l.Fragments[i+1].FirstEntry-1)
			}
			return last
		}
	}
	return e
}

// readRun reads first..last (one write set) from the first bookie of the
// write set that answers, avoid last; it returns at least one entry.
func (c *Client) readRun(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID, avoid string) ([]Entry, error) {
	ws := writeSet(l.FragmentFor(first), l.WriteQuorum, first)
	if i := slices.Index(ws, avoid); i >= 0 && avoid != "" {
		ws = append(slices.Delete(ws, i, i+1), avoid)
	}
	var errs []error
	for _, b := range ws {
		got, err := c.readRange(ctx, b, l.ID, first, last)
		if len(got) > 0 {
			return got, nil
		}
		if err == nil {
			err = ErrEntryNotFound
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
		if ctx.Err() != nil {
			break
		}
	}
	if allNoEntry(errs) {
		return nil, fmt.Errorf("%w: ledger %d entry %d: %w", errOnNoBookie, l.ID, first, errors.Join(errs...))
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return errcode.CodeOf(err) != errcode.Corruption }) {
		return nil, fmt.Errorf("%w: ledger %d entry %d: %w", ErrEntryDamaged, l.ID, first, errors.Join(errs...))
	}
	return nil, fmt.Errorf("ledger: read %d:%d: %w", l.ID, first, errors.Join(errs...))
}

// errOnNoBookie is readRun's answer when every bookie of the write set
// answered that it has no such entry (not merely one of them, beside
// others that failed otherwise): the entry is on none.
var errOnNoBookie = fmt.Errorf("%w on any bookie of its write set", ErrEntryNotFound)

func allNoEntry(errs []error) bool {
	for _, err := range errs {
		if !isNoEntry(err) {
			return false
		}
	}
	return true
}

// readRange streams first..last from bookie b, stopping at the first error
// and returning what came before it.
func (c *Client) readRange(ctx context.Context, b string, id ids.LedgerID, first, last ids.EntryID) ([]Entry, error) {
	bc, err := c.bookie(b)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	st, err := bc.Read(ctx, &bookiepb.ReadRequest{
		LedgerId: uint64(id), FirstEntry: int64(first), LastEntry: int64(last), MaxBytes: uint64(c.cfg.MaxReadBytes),
	})
	if err != nil {
		return nil, errcode.FromError(err)
	}
	var out []Entry
	next := first
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, errcode.FromError(err)
		}
		for _, en := range resp.Entries {
			if ids.EntryID(en.EntryId) != next {
				return out, errcode.New(errcode.Internal, "ledger: bookie %s sent entry %d, expected %d", b, en.EntryId, next)
			}
			out = append(out, Entry{ID: next, Payload: en.Payload})
			next++
		}
	}
}

// ReadLAC returns the highest LAC the bookies of l's last fragment know
// (the last entry of a closed ledger). It fails only if none answers.
func (c *Client) ReadLAC(ctx context.Context, l *metadata.Ledger) (ids.EntryID, error) {
	if l.State == metadata.LedgerClosed {
		return l.LastEntry, nil
	}
	return c.pollLAC(ctx, l, ids.NoEntry, 0)
}

// WaitLAC waits until a bookie of l's last fragment reports a LAC greater
// than previous, or timeout passes, and returns the highest LAC seen (which
// is previous or less when nothing advanced). Cancelling ctx stops the wait
// with the context's error.
func (c *Client) WaitLAC(ctx context.Context, l *metadata.Ledger, previous ids.EntryID, timeout time.Duration) (ids.EntryID, error) {
	if l.State == metadata.LedgerClosed {
		return l.LastEntry, nil
	}
	if timeout <= 0 || timeout > time.Hour {
		return ids.NoEntry, fmt.Errorf("%w: WaitLAC timeout %v", ErrInvalidArgument, timeout)
	}
	return c.pollLAC(ctx, l, previous, timeout)
}

// pollLAC asks every bookie of the last fragment in parallel; with a
// timeout it returns as soon as one reports a LAC above previous.
func (c *Client) pollLAC(ctx context.Context, l *metadata.Ledger, previous ids.EntryID, timeout time.Duration) (ids.EntryID, error) {
	f := lastFragment(l)
	if f == nil {
		return ids.NoEntry, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+c.cfg.RequestTimeout)
	defer cancel()
	type answer struct {
		lac ids.EntryID
		err error
	}
	answers := make(chan answer, len(f.Bookies))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, b := range f.Bookies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lac, err := c.lacOn(ctx, b, l.ID, previous, timeout)
			answers <- answer{lac, err}
		}()
	}
	best, ok := ids.NoEntry, false
	var errs []error
	for range f.Bookies {
		a := <-answers
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		best, ok = max(best, a.lac), true
		if timeout > 0 && best > previous {
			break
		}
	}
	if !ok {
		if err := ctx.Err(); err != nil && len(errs) == 0 {
			return ids.NoEntry, errcode.FromError(err)
		}
		return ids.NoEntry, fmt.Errorf("ledger: read LAC of %d: %w", l.ID, errors.Join(errs...))
	}
	return best, nil
}

func (c *Client) lacOn(ctx context.Context, b string, id ids.LedgerID, previous ids.EntryID, timeout time.Duration) (ids.EntryID, error) {
	bc, err := c.bookie(b)
	if err != nil {
		return ids.NoEntry, err
	}
	resp, err := bc.ReadLAC(ctx, &bookiepb.ReadLACRequest{
		LedgerId: uint64(id), PreviousLac: int64(previous), TimeoutMs: uint32(timeout / time.Millisecond),
	})
	if err != nil {
		err = errcode.FromError(err)
		if errcode.CodeOf(err) == errcode.LedgerNotFound {
			return ids.NoEntry, nil // a bookie that got no entry yet
		}
		return ids.NoEntry, err
	}
	return ids.EntryID(resp.Lac), nil
}
