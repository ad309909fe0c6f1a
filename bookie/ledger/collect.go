package ledger

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// The garbage collection of ledger copies, as BookKeeper's bookies run
// their GarbageCollectorThread against the ledgers' metadata. A bookie
// can hold copies that nothing names, reads or deletes any more, their
// journal segments never reclaimed: of ledgers deleted while it was lost
// past the delay (the deletion went on without it), of ledgers copied off
// it while it was lost or draining, once it is back, copies left by a
// re-replication that failed halfway or lost its race, and the entries a
// writer sent a bookie it then replaced by rewriting the fragment that
// started at LAC+1.
//
// A pass, every CollectInterval, lists the ledgers each registered bookie
// stores (ListLedgers; read-only and draining bookies too, as deletes go
// on there) and compares them with the audit's full read of the metadata.
// A copy is garbage when its ledger's metadata is gone (deleted), or when
// the ledger is over-replicated on the bookie: closed, not marked for
// deletion, and naming the bookie in no fragment. The copies a pass finds
// are read again from the metadata just before each is deleted, at most
// maxCollectionsPerRound a round.
//
// The auditor runs it, rather than each bookie as in BookKeeper, because
// it already reads every ledger's metadata, holds a client of every
// bookie, acts from one process at a time, and is what re-replicates:
// in the same goroutine, so that no copy a re-replication made is
// collected between its copy and the compare-and-swap that names it.
// Bookies need no metadata store for it (standalone's has none).
//
// Why a missing record means a deleted ledger: its metadata is stored
// before any add reaches a bookie (Client.Create stores it before the
// writer starts; an ensemble change sends to a new bookie only after the
// compare-and-swap that names it; recoveries and copies read it first),
// and ledger ids are never reused. The full read may predate a ledger
// created since, which is why each copy is read again, after the listing:
// NotFound then is final. An over-replicated copy may be the fresh copy
// of a re-replication not yet recorded (run by a second auditor while
// leadership changes hands, say): it is deleted only once the passes
// have seen it so for OverreplicatedGrace, as BookKeeper waits
// gcOverreplicatedLedgerWaitTime. Nor is one deleted while its ledger
// names a bookie that is not registered: the copies the metadata names
// are then not all there, and this one may be the only copy of some
// entries (a bookie restarted on its data directory under a new address
// holds copies of ledgers that name its old one: with E=Qw=Qa=1, or with
// every bookie of an ensemble moved, there is no other). It goes once a
// re-replication replaced the missing bookie. Open and in-recovery
// ledgers may still change ensemble, and marked ones are
// finishDeletion's: they are left.
// Any error leaves a copy where it is: a bookie that does not list is
// left out of the pass, a metadata read that fails ends the round, a
// delete that fails waits for the next pass.

// DefaultCollectInterval is AuditorConfig.CollectInterval's default.
const DefaultCollectInterval = 15 * time.Minute

// DefaultOverreplicatedGrace is AuditorConfig.OverreplicatedGrace's
// default, BookKeeper's gcOverreplicatedLedgerWaitTime.
const DefaultOverreplicatedGrace = 24 * time.Hour

// maxCollectionsPerRound bounds the copies a round reads again and maybe
// deletes; a variable so that a test can make it small.
var maxCollectionsPerRound = 64

// maxCollectQueue bounds the copies a pass queues; those past it wait for
// the next pass.
const maxCollectQueue = 1 << 16

// maxOverClocks bounds the over-replicated copies timed at once, so that
// the clocks' memory does not grow with every such copy on every bookie:
// a copy past it is first timed by a later pass, once timed ones are
// deleted, and so is kept longer, never deleted sooner. A variable so that
// a test can make it small.
var maxOverClocks = 1 << 16

// copyOn is one bookie's copy of one ledger.
type copyOn struct {
	bookie string
	ledger ids.LedgerID
}

// Reasons a copy is deleted, the label of strata_ledger_gc_deleted_copies_total.
const (
	reasonDeleted        = "deleted"
	reasonOverreplicated = "overreplicated"
)

// collectMetrics are the collection's series.
type collectMetrics struct {
	passes   prometheus.Counter
	deleted  *prometheus.CounterVec
	failures prometheus.Counter
	over     prometheus.Gauge
}

func newCollectMetrics() collectMetrics {
	return collectMetrics{
		passes: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_gc_passes_total",
			Help: "Passes of the garbage collection of ledger copies started (each lists every registered bookie's ledgers)."}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_ledger_gc_deleted_copies_total",
			Help: "Ledger copies the garbage collection deleted from a bookie, by reason: deleted (no metadata) or overreplicated (the ledger names the bookie no more)."},
			[]string{"reason"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_gc_failures_total",
			Help: "Bookies the garbage collection could not list, and copies it could not delete (tried again next pass)."}),
		over: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_ledger_gc_overreplicated_copies",
			Help: "Over-replicated ledger copies the garbage collection saw at its last pass, deleted once seen so for the grace period."}),
	}
}

func (m collectMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.passes, m.deleted, m.failures, m.over}
}

// collectPass counts what a pass of the collection did, for its log line.
type collectPass struct{ deleted, failures int }

// collectInterval is the configured interval, 0 when the collection is off.
func (a *Auditor) collectInterval() time.Duration {
	return orDefault(a.cfg.CollectInterval, DefaultCollectInterval)
}

// overGrace is the configured grace, 0 when over-replicated copies stay.
func (a *Auditor) overGrace() time.Duration {
	return orDefault(a.cfg.OverreplicatedGrace, DefaultOverreplicatedGrace)
}

// orDefault answers d, or def when d is zero, or 0 (off) when d is
// negative.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	default:
		return d
	}
}

// collectDue reports whether a pass should start now: the last one is
// done and began an interval ago.
func (a *Auditor) collectDue(now time.Time) bool {
	return a.collectInterval() > 0 && len(a.collect.queue) == 0 && !now.Before(a.collect.next)
}

// startCollection starts a pass, when one is due, over the ledgers that
// bookies store, compared with all, the metadata of every ledger as read
// by the audit: it queues the copies of ledgers all lacks and the
// over-replicated ones seen so for the grace period, and times the other
// over-replicated ones.
func (a *Auditor) startCollection(ctx context.Context, all []*metadata.Ledger, bookies []string, now time.Time) {
	if !a.collectDue(now) {
		return
	}
	a.collect.next = now.Add(a.collectInterval())
	a.collect.pass = collectPass{}
	a.gc.passes.Inc()
	byID := make(map[ids.LedgerID]*metadata.Ledger, len(all))
	for _, l := range all {
		byID[l.ID] = l
	}
	over := map[copyOn]time.Time{}
	listed := 0
	for _, b := range bookies {
		held, err := a.c.ledgersOn(ctx, b)
		if err != nil {
			a.gc.failures.Inc()
			a.collect.pass.failures++
			a.log.Warn("ledger gc: a bookie's ledgers could not be listed; it is left out of this pass", "bookie", b, "err", err)
			for k, since := range a.collect.overSince {
				if k.bookie == b {
					over[k] = since // its copies' clocks go on
				}
			}
			continue
		}
		listed += len(held)
		for _, id := range held {
			a.consider(copyOn{b, id}, byID[id], bookies, over, now)
		}
	}
	a.collect.overSince = over
	a.gc.over.Set(float64(len(over)))
	a.log.Info("ledger gc: pass started", "bookies", len(bookies), "copies", listed, "candidates", len(a.collect.queue), "overreplicated", len(over))
}

// consider queues copy k when the audit's read of its ledger's metadata,
// l (nil: none), makes it garbage: l is missing, or k is over-replicated
// and, by over (the pass's clocks, to which it is added), has been so for
// the grace period, and l names only bookies of registered.
func (a *Auditor) consider(k copyOn, l *metadata.Ledger, registered []string, over map[copyOn]time.Time, now time.Time) {
	if grace := a.overGrace(); l != nil {
		if grace == 0 || !overReplicated(l, k.bookie) {
			return
		}
		since, ok := a.collect.overSince[k]
		if !ok {
			if len(over) >= maxOverClocks {
				return
			}
			since = now
		}
		if over[k] = since; now.Sub(since) < grace || !namesOnly(l, registered) {
			return
		}
	}
	if len(a.collect.queue) < maxCollectQueue {
		a.collect.queue = append(a.collect.queue, k)
	}
}

// overReplicated reports whether bookie b's copy of l is one that nothing
// reads or writes any more: l is closed, not marked for deletion, and
// names b in no fragment.
func overReplicated(l *metadata.Ledger, b string) bool {
	return l.State == metadata.LedgerClosed && !l.Deleting && !names(l, b)
}

// namesOnly reports whether every bookie the fragments of l name is one
// of bookies.
func namesOnly(l *metadata.Ledger, bookies []string) bool {
	return !slices.ContainsFunc(l.Fragments, func(f metadata.Fragment) bool {
		return slices.ContainsFunc(f.Bookies, func(b string) bool { return !slices.Contains(bookies, b) })
	})
}

// names reports whether a fragment of l names bookie b.
func names(l *metadata.Ledger, b string) bool {
	return slices.ContainsFunc(l.Fragments, func(f metadata.Fragment) bool { return slices.Contains(f.Bookies, b) })
}

// collectSome reads again the next copies the pass under way queued, at
// most maxCollectionsPerRound, and deletes those still garbage. A bookie
// that fails a delete is left alone for the rest of the round.
func (a *Auditor) collectSome(ctx context.Context, now time.Time) {
	if len(a.collect.queue) == 0 {
		return
	}
	registered, err := a.registered(ctx)
	if err != nil {
		a.log.Debug("ledger gc: listing bookies; tried again next round", "err", err)
		return
	}
	down := map[string]bool{}
	for range min(len(a.collect.queue), maxCollectionsPerRound) {
		if ctx.Err() != nil {
			return
		}
		k := a.collect.queue[0]
		l, err := a.c.store.GetLedger(ctx, k.ledger)
		if err != nil && !errors.Is(err, metadata.ErrNotFound) {
			a.log.Debug("ledger gc: reading a ledger; tried again next round", "ledger", k.ledger, "err", err)
			return
		}
		a.collect.queue = a.collect.queue[1:]
		why := a.garbage(k, l, registered, now)
		if why == "" || down[k.bookie] {
			continue
		}
		if err := a.c.deleteOn(ctx, k.bookie, k.ledger); err != nil {
			down[k.bookie] = true
			a.gc.failures.Inc()
			a.collect.pass.failures++
			a.log.Warn("ledger gc: deleting a copy failed; tried again next pass", "ledger", k.ledger, "bookie", k.bookie, "err", err)
			continue
		}
		delete(a.collect.overSince, k)
		a.gc.deleted.WithLabelValues(why).Inc()
		a.collect.pass.deleted++
		a.log.Info("ledger gc: deleted a copy nothing names", "ledger", k.ledger, "bookie", k.bookie, "reason", why)
	}
	if len(a.collect.queue) == 0 {
		p := a.collect.pass
		a.log.Info("ledger gc: pass finished", "deleted", p.deleted, "failures", p.failures)
	}
}

// garbage answers why copy k is to be deleted, given its ledger's
// metadata l as read just now (nil: there is none) and the bookies
// registered now, or "" to keep it. An over-replicated copy first seen
// now starts its grace period.
func (a *Auditor) garbage(k copyOn, l *metadata.Ledger, registered []string, now time.Time) string {
	if l == nil {
		return reasonDeleted
	}
	grace := a.overGrace()
	if grace == 0 || !overReplicated(l, k.bookie) {
		delete(a.collect.overSince, k)
		return ""
	}
	since, ok := a.collect.overSince[k]
	if !ok {
		if len(a.collect.overSince) < maxOverClocks {
			a.collect.overSince[k] = now
		}
		return ""
	}
	if now.Sub(since) < grace || !namesOnly(l, registered) {
		return ""
	}
	return reasonOverreplicated
}

// ledgersOn answers the ledgers bookie b stores, ascending, asking page
// after page.
func (c *Client) ledgersOn(ctx context.Context, b string) ([]ids.LedgerID, error) {
	bc, err := c.bookie(b)
	if err != nil {
		return nil, err
	}
	var out []ids.LedgerID
	for first := uint64(0); ; {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		resp, err := bc.ListLedgers(rctx, &bookiepb.ListLedgersRequest{FirstLedger: first})
		cancel()
		if err != nil {
			return nil, errcode.FromError(err)
		}
		for _, id := range resp.GetLedgerIds() {
			if id < first || (len(out) > 0 && ids.LedgerID(id) <= out[len(out)-1]) {
				return nil, errcode.New(errcode.Internal, "ledger: bookie %s listed ledger %d out of order, asked from %d", b, id, first)
			}
			out = append(out, ids.LedgerID(id))
		}
		next := resp.GetNextLedger()
		if next == 0 {
			return out, nil
		}
		if next <= first {
			return nil, errcode.New(errcode.Internal, "ledger: bookie %s listed its ledgers from %d up to %d", b, first, next)
		}
		first = next
	}
}
