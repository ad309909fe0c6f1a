package ledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Recover closes ledger id after its writer went away: it fences the ledger
// (so the old writer can no longer get an add acknowledged), recovers the
// entries past the last confirmed one, and CASes the ledger closed at the
// last entry it found, after annotate (may be nil) set the caller's fields.
// A ledger already closed is returned as it is (annotate is not applied).
// Concurrent recoveries of the same ledger converge on one close. Bytes is
// not known to a recovery: it keeps the stored value unless annotate sets
// it. Recover retries bookies and metadata until ctx ends; then it returns
// the context's error and the ledger stays in recovery (a later Recover
// resumes).
func (c *Client) Recover(ctx context.Context, id ids.LedgerID, annotate func(*metadata.Ledger)) (*metadata.Ledger, error) {
	if err := c.cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &recoverLoop{c: c, id: id, ctx: ctx, annotate: annotate, events: make(chan func(), 256), started: time.Now()}
	defer r.wg.Wait()
	defer cancel()
	r.sm = newRecoveryState(id, recoveryTiming{
		RequestTimeout: c.cfg.RequestTimeout, RetryInterval: c.cfg.RetryInterval, Window: c.cfg.RecoveryWindow,
	})
	r.streams = &streamSet{
		c: c, ledger: id, ctx: ctx, wg: &r.wg, queueCap: 4 * c.cfg.RecoveryWindow, post: r.post,
		onResult: r.sm.addResult, onBroken: r.sm.streamBroken, streams: map[string]*addStream{},
	}
	defer r.streams.closeAll()
	return r.run()
}

// recoverLoop drives one recoveryState over gRPC and the metadata store.
type recoverLoop struct {
	c        *Client
	id       ids.LedgerID
	ctx      context.Context
	annotate func(*metadata.Ledger)
	events   chan func()
	started  time.Time
	wg       sync.WaitGroup
	sm       *recoveryState
	streams  *streamSet
}

func (r *recoverLoop) run() (*metadata.Ledger, error) {
	ticker := time.NewTicker(r.c.cfg.TickInterval)
	defer ticker.Stop()
	r.sm.start(0)
	for {
		if res := r.sm.ready(); r.perform(res) {
			if res.Err != nil {
				return nil, fmt.Errorf("ledger: recover %d: %w", r.id, res.Err)
			}
			r.c.log.Info("ledger recovered", "ledger", r.id, "last_entry", res.Result.LastEntry)
			return res.Result, nil
		}
		select {
		case f := <-r.events:
			f()
		case <-ticker.C:
			r.sm.tick(time.Since(r.started))
		case <-r.ctx.Done():
			return nil, fmt.Errorf("ledger: recover %d: %w", r.id, errcode.FromError(r.ctx.Err()))
		}
	}
}

// perform starts the requests of res; it reports whether recovery is done.
func (r *recoverLoop) perform(res recoveryReady) bool {
	for _, b := range res.Fences {
		r.fence(b)
	}
	for _, run := range readRuns(res.Reads) {
		r.readRun(run)
	}
	for _, op := range res.Adds {
		r.streams.send(op) // a full queue just drops: the add times out and is retried
	}
	if res.Meta != nil {
		r.meta(*res.Meta)
	}
	return res.Done
}

func (r *recoverLoop) post(f func()) {
	select {
	case r.events <- f:
	case <-r.ctx.Done():
	}
}

// goRPC runs f with the request timeout in a goroutine of the loop.
func (r *recoverLoop) goRPC(f func(ctx context.Context)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, r.c.cfg.RequestTimeout)
		defer cancel()
		f(ctx)
	}()
}

func (r *recoverLoop) fence(b string) {
	r.goRPC(func(ctx context.Context) {
		lac, err := r.c.fenceOn(ctx, b, r.id)
		r.post(func() { r.sm.fenceResult(b, lac, err) })
	})
}

// readRange is a run of consecutive entries to read from one bookie.
type readRange struct {
	bookie      string
	first, last ids.EntryID
}

// readRuns coalesces the machine's single-entry reads into runs of
// consecutive entries per bookie, so that one Read call serves a run.
func readRuns(ops []readOp) []readRange {
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b readOp) int {
		if c := strings.Compare(a.Bookie, b.Bookie); c != 0 {
			return c
		}
		return cmp.Compare(a.Entry, b.Entry)
	})
	var runs []readRange
	for _, op := range sorted {
		if n := len(runs); n > 0 && runs[n-1].bookie == op.Bookie && runs[n-1].last+1 == op.Entry {
			runs[n-1].last = op.Entry
			continue
		}
		runs = append(runs, readRange{op.Bookie, op.Entry, op.Entry})
	}
	return runs
}

// errNotRead answers the entries of a run after the first one the bookie
// did not send: unknown, asked again later.
var errNotRead = errcode.New(errcode.Unavailable, "ledger: entry not read in this run")

func (r *recoverLoop) readRun(run readRange) {
	r.goRPC(func(ctx context.Context) {
		got, err := r.c.readRange(ctx, run.bookie, r.id, run.first, run.last)
		r.post(func() {
			next := run.first
			for _, en := range got {
				r.sm.readResult(run.bookie, en.ID, en.Payload, nil)
				next = en.ID + 1
			}
			if next <= run.last && err != nil {
				r.sm.readResult(run.bookie, next, nil, err)
				next++
			}
			for ; next <= run.last; next++ {
				r.sm.readResult(run.bookie, next, nil, errNotRead)
			}
		})
	})
}

func (r *recoverLoop) meta(op metaOp) {
	var put *metadata.Ledger
	if op.Put != nil {
		put = cloneLedger(op.Put)
		if op.Close && r.annotate != nil {
			annotateKeeping(put, r.annotate)
		}
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		l, err := r.c.metaOp(r.id, put)
		r.post(func() { r.sm.metaResult(l, err) })
	}()
}

// fenceOn fences ledger id on bookie b and returns the bookie's LAC.
func (c *Client) fenceOn(ctx context.Context, b string, id ids.LedgerID) (ids.EntryID, error) {
	bc, err := c.bookie(b)
	if err != nil {
		return ids.NoEntry, err
	}
	resp, err := bc.Fence(ctx, &bookiepb.FenceRequest{LedgerId: uint64(id)})
	if err != nil {
		return ids.NoEntry, errcode.FromError(err)
	}
	return ids.EntryID(resp.Lac), nil
}
