package ledger

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// LedgerLister lists every ledger's metadata (metadata.Store does).
type LedgerLister interface {
	ListLedgers(ctx context.Context) ([]*metadata.Ledger, error)
}

// AuditorConfig configures an Auditor.
type AuditorConfig struct {
	// Delay is how long a bookie must have been missing from the registry
	// before its ledgers are re-replicated (BookKeeper's
	// lostBookieRecoveryDelay), so that a bookie restarting is not copied
	// away from. Zero or negative: lost bookies are left alone (draining
	// ones are still copied off).
	Delay time.Duration
	// Draining, when set, lists the bookies being decommissioned: their
	// closed ledgers are copied off them at once, while they still serve
	// reads. The Client must then not count them among the live bookies
	// (metadata.WritableBookies), so that no copy goes to them.
	Draining func(ctx context.Context) ([]string, error)
	// Registered, when set, lists every registered bookie: the ones that
	// are not lost. Without it the Client's bookies are taken, but a
	// Client over metadata.WritableBookies leaves out read-only bookies
	// (a full disk), which are not lost: their ledgers must stay where
	// they are, or the copies left on them would never be deleted.
	Registered Bookies
	// Unowned, when set, reports whether nobody owns topic now, so that no
	// writer may add to its ledgers: an open ledger of such a topic that
	// names a bookie due for re-replication is recovered (fenced and
	// closed) by the auditor, as a new owner would, and then copied. Left
	// open, it kept the lost bookie named, and its copies short, until
	// something looked the topic up.
	Unowned func(ctx context.Context, topic string) (bool, error)
	// RecoverTimeout bounds the recovery of one such ledger (30 s when
	// zero): one that cannot finish (Qa = Qw and a second bookie of its
	// write set down) would retry its fences for ever, and the auditor's
	// other work would wait behind it. The next round tries again.
	RecoverTimeout time.Duration
	// CheckInterval is how often a pass of the ledger check starts: every
	// closed ledger's copies are compared with what the bookies of its
	// write sets hold, and the entries one misses are copied back to it
	// (check.go; BookKeeper's auditorPeriodicCheckInterval). A pass checks
	// at most 64 ledgers a round and starts only once the previous one
	// finished; a process that becomes the auditor starts one at its first
	// round. Zero: DefaultCheckInterval (a day); negative: never.
	CheckInterval time.Duration
	// CollectInterval is how often a pass of the garbage collection of
	// ledger copies starts: the ledgers each registered bookie stores are
	// compared with their metadata, and the copies nothing names any more
	// are deleted (collect.go; BookKeeper's bookie garbage collection). A
	// pass deletes at most 64 copies a round and starts only once the
	// previous one finished. Zero: DefaultCollectInterval (15 min);
	// negative: never.
	CollectInterval time.Duration
	// OverreplicatedGrace is how long the collection's passes must have
	// seen a bookie's copy of a closed ledger that names the bookie in no
	// fragment before they delete it (BookKeeper's
	// gcOverreplicatedLedgerWaitTime): a copy being made for a
	// re-replication is so until the compare-and-swap that names it.
	// A copy of a ledger that names a bookie not registered stays: it
	// may be the only one left. Zero: DefaultOverreplicatedGrace (a
	// day); negative: such copies are never deleted (those of deleted
	// ledgers still are).
	OverreplicatedGrace time.Duration
	// Leader reports whether this process audits now; every process may
	// run an Auditor, one at a time should act (two acting at once only
	// waste copies: the metadata CAS lets one win).
	Leader func(ctx context.Context) bool
	// Registerer, when set, receives the auditor's metrics.
	Registerer prometheus.Registerer
}

// fullScanEvery bounds how long the auditor goes without reading every
// ledger's metadata when nothing seems to need it.
const fullScanEvery = 10 * time.Minute

// While ledgers marked for deletion are left (a bookie of theirs down),
// the auditor reads every ledger again at most every deletionRetryEvery,
// and tries at most maxDeletionsPerRound of them in a round.
const deletionRetryEvery = time.Minute

// maxDeletionsPerRound is a variable so that a test can make it small.
var maxDeletionsPerRound = 16

// defaultRecoverTimeout is AuditorConfig.RecoverTimeout's default.
const defaultRecoverTimeout = 30 * time.Second

// Auditor finds the closed ledgers that a lost bookie held and
// re-replicates them (Client.Rereplicate), as BookKeeper's AutoRecovery,
// finishes the deletions that a bookie being down left half done
// (ledgers marked Deleting), and checks every closed ledger's copies
// periodically, copying back to a live bookie the entries of its write
// sets it misses (check.go), and deletes from the bookies the copies of
// ledgers that nothing names any more (collect.go).
// Each round lists the live bookies and every ledger; a bookie that some
// ledger names and that is not registered is lost from the first round
// that sees it, and after Delay each closed ledger naming it is copied off
// it. Ledgers whose offload completed are left alone: the object store
// holds their verified copy. Open ledgers are their writers' (an ensemble
// change replaces a failed bookie), except those of a topic nobody owns
// (AuditorConfig.Unowned), which the auditor recovers and then copies.
type Auditor struct {
	c         *Client
	ledgers   LedgerLister
	cfg       AuditorConfig
	log       *slog.Logger
	lostSince map[string]time.Time
	// lastScan is when every ledger was last read, and scanLive the live
	// bookies then.
	lastScan time.Time
	scanLive []string
	// deleting is how many ledgers marked for deletion the last scan left
	// (while any, rounds scan again every deletionRetryEvery), and
	// lastDeletion the last one tried.
	deleting     int
	lastDeletion ids.LedgerID
	// check is the ledger check's state: the ledgers the pass under way
	// has still to check, ascending, when the next pass is due, and what
	// this pass found so far.
	check struct {
		queue []ids.LedgerID
		next  time.Time
		pass  checkPass
	}
	// collect is the garbage collection's state: the copies the pass
	// under way has still to read again, when the next pass is due, the
	// over-replicated copies by when a pass first saw them so, and what
	// this pass did so far.
	collect struct {
		queue     []copyOn
		next      time.Time
		overSince map[copyOn]time.Time
		pass      collectPass
	}
	gc collectMetrics

	lost           prometheus.Gauge
	rereplicated   prometheus.Counter
	failures       prometheus.Counter
	checkedLedgers prometheus.Counter
	missingEntries prometheus.Counter
	copiedEntries  prometheus.Counter
	checkFailures  prometheus.Counter
}

// checkPass counts what a pass of the ledger check did, for its log line.
type checkPass struct{ ledgers, missing, copied, failures int }

// NewAuditor builds an auditor over c.
func NewAuditor(c *Client, ledgers LedgerLister, cfg AuditorConfig) *Auditor {
	a := &Auditor{c: c, ledgers: ledgers, cfg: cfg, log: c.log.With("component", "auditor"), lostSince: map[string]time.Time{},
		lost: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_lost_bookies",
			Help: "Bookies that ledgers name and that are not registered (as seen by the auditing node)."}),
		rereplicated: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_rereplicated_ledgers_total",
			Help: "Closed ledgers copied off a lost bookie."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_rereplication_failures_total",
			Help: "Re-replications of a ledger that failed (retried the next round)."}),
		checkedLedgers: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_check_ledgers_total",
			Help: "Closed ledgers whose copies the ledger check compared with what their bookies hold."}),
		missingEntries: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_check_missing_entries_total",
			Help: "Copies of entries the ledger check found missing on a live bookie of their write set."}),
		copiedEntries: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_check_copied_entries_total",
			Help: "Missing copies of entries the ledger check wrote back to their bookie."}),
		checkFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_ledger_check_failures_total",
			Help: "Checks of a fragment on one bookie that failed to list its entries or to copy back the missing ones (tried again next pass)."}),
		gc: newCollectMetrics(),
	}
	a.collect.overSince = map[copyOn]time.Time{}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(a.lost, a.rereplicated, a.failures, a.checkedLedgers, a.missingEntries, a.copiedEntries, a.checkFailures)
		cfg.Registerer.MustRegister(a.gc.collectors()...)
	}
	return a
}

// recoverAbandoned recovers open ledger l when it names a bookie due for
// re-replication and its topic has no owner (AuditorConfig.Unowned), and
// answers it closed. A ledger without a topic, or whose topic is owned, is
// its writer's.
func (a *Auditor) recoverAbandoned(ctx context.Context, l *metadata.Ledger, candidates []string, due func(string) bool) (*metadata.Ledger, bool) {
	if a.cfg.Unowned == nil || l.Topic == "" || !slices.ContainsFunc(candidates, func(b string) bool { return due(b) && names(l, b) }) {
		return nil, false
	}
	if unowned, err := a.cfg.Unowned(ctx, l.Topic); err != nil || !unowned {
		return nil, false
	}
	// A record listed at the start of a long round may have moved on.
	cur, err := a.c.store.GetLedger(ctx, l.ID)
	if err != nil || cur.Deleting || cur.State == metadata.LedgerClosed {
		return cur, err == nil && !cur.Deleting
	}
	limit := a.cfg.RecoverTimeout
	if limit <= 0 {
		limit = defaultRecoverTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	rl, err := a.c.Recover(rctx, l.ID, nil)
	if err != nil {
		a.failures.Inc()
		a.log.Warn("audit: recovering an open ledger of a topic nobody owns", "ledger", l.ID, "topic", l.Topic, "err", err)
		return nil, false
	}
	a.log.Info("audit: recovered an open ledger of a topic nobody owns, to copy it off a lost bookie", "ledger", l.ID, "topic", l.Topic)
	return rl, true
}

// finishDeletion deletes again a ledger whose deletion a bookie being down
// left half done, without the bookies lost past the delay (gone): their
// copies went with them. A ledger still not deleted counts in deleting.
func (a *Auditor) finishDeletion(ctx context.Context, l *metadata.Ledger, gone func(string) bool) {
	if err := a.c.deleteLedger(ctx, l, gone); err != nil {
		a.deleting++
		a.log.Debug("audit: a ledger marked for deletion is still not deleted", "ledger", l.ID, "err", err)
		return
	}
	a.log.Info("audit: finished deleting a ledger", "ledger", l.ID, "topic", l.Topic)
}

// Run audits every interval until ctx ends.
func (a *Auditor) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.Round(ctx, time.Now())
	}
}

// Round runs one audit at now and answers how many ledgers it
// re-replicated.
func (a *Auditor) Round(ctx context.Context, now time.Time) int {
	if a.cfg.Leader != nil && !a.cfg.Leader(ctx) {
		clear(a.lostSince) // a later leadership starts its clocks afresh
		a.lastScan = time.Time{}
		a.check.queue, a.check.next = nil, time.Time{}
		a.collect.queue, a.collect.next = nil, time.Time{}
		clear(a.collect.overSince)
		return 0
	}
	n := a.audit(ctx, now)
	a.checkSome(ctx)
	a.collectSome(ctx, now)
	return n
}

// audit is a round's work but the ledger check's and the garbage
// collection's: it re-replicates the ledgers of lost and draining
// bookies, finishes deletions, and starts a pass of the check or of the
// collection when one is due.
func (a *Auditor) audit(ctx context.Context, now time.Time) int {
	live, err := a.registered(ctx)
	if err != nil {
		a.log.Debug("audit: listing bookies", "err", err)
		return 0
	}
	var draining []string
	if a.cfg.Draining != nil {
		if draining, err = a.cfg.Draining(ctx); err != nil {
			a.log.Debug("audit: listing draining bookies", "err", err)
			return 0
		}
	}
	// Reading every ledger's metadata is the expensive part: skip it while
	// nothing can need a copy (no bookie draining or timed as lost, every
	// bookie live at the last scan still live: new ledgers name only live
	// ones, no pass of the ledger check or of the collection due), up to
	// fullScanEvery.
	if len(draining) == 0 && len(a.lostSince) == 0 && (a.deleting == 0 || now.Sub(a.lastScan) < deletionRetryEvery) &&
		!a.lastScan.IsZero() && now.Sub(a.lastScan) < fullScanEvery && !a.checkDue(now) && !a.collectDue(now) &&
		!slices.ContainsFunc(a.scanLive, func(b string) bool { return !slices.Contains(live, b) }) {
		return 0
	}
	all, err := a.ledgers.ListLedgers(ctx)
	if err != nil {
		a.log.Debug("audit: listing ledgers", "err", err)
		return 0
	}
	a.lastScan, a.scanLive = now, live
	a.startCheck(all, now)
	a.startCollection(ctx, all, live, now)
	named := map[string]bool{}
	for _, l := range all {
		for _, f := range l.Fragments {
			for _, b := range f.Bookies {
				if !slices.Contains(live, b) && !slices.Contains(draining, b) {
					named[b] = true
				}
			}
		}
	}
	for b := range a.lostSince {
		if !named[b] {
			delete(a.lostSince, b) // back, or named by no ledger any more
		}
	}
	for b := range named {
		if a.cfg.Delay <= 0 {
			break
		}
		if _, ok := a.lostSince[b]; !ok {
			a.lostSince[b] = now
			a.log.Warn("a bookie that ledgers name is not registered; its ledgers are re-replicated if it stays away",
				"bookie", b, "after", a.cfg.Delay)
		}
	}
	a.lost.Set(float64(len(a.lostSince)))
	// Draining bookies are due at once; lost ones after the delay.
	due := func(b string) bool {
		if slices.Contains(draining, b) {
			return true
		}
		since, ok := a.lostSince[b]
		return ok && now.Sub(since) >= a.cfg.Delay
	}
	candidates := append(slices.Collect(maps.Keys(a.lostSince)), draining...)
	done := 0
	var firstErr error
	failed := 0
	var marked []*metadata.Ledger
	for _, l := range all {
		if l.Deleting {
			marked = append(marked, l)
			continue
		}
		if l.State != metadata.LedgerClosed {
			rl, ok := a.recoverAbandoned(ctx, l, candidates, due)
			if !ok {
				continue
			}
			l = rl
		}
		if l.Offload != nil && l.Offload.State != metadata.OffloadStarted {
			continue
		}
		for _, b := range candidates {
			if !due(b) || !names(l, b) {
				continue
			}
			if _, err := a.c.Rereplicate(ctx, l.ID, b); err != nil {
				a.failures.Inc()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			a.rereplicated.Inc()
			done++
		}
	}
	if failed > 0 {
		a.log.Warn("audit: re-replications failed; retried next round", "failed", failed, "first", firstErr)
	}
	a.finishDeletions(ctx, marked, func(b string) bool { return !slices.Contains(draining, b) && due(b) })
	return done
}

// registered answers the ids of the bookies registered now, the ones
// that are not lost (AuditorConfig.Registered).
func (a *Auditor) registered(ctx context.Context) ([]string, error) {
	if a.cfg.Registered != nil {
		return bookieIDs(ctx, a.cfg.Registered)
	}
	return bookieIDs(ctx, a.c.bookies)
}

// finishDeletions tries at most maxDeletionsPerRound of the ledgers marked
// for deletion, each try at a hung bookie costing a request timeout,
// starting after the last one tried in the previous round, so that
// ledgers that cannot finish (a bookie down for good, lost bookies left
// alone) do not keep the others waiting; it counts those left in deleting.
func (a *Auditor) finishDeletions(ctx context.Context, marked []*metadata.Ledger, gone func(string) bool) {
	a.deleting = 0
	start, _ := slices.BinarySearchFunc(marked, a.lastDeletion+1, func(l *metadata.Ledger, id ids.LedgerID) int { return cmp.Compare(l.ID, id) })
	for i := range marked {
		l := marked[(start+i)%len(marked)]
		if i >= maxDeletionsPerRound {
			a.deleting++
			continue
		}
		a.lastDeletion = l.ID
		a.finishDeletion(ctx, l, gone)
	}
}
