package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

// A backlog run (Workload.BacklogBytes, the OpenMessaging Benchmark's
// consumerBacklogSizeGB) asks whether consumers that fell behind can catch
// up while producers go on. Its subscriptions exist before the first send,
// so they keep everything; the consumers do not receive while the
// producers build the backlog; then they drain it while the producers keep
// to their rate, and the load ends once the consumers have caught up or
// the duration has passed. The backlog is what the verifier counts as
// missing: acknowledged messages not yet received, once per subscription
// that lacks them.

// Phase is the part of a backlog run an interval ended in.
type Phase string

// Phases of a backlog run, in order.
const (
	// PhaseBuild: producers publish, consumers wait.
	PhaseBuild Phase = "build"
	// PhaseDrain: consumers receive while producers go on.
	PhaseDrain Phase = "drain"
	// PhaseEnd: the load has ended (the consumers caught up, or the
	// duration passed); the producers flush and the consumers receive
	// what is left.
	PhaseEnd Phase = "end"
)

// MaxBacklogBytes bounds Workload.BacklogBytes (1 TiB): the verifier
// keeps a bit per message sent and per subscription.
const MaxBacklogBytes = 1 << 40

// backlogPoll is how often a backlog run looks at the backlog; the
// phases' times are this precise.
const backlogPoll = 10 * time.Millisecond

// BacklogGoal is what a backlog run builds and drains to, in messages
// counted once per subscription that has yet to receive them.
type BacklogGoal struct {
	// TargetMsgs ends the build: BacklogBytes in whole messages, rounded up.
	TargetMsgs uint64
	// CaughtUpMsgs ends the drain: what the producers add to the backlog
	// in a second, or a tenth of the target if that is less (so that a
	// small backlog is drained, not just dented), and at least 1.
	CaughtUpMsgs uint64
}

// BacklogGoal returns the goal of w's backlog run (zero without one).
func (w Workload) BacklogGoal() BacklogGoal {
	if w.BacklogBytes <= 0 || w.MessageSize <= 0 {
		return BacklogGoal{}
	}
	target := uint64((w.BacklogBytes + int64(w.MessageSize) - 1) / int64(w.MessageSize))
	caughtUp := min(uint64(w.backlogGrowthPerS()), target/10)
	return BacklogGoal{TargetMsgs: target, CaughtUpMsgs: max(caughtUp, 1)}
}

// backlogGrowthPerS is how fast the backlog grows while nobody receives:
// every message published counts once per subscription of its topic.
func (w Workload) backlogGrowthPerS() float64 {
	return w.Rate * float64(w.SubscriptionsPerTopic)
}

// BacklogBuildTime is how long building the backlog takes at Rate when
// the broker keeps up: the least a backlog run's build can take.
func (w Workload) BacklogBuildTime() time.Duration {
	g := w.backlogGrowthPerS()
	if g <= 0 {
		return 0
	}
	return time.Duration(float64(w.BacklogGoal().TargetMsgs) * float64(time.Second) / g)
}

// validateBacklog checks the backlog fields against the rest of the
// workload.
func (w Workload) validateBacklog() error {
	bad := func(format string, args ...any) error {
		return errcode.New(errcode.InvalidArgument, "loadtest: backlog: "+format, args...)
	}
	switch {
	case w.BacklogBytes == 0:
		return nil
	case w.BacklogBytes < 0 || w.BacklogBytes > MaxBacklogBytes:
		return bad("must be in [0, %d] bytes", int64(MaxBacklogBytes))
	case w.BacklogBytes < int64(w.MessageSize):
		return bad("%d bytes is less than one message of %d", w.BacklogBytes, w.MessageSize)
	case w.Rate == 0:
		// Producers at full speed would race the consumers: the drain
		// would measure who wins, not how fast a backlog goes.
		return bad("needs a fixed rate, not max")
	case w.SubscriptionsPerTopic == 0:
		return bad("needs at least one subscription per topic to keep it")
	}
	if build, load := w.BacklogBuildTime(), w.Warmup+w.Duration; build >= load {
		return bad("%d messages take %v to build at %v msg/s, and the load ends after %v: lengthen the duration, which bounds build and drain together",
			w.BacklogGoal().TargetMsgs, build.Round(time.Millisecond), w.Rate, load)
	}
	return nil
}

// BacklogResult is a backlog run's figures (Result.Backlog). Backlogs are
// in messages counted once per subscription that has yet to receive them,
// so with two subscriptions a message published counts twice and a
// message received once.
type BacklogResult struct {
	TargetBytes int64  `json:"target_bytes"`
	TargetMsgs  uint64 `json:"target_msgs"`
	// Built: the backlog reached its target before the load ended.
	// BuiltMsgs and BuiltBytes are the backlog when the build ended (or
	// when the load did, if it was not built), BuildSeconds the time from
	// the start of the load.
	Built        bool    `json:"built"`
	BuiltMsgs    uint64  `json:"built_msgs"`
	BuiltBytes   uint64  `json:"built_bytes"`
	BuildSeconds float64 `json:"build_seconds"`
	// CaughtUp: the backlog fell to CaughtUpMsgs or less before the load
	// ended. The drain runs from the consumers' start until then, or
	// until the load ended; BacklogLeftMsgs is the backlog at its end.
	CaughtUp        bool    `json:"caught_up"`
	CaughtUpMsgs    uint64  `json:"caught_up_msgs"`
	DrainSeconds    float64 `json:"drain_seconds"`
	BacklogLeftMsgs uint64  `json:"backlog_left_msgs"`
	// Consumed (first receipts, every subscription) and published
	// (acknowledged) during the drain, and their rates. The net drain
	// rate is how fast the backlog shrank: consumed minus published
	// times the subscriptions per topic, since each published message
	// joins the backlog of every subscription of its topic.
	DrainConsumedMsgs    uint64  `json:"drain_consumed_msgs"`
	DrainPublishedMsgs   uint64  `json:"drain_published_msgs"`
	DrainConsumeMsgsPerS float64 `json:"drain_consume_msgs_per_s"`
	DrainConsumeMBPerS   float64 `json:"drain_consume_mb_per_s"`
	DrainPublishMsgsPerS float64 `json:"drain_publish_msgs_per_s"`
	NetDrainMsgsPerS     float64 `json:"net_drain_msgs_per_s"`
	NetDrainMBPerS       float64 `json:"net_drain_mb_per_s"`
	// DrainPublishLatencyMs is the publish latency of the messages sent
	// during the drain.
	DrainPublishLatencyMs Percentiles `json:"drain_publish_latency_ms"`
}

// produceBacklog runs the producers through a backlog run's phases
// (runBacklogPhases), stops them once the consumers have caught up, and
// flushes them. startConsumers starts the consumers; calling it again
// does nothing.
func (r *run) produceBacklog(ctx context.Context, start time.Time, startConsumers func()) error {
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r.send(sendCtx, start)
	}()
	r.backlog = r.runBacklogPhases(ctx, start, sent, startConsumers)
	stopSending()
	<-sent
	return r.flush(ctx)
}

// runBacklogPhases waits while the producers build the backlog, starts
// the consumers and waits until they have caught up. It returns early,
// with what it saw, when the load ends (sent is closed) or ctx does.
func (r *run) runBacklogPhases(ctx context.Context, start time.Time, sent <-chan struct{}, startConsumers func()) *BacklogResult {
	goal := r.w.BacklogGoal()
	res := &BacklogResult{TargetBytes: r.w.BacklogBytes, TargetMsgs: goal.TargetMsgs, CaughtUpMsgs: goal.CaughtUpMsgs}
	res.Built = r.waitBacklog(ctx, sent, func(n uint64) bool { return n >= goal.TargetMsgs })
	drainStart := time.Now()
	from := r.verifier.Snapshot()
	res.BuildSeconds = drainStart.Sub(start).Seconds()
	res.BuiltMsgs = from.Lost
	res.BuiltBytes = from.Lost * uint64(r.w.MessageSize)
	if !res.Built {
		r.rec.SetPhase(PhaseEnd, drainStart)
		return res
	}
	r.rec.SetPhase(PhaseDrain, drainStart)
	startConsumers()
	res.CaughtUp = r.waitBacklog(ctx, sent, func(n uint64) bool { return n <= goal.CaughtUpMsgs })
	drainEnd := time.Now()
	r.rec.SetPhase(PhaseEnd, drainEnd)
	res.setDrain(from, r.verifier.Snapshot(), drainEnd.Sub(drainStart), r.w)
	return res
}

// waitBacklog polls the backlog until done holds for it and reports
// whether it did before the load ended (sent is closed) or ctx did.
func (r *run) waitBacklog(ctx context.Context, sent <-chan struct{}, done func(backlog uint64) bool) bool {
	t := time.NewTicker(backlogPoll)
	defer t.Stop()
	for !done(r.verifier.Missing()) {
		select {
		case <-ctx.Done():
			return false
		case <-sent:
			// The last sends may have been what it waited for.
			return done(r.verifier.Missing())
		case <-t.C:
		}
	}
	return true
}

// setDrain fills the drain's figures from the verifier's counts at its
// start and end.
func (b *BacklogResult) setDrain(from, to Verification, d time.Duration, w Workload) {
	b.DrainSeconds = d.Seconds()
	b.BacklogLeftMsgs = to.Lost
	b.DrainConsumedMsgs = to.Received - from.Received
	b.DrainPublishedMsgs = to.Acked - from.Acked
	if b.DrainSeconds <= 0 {
		return
	}
	size := float64(w.MessageSize)
	b.DrainConsumeMsgsPerS = float64(b.DrainConsumedMsgs) / b.DrainSeconds
	b.DrainConsumeMBPerS = b.DrainConsumeMsgsPerS * size / 1e6
	b.DrainPublishMsgsPerS = float64(b.DrainPublishedMsgs) / b.DrainSeconds
	b.NetDrainMsgsPerS = b.DrainConsumeMsgsPerS - b.DrainPublishMsgsPerS*float64(w.SubscriptionsPerTopic)
	b.NetDrainMBPerS = b.NetDrainMsgsPerS * size / 1e6
}

// Verdict says in one line what became of the backlog.
func (b *BacklogResult) Verdict() string {
	built := fmt.Sprintf("built %d msgs (%.2f MB) in %.2f s", b.BuiltMsgs, float64(b.BuiltBytes)/1e6, b.BuildSeconds)
	switch {
	case !b.Built:
		return fmt.Sprintf("NOT BUILT: %d of %d msgs when the load ended after %.2f s; no drain measured", b.BuiltMsgs, b.TargetMsgs, b.BuildSeconds)
	case b.CaughtUp:
		return fmt.Sprintf("%s; consumers caught up (%d msgs left) after %.2f s of drain at %.0f msg/s, net %.0f msg/s",
			built, b.BacklogLeftMsgs, b.DrainSeconds, b.DrainConsumeMsgsPerS, b.NetDrainMsgsPerS)
	}
	return fmt.Sprintf("%s; consumers NOT caught up when the load ended: %d msgs left after %.2f s of drain at %.0f msg/s, net %.0f msg/s",
		built, b.BacklogLeftMsgs, b.DrainSeconds, b.DrainConsumeMsgsPerS, b.NetDrainMsgsPerS)
}
