package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
)

// Admin calls made right after a topic's owner dies (stats, deleting a
// subscription) wait for the takeover and succeed, as a producer does: they
// failed at once with UNAVAILABLE or SERVICE_NOT_READY for the seconds until
// the dead owner's lease expired, and `strata subscriptions delete` on a
// partitioned topic left the subscription on the partitions after the
// failed one.
func TestAdminCallsMadeWhileATopicChangesOwnerWaitForTheTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 3*time.Minute)
	cluster, nodes, c := startProcessCluster(t, ctx, chaos.ClusterConfig{})
	const topic = "public/default/admin-takeover"
	if err := c.Admin().CreateSubscription(ctx, topic, "going", client.Earliest); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	owner := lookupOwner(t, ctx, nodes[0], topic)
	i := slices.Index(nodes, owner)
	target := cluster.Targets()[chaos.TargetName(chaos.Serving, i)]
	if i < 0 || target == nil {
		t.Fatalf("owner %s is none of the serving nodes %v", owner, nodes)
	}
	// The admin's own client, with an operation timeout that covers a
	// takeover (the lease TTL and a load).
	ac, err := client.New(cluster.URL(), client.OperationTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	admin := ac.Admin()
	if err := target.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := admin.TopicStats(ctx, topic); err != nil {
		t.Fatalf("stats right after the owner died: %v", err)
	}
	t.Logf("stats answered %v after the kill", time.Since(start))
	if err := admin.DeleteSubscription(ctx, topic, "going"); err != nil {
		t.Fatalf("deleting a subscription during the takeover: %v", err)
	}
	st, err := admin.TopicStats(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Subscriptions {
		if s.Name == "going" {
			t.Fatalf("subscription still there after its delete: %+v", st.Subscriptions)
		}
	}
}
