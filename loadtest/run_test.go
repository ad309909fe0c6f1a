package loadtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/memdriver"
)

// smallWorkload is bounded in count (MaxMessagesPerProducer) and time.
func smallWorkload() loadtest.Workload {
	w := loadtest.DefaultWorkload()
	w.Topics = 2
	w.Partitions = 3
	w.ProducersPerTopic = 2
	w.SubscriptionsPerTopic = 2
	w.ConsumersPerSubscription = 2
	w.SubscriptionType = loadtest.Shared
	w.KeyDistribution = loadtest.KeyRandom
	w.MessageSize = 64
	w.Rate = 0
	w.MaxMessagesPerProducer = 300
	w.Duration = 10 * time.Second
	w.DrainTimeout = time.Second
	return w
}

func run(t *testing.T, f memdriver.Faults, w loadtest.Workload) *loadtest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loadtest.Run(ctx, memdriver.New(f), w, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunAgainstAFaithfulBrokerVerifiesEveryMessage(t *testing.T) {
	w := smallWorkload()
	// Paced to last about 60 ms: unpaced, the run could end within the
	// hiccup meter's first 1 ms sleep, with nothing to measure.
	w.Rate = 20000
	res := run(t, memdriver.Faults{}, w)
	sends := uint64(w.Topics * w.ProducersPerTopic * int(w.MaxMessagesPerProducer))
	if res.Published != sends || res.Acked != sends {
		t.Fatalf("published %d acked %d, want %d", res.Published, res.Acked, sends)
	}
	if want := sends * uint64(w.SubscriptionsPerTopic); res.Received != want {
		t.Fatalf("received %d, want %d", res.Received, want)
	}
	if res.Failed || res.Lost+res.Duplicates+res.OutOfOrder+res.Unexpected != 0 {
		t.Fatalf("faithful broker reported faults: %+v", res.Verification)
	}
	if res.ThroughputMsgsPerS <= 0 || res.PublishLatencyMs.Max <= 0 || res.E2ELatencyMs.Max <= 0 {
		t.Fatalf("no measurements: %+v", res)
	}
	if res.HiccupMs.Max <= 0 {
		t.Fatalf("the machine's hiccups were not measured beside the latencies: %+v", res.HiccupMs)
	}
}

func TestRunReportsLossDuplicatesAndReorderingFromTheBroker(t *testing.T) {
	w := smallWorkload()
	w.Topics, w.Partitions, w.ProducersPerTopic, w.SubscriptionsPerTopic = 1, 1, 1, 1
	w.ConsumersPerSubscription, w.SubscriptionType = 1, loadtest.Exclusive
	w.KeyDistribution = loadtest.NoKey
	w.MaxMessagesPerProducer = 100
	cases := []struct {
		name   string
		faults memdriver.Faults
		check  func(loadtest.Verification) bool
	}{
		{"drop", memdriver.Faults{DropEvery: 10}, func(v loadtest.Verification) bool { return v.Lost == 10 }},
		{"duplicate", memdriver.Faults{DuplicateEvery: 10}, func(v loadtest.Verification) bool { return v.Duplicates == 10 && v.Lost == 0 }},
		// The 100th send is held back for ever: 9 swaps and one loss.
		{"reorder", memdriver.Faults{SwapEvery: 10}, func(v loadtest.Verification) bool { return v.OutOfOrder == 9 && v.Lost == 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, c.faults, w)
			if !c.check(res.Verification) {
				t.Fatalf("fault not reported: %+v", res.Verification)
			}
			if c.name != "duplicate" && !res.Failed {
				t.Fatal("run with lost or reordered messages not marked failed")
			}
		})
	}
}

func TestRunPacesProducersToTheTargetRate(t *testing.T) {
	w := smallWorkload()
	w.Topics, w.Partitions, w.ProducersPerTopic = 1, 1, 1
	w.Rate = 200
	w.Duration = 500 * time.Millisecond
	w.MaxMessagesPerProducer = 0
	start := time.Now()
	res := run(t, memdriver.Faults{}, w)
	// Pacing never sends early: at most rate*elapsed+1 sends can have been
	// due. Elapsed is measured, not the nominal duration, because a loaded
	// machine stretches the run; unpaced sending would still exceed it by far.
	if limit := uint64(w.Rate*time.Since(start).Seconds()) + 1; res.Published > limit {
		t.Fatalf("published %d, more than the %d due at %v msg/s", res.Published, limit, w.Rate)
	}
	if res.Published == 0 || res.Failed {
		t.Fatalf("got %+v", res.Verification)
	}
}

func TestRunExcludesTheWarmupFromMeasurements(t *testing.T) {
	w := smallWorkload()
	w.Topics, w.Partitions, w.ProducersPerTopic, w.SubscriptionsPerTopic = 1, 1, 1, 1
	w.ConsumersPerSubscription = 1
	w.Rate = 100
	w.Warmup = 1500 * time.Millisecond
	w.Duration = 1500 * time.Millisecond
	w.MaxMessagesPerProducer = 0
	res, err := loadtest.Run(context.Background(), memdriver.New(memdriver.Faults{}), w, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var warm, measured int
	for _, iv := range res.Intervals {
		if iv.Warmup {
			warm++
		} else {
			measured++
		}
	}
	if warm == 0 || measured == 0 || !res.Intervals[0].Warmup || res.Intervals[len(res.Intervals)-1].Warmup {
		t.Fatalf("intervals not split into warm-up and measurement: %d warm, %d measured", warm, measured)
	}
	if res.Failed || res.Received != res.Published {
		t.Fatalf("warm-up messages must still be verified: %+v", res.Verification)
	}
	// Messages sent during the warm-up are verified but not measured: the
	// measured throughput covers only the sends after it.
	if measuredMsgs := res.ThroughputMsgsPerS * res.MeasuredSeconds; measuredMsgs >= float64(res.Acked)-1 {
		t.Fatalf("measured %.0f of %d acked messages: warm-up included", measuredMsgs, res.Acked)
	}
}
