package main

import (
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
)

// TestAuditorCopiesBackToARestartedBookieWhatItMissedOnARealCluster: on a
// real cluster of three bookies (E=Qw=3, Qa=2: no spare), a bookie killed
// while a topic is written misses the entries written meanwhile, which
// its writer acknowledged at two copies; restarted on its data directory
// and the ledger closed, it gets them back from the auditing node's
// ledger check (--ledger-check-interval), and every acknowledged message
// is consumed exactly once. Before the check, those entries kept two
// copies for good.
func TestAuditorCopiesBackToARestartedBookieWhatItMissedOnARealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	cluster, _, c := startProcessCluster(t, ctx, chaos.ClusterConfig{Bookies: 3, ServeArgs: func(a chaos.NodeAddrs, cc chaos.ClusterConfig) []string {
		// A short delay makes audit rounds a second apart.
		return append(chaos.DefaultServeArgs(a, cc), "--ledger-check-interval", "1s", "--lost-bookie-recovery-delay", "2s")
	}})
	const topic = "public/default/ledgercheck"
	var acked []int
	sendNumbered(t, ctx, c, topic, "checked", 50, &acked)
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	topicLedgers := func() []*metadata.Ledger { return ledgersOfTopics(t, ctx, store, topic) }
	open := topicLedgers()
	if len(open) != 1 || open[0].State != metadata.LedgerOpen {
		t.Fatalf("the topic's ledgers: %+v, want one open", open)
	}
	down := open[0].Fragments[0].Bookies[1]
	target := cluster.Targets()[cluster.BookieTarget(down)]
	if err := target.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	sendNumbered(t, ctx, c, topic, "checked", 150, &acked)
	if err := target.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.Admin().UnloadTopic(ctx, topic); err != nil { // closes the ledger
		t.Fatal(err)
	}
	pollUntil(t, ctx, "the restarted bookie to hold every entry of the topic's closed ledger", func() bool {
		for _, l := range topicLedgers() {
			if l.State != metadata.LedgerClosed || bookieEntries(t, ctx, down, uint64(l.ID), int64(l.LastEntry)) != int64(l.LastEntry)+1 {
				return false
			}
		}
		return true
	})
	checkConsumedExactlyOnce(t, ctx, c, topic, acked)
}
