package loadtest

import (
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

func TestDefaultWorkloadIsValid(t *testing.T) {
	if err := DefaultWorkload().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWorkloadValidateRejectsEachBadField(t *testing.T) {
	cases := map[string]func(*Workload){
		"no topics":               func(w *Workload) { w.Topics = 0 },
		"too many partitions":     func(w *Workload) { w.Partitions = MaxPartitions + 1 },
		"size under header":       func(w *Workload) { w.MessageSize = HeaderSize - 1 },
		"negative rate":           func(w *Workload) { w.Rate = -1 },
		"unknown sub type":        func(w *Workload) { w.SubscriptionType = "fanout" },
		"two exclusive":           func(w *Workload) { w.ConsumersPerSubscription = 2 },
		"unknown key dist":        func(w *Workload) { w.KeyDistribution = "zipf" },
		"zero duration":           func(w *Workload) { w.Duration = 0 },
		"zero pending window":     func(w *Workload) { w.MaxPending = 0 },
		"negative warm-up":        func(w *Workload) { w.Warmup = -1 },
		"empty topic prefix":      func(w *Workload) { w.TopicPrefix = "" },
		"negative message limit":  func(w *Workload) { w.MaxMessagesPerProducer = -1 },
		"unknown payload":         func(w *Workload) { w.Payload = "zeros" },
		"unknown compression":     func(w *Workload) { w.Compression = "gzip" },
		"negative backlog":        func(w *Workload) { w.BacklogBytes = -1 },
		"backlog over the limit":  func(w *Workload) { w.BacklogBytes = MaxBacklogBytes + 1 },
		"backlog under a message": func(w *Workload) { w.BacklogBytes = int64(w.MessageSize) - 1 },
		"backlog at max rate":     func(w *Workload) { w.BacklogBytes, w.Rate = 1<<20, 0 },
		"backlog unsubscribed":    func(w *Workload) { w.BacklogBytes, w.SubscriptionsPerTopic = 1<<20, 0 },
		// 1 GiB of 1 KiB messages at 1000 msg/s: 1049 s to build, in a 10 s load.
		"backlog longer to build than the load": func(w *Workload) { w.BacklogBytes = 1 << 30 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			w := DefaultWorkload()
			mutate(&w)
			err := w.Validate()
			if errcode.CodeOf(err) != errcode.InvalidArgument {
				t.Fatalf("Validate() = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestBacklogGoal(t *testing.T) {
	cases := []struct {
		name             string
		size             int
		backlog          int64
		rate             float64
		subs             int
		target, caughtUp uint64
		buildTime        time.Duration
	}{
		{"a tenth of a small backlog", 100, 1000 * 100, 1000, 1, 1000, 100, time.Second},
		{"rounded up to whole messages", 100, 1000*100 + 1, 1000, 1, 1001, 100, 1001 * time.Millisecond},
		{"a second of publishing, every subscription", 1024, 1 << 30, 1000, 2, 1 << 20, 2000, 524288 * time.Millisecond},
		{"at least one message", 100, 500, 1000, 1, 5, 1, 5 * time.Millisecond},
		{"none", 100, 0, 1000, 1, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := DefaultWorkload()
			w.MessageSize, w.BacklogBytes, w.Rate, w.SubscriptionsPerTopic = c.size, c.backlog, c.rate, c.subs
			if g := w.BacklogGoal(); g.TargetMsgs != c.target || g.CaughtUpMsgs != c.caughtUp {
				t.Fatalf("goal %+v, want target %d caught up at %d", g, c.target, c.caughtUp)
			}
			if d := w.BacklogBuildTime(); d != c.buildTime {
				t.Fatalf("build time %v, want %v", d, c.buildTime)
			}
		})
	}
}

func TestBacklogThatFitsTheLoadIsValid(t *testing.T) {
	w := DefaultWorkload()
	w.BacklogBytes = 5 << 20 // 5120 messages of 1 KiB: 5.1 s at 1000 msg/s, in a 10 s load
	w.SubscriptionType, w.ConsumersPerSubscription, w.Partitions = KeyShared, 3, 4
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
}
