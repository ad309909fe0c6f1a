package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
)

// TestAReadOnlyBookieGetsNoNewLedgersAndLosesNothing: on a real cluster of
// four bookies that register themselves in etcd (`strata bookie --etcd`),
// one started with a disk usage threshold its disk is over, which is how a
// full disk looks to it, turns read-only and registers so: `strata bookies
// list` and its Health say it, no ledger of a topic produced to and rolled
// over names it, and every acknowledged message is consumed exactly once.
func TestAReadOnlyBookieGetsNoNewLedgersAndLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 4*time.Minute)
	full := chaos.TargetName(chaos.Bookie, 3)
	cluster, nodes, c := startProcessCluster(t, ctx, chaos.ClusterConfig{Bookies: 4, KeepBookiesUnregistered: true,
		BookieArgs: func(a chaos.NodeAddrs) []string {
			args := append(chaos.DefaultBookieArgs(a), "--etcd", a.Etcd)
			if filepath.Base(a.DataDir) == full {
				args = append(args, "--disk-usage-threshold", "0.000001")
			}
			return args
		}})
	var readOnly string
	pollUntil(t, ctx, "four bookies registered, one of them read-only", func() bool {
		_, bs, err := c.Admin().Cluster(ctx)
		if err != nil || len(bs) != 4 {
			return false
		}
		i := slices.IndexFunc(bs, func(b client.ClusterBookie) bool { return b.ReadOnly })
		if i < 0 {
			return false
		}
		readOnly = bs[i].ID
		return true
	})
	if got := cluster.BookieTarget(readOnly); got != full {
		t.Fatalf("bookie %s (%s) registered read-only, want %s", readOnly, got, full)
	}

	const topic = "public/default/read-only-bookie"
	var acked []int
	produce := func(n int) { sendNumbered(t, ctx, c, topic, "read-only", n, &acked) }
	for range 3 {
		produce(100)
		if err := c.Admin().UnloadTopic(ctx, topic); err != nil { // a new ledger next time
			t.Fatal(err)
		}
	}
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: cluster.EtcdEndpoints(), Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ledgers, err := store.ListLedgers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ledgers {
		if l.Topic != topic {
			continue
		}
		n++
		if slices.Contains(ledgerBookies(l), readOnly) {
			t.Fatalf("ledger %d names the read-only bookie: %+v", l.ID, l.Fragments)
		}
	}
	if n < 3 {
		t.Fatalf("%d ledgers of the topic, want one per load", n)
	}

	var listed []client.BookieStatus
	out, _, err := run(t, "", "bookies", "list", "--output", "json", "--url", "strata://"+strings.Join(nodes, ","))
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil {
		t.Fatalf("bookies list: %v\n%s", err, out)
	}
	if i := slices.IndexFunc(listed, func(b client.BookieStatus) bool { return b.ID == readOnly }); i < 0 || !listed[i].ReadOnly || !listed[i].Registered ||
		slices.ContainsFunc(listed, func(b client.BookieStatus) bool { return b.ReadOnly && b.ID != readOnly }) {
		t.Fatalf("bookies list: %+v", listed)
	}
	text, _, err := run(t, "", "bookies", "list", "--url", "strata://"+strings.Join(nodes, ","))
	if err != nil || !strings.Contains(text, "read-only") {
		t.Fatalf("bookies list (text): %v\n%s", err, text)
	}
	cc, err := grpc.NewClient(readOnly, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if h, err := bookiepb.NewBookieClient(cc).Health(ctx, &bookiepb.HealthRequest{}); err != nil || !h.GetReadOnly() || !h.GetReady() {
		t.Fatalf("health of the read-only bookie: %+v %v", h, err)
	}
	checkConsumedExactlyOnce(t, ctx, c, topic, acked)
}

// TestAStandaloneOverItsDiskThresholdRefusesPublishesAndSaysWhy: `strata
// standalone --disk-usage-threshold` reaches its bookie: over the
// threshold (here one its disk is over from the start) the one bookie is
// read-only, `strata cluster`'s data and the console say so, and a publish
// fails rather than being taken, with a retriable error naming the lack
// of writable bookies.
func TestAStandaloneOverItsDiskThresholdRefusesPublishesAndSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	s := newStandalone(t)
	s.extraArgs = []string{"--disk-usage-threshold", "0.000001"}
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client(client.OperationTimeout(3 * time.Second))
	_, bs, err := c.Admin().Cluster(ctx)
	if err != nil || len(bs) != 1 || !bs[0].ReadOnly {
		t.Fatalf("cluster bookies %+v %v: want the one bookie read-only", bs, err)
	}
	resp, err := http.Get("http://" + s.http + "/console")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "read-only (disk nearly full)") {
		t.Fatalf("the console does not show the bookie read-only:\n%s", page)
	}
	_, err = c.NewProducer(ctx, "full-disk")
	if err == nil || !errcode.IsRetriable(err) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a producer on a standalone whose only bookie is read-only: %v, want a retriable error saying no bookie is writable", err)
	}
	// With a dead seed beside the live one, in either order, the node's
	// answer is what the caller sees, not the dead seed's "connection
	// refused".
	dead := freeAddrs(t, 1)[0]
	for _, seeds := range []string{dead + "," + s.grpc, s.grpc + "," + dead} {
		c2, err := client.New("strata://"+seeds, client.OperationTimeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c2.NewProducer(ctx, "full-disk")
		c2.Close()
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("seeds %s: %v, want the live node's answer that no bookie is writable", seeds, err)
		}
	}
}
