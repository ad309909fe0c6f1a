package serving

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

type topicState int

const (
	topicLoading topicState = iota
	topicServing
	// topicDraining is a graceful unload waiting for its appends in flight
	// (unload.go): nothing new is taken, but completions still turn into
	// receipts.
	topicDraining
	topicDropped
)

// topic is one topic this node owns: its managed ledger, its open ledger
// writer, its producers and subscriptions.
//
// LOCKORDER: Node.mu before topic.mu; topic.mu before producer/consumer
// internals (which use channels and atomics only).
type topic struct {
	n    *Node
	name string
	ns   string
	// policy is the namespace policy, re-read by every trim pass so that a
	// changed policy reaches a loaded topic; read it with pol().
	policy atomic.Pointer[metadata.NamespacePolicy]
	log    *slog.Logger
	// publishPace keeps the topic under its publish rate (publishrate.go).
	publishPace struct {
		sync.Mutex
		p pacer
		// the rates p paces to: a change starts it afresh
		msgRate, byteRate int64
	}

	owned   metadata.Ownership // our ownership record, set by load
	ready   chan struct{}      // closed once load finished
	loadErr error              // set before ready closes
	created time.Time          // when this node started loading it
	// gone is closed once a dropped topic is released and forgotten, so
	// that the node may load it again.
	gone     chan struct{}
	goneOnce sync.Once

	ctx    context.Context // canceled when the topic is dropped
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// completions of ledger appends, drained by run; never held with mu.
	compMu struct {
		sync.Mutex
		q []completion
	}
	compSignal chan struct{}
	// compacting is set while a compaction started by the threshold runs.
	compacting atomic.Bool
	// measuringAges is set while updateBacklogAges reads (backlogage.go).
	measuringAges atomic.Bool

	// earlierMu serialises the reads of earlier owners' entries for the
	// receipts of resends (receipts.go). LOCKORDER: earlierMu before mu.
	earlierMu sync.Mutex

	// mlMu serialises the writers of the managed ledger (roll, trim), held
	// across their metadata I/O. LOCKORDER: mlMu before mu.
	mlMu sync.Mutex
	// cursorMu serialises the writes of the topic's stored cursors (the
	// periodic flush, seeks and resets, deletions), held across their
	// metadata I/O, so that no write of a cursor races another with the
	// same version, and a flush never stores a state older than a move
	// already stored. LOCKORDER: cursorMu before mu.
	cursorMu sync.Mutex

	// tier is the offload state; tier.mu serialises offload and trim.
	// LOCKORDER: tier.mu before mlMu.
	tier topicTier

	mu struct {
		sync.Mutex
		state topicState
		ml    *metadata.ManagedLedger // the last stored version
		w     Writer
		cur   ledgerProgress // of w
		// inflight counts appends on w not yet completed.
		inflight    int
		rolling     bool
		overQuota   bool // a subscription is over the backlog quota (quota.go)
		terminating int  // terminates waiting for the batches in flight: no more batches meanwhile (terminate.go)
		rollRunning bool
		queued      []*pendingBatch // accepted while rolling
		lastPub     int64
		lastPos     ids.Position // last durable entry ({first ledger, -1} when none)
		dedup       map[string]*dedupState
		prods       map[string]*producer
		exclusive   string // the name of the exclusive producer connected, if any
		// waiters are the producers waiting for the topic to themselves
		// (ACCESS_WAIT_FOR_EXCLUSIVE), in order.
		waiters []*exclusiveWaiter
		subs    map[string]*subscription
		cache   *entryCache
		msgsIn  uint64
		bytesIn uint64
		// drain is the graceful unload, once one began (unload.go).
		drain drainState
		// earlier is how far back the earlier owners' entries were read
		// for the receipts of resends (receipts.go).
		earlier earlierReceipts
	}
}

// ledgerProgress is what the writer of the current ledger has made durable.
type ledgerProgress struct {
	entries      int64
	bytes        uint64
	created      time.Time
	firstPub     int64
	lastPub      int64
	lastPosition ids.Position
}

// annotate sets the closing ledger's topic, size and publish-time range.
func (c ledgerProgress) annotate(topic string) func(*metadata.Ledger) {
	return func(l *metadata.Ledger) {
		l.Topic, l.Bytes, l.FirstPublishTime, l.LastPublishTime = topic, c.bytes, c.firstPub, c.lastPub
	}
}

type completion struct {
	w     Writer
	b     *pendingBatch
	id    ids.EntryID
	err   error
	start time.Time
}

func newTopic(n *Node, name, ns string) *topic {
	t := &topic{n: n, name: name, ns: ns, ready: make(chan struct{}), compSignal: make(chan struct{}, 1),
		created: time.Now(), gone: make(chan struct{}),
		log: n.log.With("topic", name)}
	t.ctx, t.cancel = context.WithCancel(n.ctx)
	t.mu.dedup = make(map[string]*dedupState)
	t.mu.prods = make(map[string]*producer)
	t.mu.subs = make(map[string]*subscription)
	t.mu.cache = newEntryCache(n.cfg.CacheBytes)
	return t
}

// waitReady waits for the load to finish; ctx bounds the wait.
func (t *topic) waitReady(ctx context.Context) error {
	select {
	case <-t.ready:
	case <-ctx.Done():
		return errcode.New(errcode.ServiceNotReady, "topic %s is still loading", t.name)
	}
	if t.loadErr != nil {
		return t.loadErr
	}
	return t.servingErr()
}

// servingErr is nil while the topic is served here, else a retriable error.
func (t *topic) servingErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.servingErrLocked()
}

func (t *topic) servingErrLocked() error {
	if t.mu.state != topicServing {
		return errcode.New(errcode.TopicFenced, "topic %s is no longer served by this node", t.name)
	}
	return nil
}

// run is the topic's own goroutine: it applies append completions in entry
// order and runs the periodic work (roll on age, cursor flush, trim).
func (t *topic) run() {
	defer t.wg.Done()
	cfg := t.n.cfg
	roll := time.NewTicker(clampDur(cfg.MaxLedgerAge/10, 100*time.Millisecond, time.Minute))
	flush := time.NewTicker(cfg.CursorFlushInterval)
	trim := time.NewTicker(cfg.TrimInterval)
	quota := time.NewTicker(cfg.BacklogQuotaCheckInterval)
	defer roll.Stop()
	defer flush.Stop()
	defer trim.Stop()
	defer quota.Stop()
	var offload <-chan time.Time
	if t.n.tier != nil {
		tick := time.NewTicker(t.n.tier.cfg.Interval)
		defer tick.Stop()
		offload = tick.C
	}
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.compSignal:
			t.applyCompletions()
		case <-roll.C:
			t.maybeRollOnAge()
		case <-flush.C:
			t.flushCursors(t.ctx)
		case <-trim.C:
			t.trim(t.ctx)
		case <-quota.C:
			t.checkBacklogQuota()
			t.updateBacklogAges()
		case <-offload:
			t.maybeOffload()
		}
	}
}

func clampDur(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

// go runs f on a goroutine owned by the topic (waited for by drop).
func (t *topic) goOwned(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// drop stops serving the topic: producers and consumers get err (a
// retriable code, so clients look up again) and the ownership key is
// released when we still hold it. A graceful drop of a served topic first
// answers the batches in flight and records the ledger closed (unload.go);
// any other drop abandons the writer at once. Safe to call more than once
// and from any goroutine but run; a drop that is not graceful while a
// graceful one drains ends that drain.
func (t *topic) drop(reason string, err error, graceful bool) {
	t.mu.Lock()
	switch t.mu.state {
	case topicDropped:
		t.mu.Unlock()
		return
	case topicDraining:
		if !graceful { // a failure, a lost session, a kill: no use waiting
			t.abortDrainLocked(reason, err)
		}
		t.mu.Unlock()
		return
	}
	wasServing := t.mu.state == topicServing
	drain := graceful && wasServing
	if drain {
		t.startDrainLocked()
	} else {
		t.mu.state = topicDropped
	}
	prods, subs := t.mu.prods, t.mu.subs
	for _, s := range subs {
		s.stopLocked() // a delay timer would keep the dropped topic in memory until due
	}
	var cons []*consumer
	for _, s := range subs {
		cons = append(cons, s.consumers...)
	}
	names := make([]string, 0, len(subs))
	for name := range subs {
		names = append(names, name)
	}
	ps := make([]*producer, 0, len(prods))
	for _, p := range prods {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	t.log.Info("dropping topic", "reason", reason, "err", err)
	t.n.m.drops.WithLabelValues(reason).Inc()
	if !drain {
		for _, p := range ps {
			p.fail(err)
		}
		ps = nil
	}
	for _, c := range cons {
		c.fail(err)
	}
	t.n.wg.Add(1)
	go t.finishDrop(reason, drain, names, ps, err)
}

// finishDrop runs the slow part of drop off the caller's goroutine; prods
// are the producers a graceful drop ends last.
func (t *topic) finishDrop(reason string, drain bool, subs []string, prods []*producer, err error) {
	defer t.n.wg.Done()
	if drain {
		reason = t.unload(reason)
	}
	t.cancel()
	t.wg.Wait()
	for _, name := range subs {
		t.n.m.forgetSubscription(t.name, name)
	}
	t.n.m.forgetTopic(t.name)
	if reason != reasonSession && reason != reasonKilled {
		t.n.release(t.owned)
	}
	// Forgotten only after the release, so that a new load of the topic
	// here cannot take the key that the release then deletes.
	t.n.forget(t)
	// Their streams end once every batch written is answered and the
	// topic is free: their next lookup finds nobody owning it, instead
	// of this node, which would send them back and forth.
	for _, p := range prods {
		p.fail(err)
	}
	t.markGone()
}

// markGone closes gone (once: a load that fails after a drop ends here too).
func (t *topic) markGone() { t.goneOnce.Do(func() { close(t.gone) }) }

// Drop reasons (the label of strata_topic_drops_total).
const (
	reasonSession = "session-lost"
	reasonFenced  = "fenced"
	reasonWrite   = "write-error"
	reasonMeta    = "metadata-conflict"
	reasonUnload  = "unload"
	reasonAdmin   = "admin-unload"
	reasonMove    = "rebalance"
	reasonDelete  = "deleted"
	reasonKilled  = "killed"
)

// pol returns the topic's namespace policy as last read.
func (t *topic) pol() metadata.NamespacePolicy {
	if p := t.policy.Load(); p != nil {
		return *p
	}
	return metadata.DefaultNamespacePolicy()
}
