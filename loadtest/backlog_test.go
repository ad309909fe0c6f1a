package loadtest_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/memdriver"
)

// backlogWorkload builds a backlog of targetMsgs messages of 100 B at
// rate msg/s, with a duration far longer than the run needs: a run that
// catches up ends long before it.
func backlogWorkload(rate float64, targetMsgs int64) loadtest.Workload {
	w := smallWorkload()
	w.MessageSize = 100
	w.Rate = rate
	w.MaxMessagesPerProducer = 0
	w.BacklogBytes = targetMsgs * int64(w.MessageSize)
	w.Duration = 60 * time.Second
	w.DrainTimeout = 5 * time.Second
	return w
}

// The backlog is built with the consumers waiting, then drained while the
// producers go on; the load ends once the consumers have caught up, and
// every message is still verified, with shared and key_shared
// subscriptions of several consumers over several partitions.
func TestBacklogRunBuildsThenDrainsAndCatchesUp(t *testing.T) {
	for _, typ := range []loadtest.SubscriptionType{loadtest.Shared, loadtest.KeyShared} {
		t.Run(string(typ), func(t *testing.T) {
			// 2 subscriptions per topic: 2 s to build, so that the first
			// interval (1 s) ends in the build even on a loaded machine.
			w := backlogWorkload(1000, 4000)
			w.SubscriptionType = typ
			res := run(t, memdriver.Faults{}, w)
			b := res.Backlog
			if b == nil {
				t.Fatal("no backlog figures")
			}
			checkBuilt(t, w, res)
			if !b.CaughtUp || b.BacklogLeftMsgs > b.CaughtUpMsgs || b.DrainSeconds <= 0 {
				t.Fatalf("not caught up: %+v", b)
			}
			if res.MeasuredSeconds >= w.Duration.Seconds() {
				t.Fatalf("the load ran %.1f s: it did not end when the consumers caught up", res.MeasuredSeconds)
			}
			if b.NetDrainMsgsPerS <= 0 || b.DrainConsumeMsgsPerS <= b.DrainPublishMsgsPerS {
				t.Fatalf("caught up without draining faster than publishing: %+v", b)
			}
			checkDrainFigures(t, w, b)
			checkVerifiedAll(t, w, res)
			checkPhases(t, res.Intervals)
			t.Log(b.Verdict())
		})
	}
}

// Consumers slower than the producers never catch up: the run says so
// when the duration ends, and still receives and verifies everything.
func TestBacklogRunReportsConsumersThatCannotCatchUp(t *testing.T) {
	w := backlogWorkload(400, 200) // 0.5 s to build
	w.Topics, w.Partitions, w.ProducersPerTopic, w.SubscriptionsPerTopic = 1, 1, 1, 1
	w.ConsumersPerSubscription, w.SubscriptionType = 1, loadtest.Exclusive
	w.KeyDistribution = loadtest.NoKey
	w.Duration = 1500 * time.Millisecond
	// At most 200 msg/s received against 400 published.
	res := run(t, memdriver.Faults{ReceiveDelay: 5 * time.Millisecond}, w)
	b := res.Backlog
	if b == nil {
		t.Fatal("no backlog figures")
	}
	checkBuilt(t, w, res)
	if b.CaughtUp || b.BacklogLeftMsgs <= b.CaughtUpMsgs || b.NetDrainMsgsPerS >= 0 {
		t.Fatalf("slow consumers reported as caught up: %+v", b)
	}
	checkDrainFigures(t, w, b)
	// A second of drain at 400 msg/s: plenty sent during it. (A drain of
	// a few milliseconds may have acknowledged only messages sent before
	// it, which its latency leaves out.)
	if b.DrainPublishedMsgs == 0 || b.DrainPublishLatencyMs.Max <= 0 {
		t.Fatalf("no publish latency during the drain: %+v", b)
	}
	checkVerifiedAll(t, w, res)
	t.Log(b.Verdict())
	if v := b.Verdict(); !strings.Contains(v, "NOT caught up") {
		t.Fatalf("verdict %q", v)
	}
}

// A load that ends before the backlog is built (here: the producers' message
// budget runs out) reports it unbuilt and undrained, and its consumers
// still receive everything afterwards.
func TestBacklogRunThatEndsBeforeTheBacklogIsBuilt(t *testing.T) {
	w := backlogWorkload(1000, 1000)
	w.Topics, w.Partitions, w.ProducersPerTopic, w.SubscriptionsPerTopic = 1, 1, 1, 1
	w.MaxMessagesPerProducer = 100
	res := run(t, memdriver.Faults{}, w)
	b := res.Backlog
	if b == nil || b.Built || b.CaughtUp || b.BuiltMsgs != 100 || b.DrainSeconds != 0 {
		t.Fatalf("backlog %+v, want unbuilt at 100 msgs", b)
	}
	if !strings.Contains(b.Verdict(), "NOT BUILT") {
		t.Fatalf("verdict %q", b.Verdict())
	}
	checkVerifiedAll(t, w, res)
}

// checkBuilt checks the build's figures, and that the build took at least
// what the rate allows: pacing never sends early, so by time t at most
// rate*t messages (one more per producer) were published.
func checkBuilt(t *testing.T, w loadtest.Workload, res *loadtest.Result) {
	t.Helper()
	b := res.Backlog
	goal := w.BacklogGoal()
	if !b.Built || b.BuiltMsgs < goal.TargetMsgs || b.TargetMsgs != goal.TargetMsgs || b.CaughtUpMsgs != goal.CaughtUpMsgs {
		t.Fatalf("backlog not built to its goal %+v: %+v", goal, b)
	}
	if b.BuiltBytes != b.BuiltMsgs*uint64(w.MessageSize) || b.TargetBytes != w.BacklogBytes {
		t.Fatalf("bytes do not match messages: %+v", b)
	}
	producers := float64(w.Topics * w.ProducersPerTopic)
	if least := (float64(goal.TargetMsgs)/float64(w.SubscriptionsPerTopic) - producers) / w.Rate; b.BuildSeconds < least {
		t.Fatalf("built in %.3f s, faster than the rate allows (%.3f s)", b.BuildSeconds, least)
	}
}

// checkDrainFigures checks that the drain's figures agree with each other.
func checkDrainFigures(t *testing.T, w loadtest.Workload, b *loadtest.BacklogResult) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(a), math.Abs(b)) }
	subs := float64(w.SubscriptionsPerTopic)
	size := float64(w.MessageSize)
	if !near(b.DrainConsumeMsgsPerS*b.DrainSeconds, float64(b.DrainConsumedMsgs)) ||
		!near(b.DrainPublishMsgsPerS*b.DrainSeconds, float64(b.DrainPublishedMsgs)) ||
		!near(b.DrainConsumeMBPerS, b.DrainConsumeMsgsPerS*size/1e6) ||
		!near(b.NetDrainMsgsPerS, b.DrainConsumeMsgsPerS-b.DrainPublishMsgsPerS*subs) ||
		!near(b.NetDrainMBPerS, b.NetDrainMsgsPerS*size/1e6) {
		t.Fatalf("drain figures disagree: %+v", b)
	}
	// The backlog shrinks by one per first receipt, no more.
	if b.BacklogLeftMsgs < b.BuiltMsgs && b.DrainConsumedMsgs < b.BuiltMsgs-b.BacklogLeftMsgs {
		t.Fatalf("the backlog fell by %d with %d received: %+v", b.BuiltMsgs-b.BacklogLeftMsgs, b.DrainConsumedMsgs, b)
	}
}

// checkVerifiedAll checks that every subscription received every message.
func checkVerifiedAll(t *testing.T, w loadtest.Workload, res *loadtest.Result) {
	t.Helper()
	v := res.Verification
	if res.Failed || v.Lost != 0 || v.Published == 0 || v.Acked != v.Published ||
		v.Received != v.Published*uint64(w.SubscriptionsPerTopic) {
		t.Fatalf("not every message verified: %+v", v)
	}
}

// checkPhases checks that the intervals go through build, drain and end
// in order, with the backlog of the build's intervals shown.
func checkPhases(t *testing.T, ivs []loadtest.Interval) {
	t.Helper()
	order := map[loadtest.Phase]int{loadtest.PhaseBuild: 0, loadtest.PhaseDrain: 1, loadtest.PhaseEnd: 2}
	if len(ivs) < 2 || ivs[0].Phase != loadtest.PhaseBuild || ivs[len(ivs)-1].Phase != loadtest.PhaseEnd {
		t.Fatalf("intervals do not start building and finish ended: %+v", ivs)
	}
	for i, iv := range ivs {
		n, ok := order[iv.Phase]
		if !ok || (i > 0 && n < order[ivs[i-1].Phase]) {
			t.Fatalf("interval %d in phase %q after %q", i, iv.Phase, ivs[max(i-1, 0)].Phase)
		}
		if iv.Phase == loadtest.PhaseBuild && (iv.BacklogMsgs == 0 || iv.ReceiveMsgsPerS != 0) {
			t.Fatalf("build interval %d: backlog %d, received %.0f msg/s", i, iv.BacklogMsgs, iv.ReceiveMsgsPerS)
		}
	}
}
