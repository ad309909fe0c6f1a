package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
)

// TestALostBookiesLedgersGetTheirCopiesBackOnOtherBookies: on a real
// cluster of four bookies (E=3, Qw=3, Qa=2), a bookie killed for good
// leaves the topic's closed ledgers one copy short; after
// --lost-bookie-recovery-delay the auditing node copies them to the
// spare bookie, so that no closed ledger names the lost bookie and every
// bookie each one names holds all its entries; producing goes on, and
// every acknowledged message is consumed exactly once.
func TestALostBookiesLedgersGetTheirCopiesBackOnOtherBookies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	cluster, _, c := startProcessCluster(t, ctx, chaos.ClusterConfig{Bookies: 4, ServeArgs: func(a chaos.NodeAddrs, cc chaos.ClusterConfig) []string {
		return append(chaos.DefaultServeArgs(a, cc), "--lost-bookie-recovery-delay", "1s")
	}})
	const topic = "public/default/autorecovery"
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var acked []int
	send := func(n int) {
		t.Helper()
		for range n {
			seq := len(acked)
			if _, err := p.Send(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "pause-%07d", seq)}); err != nil {
				t.Fatalf("send %d: %v", seq, err)
			}
			acked = append(acked, seq)
		}
	}
	send(100)
	if err := c.Admin().UnloadTopic(ctx, topic); err != nil { // closes its ledger
		t.Fatal(err)
	}
	send(100)
	if err := c.Admin().UnloadTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}

	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	closedLedgers := func() []*metadata.Ledger {
		return slices.DeleteFunc(ledgersOfTopics(t, ctx, store, topic), func(l *metadata.Ledger) bool { return l.State != metadata.LedgerClosed })
	}
	before := closedLedgers()
	if len(before) < 2 {
		t.Fatalf("%d closed ledgers, want two", len(before))
	}
	lost := before[0].Fragments[0].Bookies[0]
	if err := cluster.Targets()[cluster.BookieTarget(lost)].Kill(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "no closed ledger naming the lost bookie", func() bool {
		for _, l := range closedLedgers() {
			if slices.Contains(ledgerBookies(l), lost) {
				return false
			}
		}
		return true
	})
	for _, l := range closedLedgers() {
		if l.LastEntry < 0 {
			continue
		}
		for _, b := range ledgerBookies(l) {
			if n := bookieEntries(t, ctx, b, uint64(l.ID), int64(l.LastEntry)); n != int64(l.LastEntry)+1 {
				t.Fatalf("bookie %s holds %d entries of ledger %d, which ends at %d", b, n, l.ID, l.LastEntry)
			}
		}
	}
	send(100)
	checkConsumedExactlyOnce(t, ctx, c, topic, acked)
}

// bookieEntries counts the entries 0..last of ledger l that the bookie at
// addr holds, reading them in order (a read stops at the first it lacks).
func bookieEntries(t *testing.T, ctx context.Context, addr string, l uint64, last int64) int64 {
	t.Helper()
	bc := dialBookie(t, addr)
	var n int64
	for n <= last {
		st, err := bc.Read(ctx, &bookiepb.ReadRequest{LedgerId: l, FirstEntry: n, LastEntry: last, MaxBytes: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		got := int64(0)
		for {
			resp, err := st.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return n + got
			}
			got += int64(len(resp.GetEntries()))
		}
		if got == 0 {
			return n
		}
		n += got
	}
	return n
}

// ledgersOfTopics answers the metadata of every ledger of the topics.
func ledgersOfTopics(t *testing.T, ctx context.Context, store *metadata.Store, topics ...string) []*metadata.Ledger {
	t.Helper()
	all, err := store.ListLedgers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(l *metadata.Ledger) bool { return !slices.Contains(topics, l.Topic) })
}

// dialBookie answers a client of the bookie at addr, closed when the test
// ends.
func dialBookie(t *testing.T, addr string) bookiepb.BookieClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return bookiepb.NewBookieClient(cc)
}

// TestADecommissionedBookieIsDrainedWhileItRunsAndThenStoppedLosingNothing:
// on a real cluster of four bookies, `strata bookies decommission --wait`
// returns once the auditing node has copied every closed ledger off the
// bookie (it keeps serving reads meanwhile); new ledgers leave it out;
// once it is stopped, every acknowledged message is consumed exactly once.
func TestADecommissionedBookieIsDrainedWhileItRunsAndThenStoppedLosingNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	cluster, nodes, c := startProcessCluster(t, ctx, chaos.ClusterConfig{Bookies: 4})
	const topic = "public/default/decommission"
	var acked []int
	produce := func(n int) { sendNumbered(t, ctx, c, topic, "drained", n, &acked) }
	for range 2 {
		produce(100)
		if err := c.Admin().UnloadTopic(ctx, topic); err != nil { // closes the ledger
			t.Fatal(err)
		}
	}
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	topicLedgers := func() []*metadata.Ledger { return ledgersOfTopics(t, ctx, store, topic) }
	drained := topicLedgers()[0].Fragments[0].Bookies[0]
	url := "strata://" + strings.Join(nodes, ",")
	if out, errOut, err := run(t, "", "bookies", "decommission", drained, "--wait", "2m", "--url", url); err != nil ||
		!strings.Contains(errOut, "can be stopped") {
		t.Fatalf("decommission: %v\n%s%s", err, out, errOut)
	}
	for _, l := range topicLedgers() {
		if slices.Contains(ledgerBookies(l), drained) {
			t.Fatalf("ledger %d still names the drained bookie: %+v", l.ID, l.Fragments)
		}
	}
	var listed []client.BookieStatus
	out, _, err := run(t, "", "bookies", "list", "--output", "json", "--url", url)
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil {
		t.Fatalf("bookies list: %v\n%s", err, out)
	}
	if i := slices.IndexFunc(listed, func(b client.BookieStatus) bool { return b.ID == drained }); i < 0 ||
		!listed[i].Draining || !listed[i].Registered || listed[i].Ledgers != 0 || len(listed) != 4 {
		t.Fatalf("bookies list: %+v", listed)
	}
	produce(100) // a new ledger, without the drained bookie
	for _, l := range topicLedgers() {
		if slices.Contains(ledgerBookies(l), drained) {
			t.Fatalf("new ledger %d names the draining bookie: %+v", l.ID, l.Fragments)
		}
	}
	// recommission undoes the drain (and decommission marks it again).
	if _, errOut, err := run(t, "", "bookies", "recommission", drained, "--url", url); err != nil {
		t.Fatalf("recommission: %v\n%s", err, errOut)
	}
	if bs, err := c.Admin().Bookies(ctx); err != nil || slices.ContainsFunc(bs, func(b client.BookieStatus) bool { return b.Draining }) {
		t.Fatalf("bookies after the recommission: %+v %v", bs, err)
	}
	if err := c.Admin().DrainBookie(ctx, drained, false); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Targets()[cluster.BookieTarget(drained)].Kill(ctx); err != nil {
		t.Fatal(err)
	}
	checkConsumedExactlyOnce(t, ctx, c, topic, acked)
}
