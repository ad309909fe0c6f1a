package stratadriver

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/loadtest"
)

func TestSubscriptionTypesMapToTheSDK(t *testing.T) {
	for _, typ := range []loadtest.SubscriptionType{loadtest.Exclusive, loadtest.Shared, loadtest.Failover, loadtest.KeyShared} {
		if got := subType(typ).String(); got != string(typ) {
			t.Fatalf("%s maps to %s", typ, got)
		}
	}
}

func TestSinglePartitionTopicsAreNotPartitioned(t *testing.T) {
	d := New(Config{})
	d.w.Partitions = 1
	if got := d.topicOf("a/b/c", 0); got != "a/b/c" {
		t.Fatalf("got %q", got)
	}
	d.w.Partitions = 3
	if got := d.topicOf("a/b/c", 2); got != "a/b/c-partition-2" {
		t.Fatalf("got %q", got)
	}
}

// TestDriverSpeaksTheSDKToAFakeBroker runs a short workload through the
// SDK against client/fakebroker (real gRPC, in-memory log): it checks the
// driver's wiring (topics created, partitions opened, acks and receipts
// routed), not Strata's storage.
func TestDriverSpeaksTheSDKToAFakeBroker(t *testing.T) {
	b := fakebroker.Start(t, fakebroker.NewCluster())
	d := New(Config{URL: b.URL()})
	t.Cleanup(func() { _ = d.Close() })
	w := loadtest.DefaultWorkload()
	w.Partitions = 2
	w.SubscriptionsPerTopic = 2
	w.KeyDistribution = loadtest.KeyRoundRobin
	w.MessageSize = 128
	w.Rate = 300
	w.Duration = time.Second
	w.MaxMessagesPerProducer = 500
	w.DrainTimeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loadtest.Run(ctx, d, w, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verification
	if res.Failed || v.Acked == 0 || v.Acked != v.Published || v.Received != 2*v.Acked || v.Duplicates != 0 {
		t.Fatalf("got %+v", v)
	}
}

// TestLoadtestAgainstRunningStrataLosesNothing runs a short workload against
// the cluster at $STRATA_LOADTEST_URL (strata://host:port). It is skipped
// without one. (Starting a standalone from the strata binary, the driver's
// default, needs the standalone command and is exercised by `strata
// loadtest`, not here.)
func TestLoadtestAgainstRunningStrataLosesNothing(t *testing.T) {
	url := os.Getenv("STRATA_LOADTEST_URL")
	if url == "" {
		t.Skip("STRATA_LOADTEST_URL not set")
	}
	d := New(Config{URL: url})
	t.Cleanup(func() { _ = d.Close() })
	w := loadtest.DefaultWorkload()
	w.Partitions = 2
	w.Rate = 200
	w.Duration = 2 * time.Second
	w.MaxMessagesPerProducer = 1000
	w.TopicPrefix = "public/default/lt-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loadtest.Run(ctx, d, w, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed || res.Acked == 0 || res.Received != res.Acked {
		t.Fatalf("got %+v", res.Verification)
	}
}

// TestSendRefusedForAFullWindowIsReturnedNotCalledBack checks the
// loadtest.Producer contract: a send whose wait for room is cancelled
// returns the error and never calls done.
func TestSendRefusedForAFullWindowIsReturnedNotCalledBack(t *testing.T) {
	b := fakebroker.Start(t, fakebroker.NewCluster())
	d := New(Config{URL: b.URL()})
	t.Cleanup(func() { _ = d.Close() })
	w := loadtest.DefaultWorkload()
	w.MaxPending = 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Setup(ctx, w, []string{"public/default/window"}); err != nil {
		t.Fatal(err)
	}
	p, err := d.NewProducer(ctx, "public/default/window", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	first := make(chan error, 1)
	if err := p.SendAsync(ctx, "", []byte("one"), func(err error) { first <- err }); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	called := make(chan error, 1)
	err = p.SendAsync(sctx, "", []byte("two"), func(err error) { called <- err })
	if err == nil {
		t.Fatal("send into a full window with an expiring context succeeded")
	}
	b.ReleaseBatches()
	if err := <-first; err != nil {
		t.Fatalf("first send: %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-called:
		t.Fatalf("done called for a refused send: %v", err)
	default:
	}
}
