package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
)

// TestARestartedNodeTakesItsShareOfTopicsBackLosingAndDuplicatingNothing:
// on a real cluster (etcd, three bookies, two serving nodes as processes),
// a serving node killed under load leaves its topics to the other; once it
// is back, the other unloads the topics that the placement gives it
// (--rebalance-interval), so both serve topics again, while producers and
// consumers follow every move on their own: every acknowledged message of
// every topic is consumed exactly once.
func TestARestartedNodeTakesItsShareOfTopicsBackLosingAndDuplicatingNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	cluster, nodes, c := startProcessCluster(t, ctx, chaos.ClusterConfig{ServeArgs: func(a chaos.NodeAddrs, c chaos.ClusterConfig) []string {
		return append(chaos.DefaultServeArgs(a, c), "--rebalance-interval", "1s")
	}})

	const topics = 16
	name := func(i int) string { return fmt.Sprintf("public/default/rebalance-%02d", i) }
	acks := make([]ackLog, topics)
	sent := make([]int, topics)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range topics {
		p, err := c.NewProducer(ctx, name(i), client.ProducerLinger(2*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = produceUntil(ctx, p, &acks[i], stop, 20*time.Millisecond)
			if err := p.Flush(ctx); err != nil {
				t.Errorf("flush of %s: %v", name(i), err)
			}
		}()
	}
	stopped := false
	stopProducing := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopProducing()
	owners := func() map[string]int {
		count := map[string]int{}
		for i := range topics {
			if o, err := lookupAt(ctx, nodes[0], name(i)); err == nil {
				count[o]++
			}
		}
		return count
	}
	receipts := func(n int) func() bool {
		return func() bool {
			for i := range topics {
				if ids, _, _ := acks[i].snapshot(); len(ids) < n {
					return false
				}
			}
			return true
		}
	}

	pollUntil(t, ctx, "receipts on every topic", receipts(10))
	if n := owners()[nodes[1]]; n == 0 {
		t.Fatalf("node %s owns none of the %d topics before the kill", nodes[1], topics)
	}
	target := cluster.Targets()[chaos.TargetName(chaos.Serving, 1)]
	if err := target.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "every topic on the surviving node", func() bool { return owners()[nodes[0]] == topics })
	before := make([]int, topics)
	for i := range topics {
		ids, _, _ := acks[i].snapshot()
		before[i] = len(ids)
	}
	if err := target.Restart(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "topics back on the restarted node", func() bool {
		o := owners()
		return o[nodes[1]] > 0 && o[nodes[0]] > 0 && o[nodes[0]]+o[nodes[1]] == topics
	})
	// Ownership follows once the clients have reconnected to the new owner.
	pollUntil(t, ctx, "both nodes owning topics in the cluster listing", func() bool {
		members, bookies, err := c.Admin().Cluster(ctx)
		return err == nil && len(members) == 2 && len(bookies) == 3 && members[0].OwnedTopics > 0 && members[1].OwnedTopics > 0 &&
			members[0].OwnedTopics+members[1].OwnedTopics == topics
	})
	pollUntil(t, ctx, "receipts on every topic after the moves", func() bool {
		for i := range topics {
			if ids, _, _ := acks[i].snapshot(); len(ids) < before[i]+20 {
				return false
			}
		}
		return true
	})
	stopProducing()
	for i := range topics {
		_, seqs, errs := acks[i].snapshot()
		if len(errs) > 0 {
			t.Fatalf("%s: %d sends failed, the first: %v", name(i), len(errs), errs[0])
		}
		if len(seqs) != sent[i] {
			t.Fatalf("%s: %d receipts for %d sends", name(i), len(seqs), sent[i])
		}
		checkConsumedExactlyOnce(t, ctx, c, name(i), seqs)
	}
}
