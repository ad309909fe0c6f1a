package serving_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// realCluster is embedded etcd, three in-process bookies over loopback gRPC
// and serving nodes built with serving.New.
type realCluster struct {
	t         testing.TB
	endpoints []string
}

func newRealCluster(t testing.TB, bookies int) *realCluster {
	eps := metatest.StartEtcd(t)
	store := metatest.OpenStoreAt(t, eps)
	for i := 0; i < bookies; i++ {
		startBookie(t, store)
	}
	return &realCluster{t: t, endpoints: eps}
}

func startBookie(t testing.TB, store *metadata.Store) {
	b, err := bookie.Open(bookie.Config{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(b.ServerOptions()...)
	b.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	sess, err := store.NewSession(context.Background(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := store.RegisterBookie(context.Background(), sess, metadata.BookieInfo{ID: addr, Addr: addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sess.Close()
		srv.Stop()
		_ = b.Close()
	})
}

// start runs a serving node with its own store connection and ledger client,
// as a separate process would have.
func (c *realCluster) start(id string) *testNode {
	return c.startWith(id, func(cfg *serving.Config) { cfg.MaxLedgerEntries = 10 })
}

func (c *realCluster) startWith(id string, tweak func(*serving.Config)) *testNode {
	t := c.t
	store := metatest.OpenStoreAt(t, c.endpoints)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serving.Config{NodeID: id, GRPCAddr: lis.Addr().String(), Ensemble: 3, WriteQuorum: 2, AckQuorum: 2,
		CursorFlushInterval: 50 * time.Millisecond}
	tweak(&cfg)
	n, err := serving.New(cfg, store, lc, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return serveNode(t, n, lis, lc.Close)
}

func TestRealClusterProducesAndConsumesInOrderAcrossLedgerRolls(t *testing.T) {
	c := newRealCluster(t, 3)
	n := c.start("a")
	const topic = "public/default/real"
	p := mustProducer(t, n, topic, "p1")
	for i := uint64(1); i <= 35; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	checkInOrder(t, cs.receive(35), 1, 35)
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetLedgers()) < 4 {
		t.Fatalf("want the ledger to roll every 10 entries, got %d ledgers", len(st.GetLedgers()))
	}
}

func TestRealClusterTakeoverFencesTheOldOwnerAndLosesNothingAcknowledged(t *testing.T) {
	c := newRealCluster(t, 3)
	a := c.start("a")
	b := c.start("b")
	const topic = "public/default/takeover"
	p := mustProducer(t, a, topic, "p1")
	for i := uint64(1); i <= 15; i++ {
		p.mustSend(msg(i))
	}
	a.srv.Stop()
	a.Kill() // crash: nothing closed or released; its lease ends
	var p2 *prod
	eventually(t, "b takes over", func() error {
		var err error
		p2, err = openProducer(t, b, topic, "p1")
		return err
	})
	if got := p2.opened.GetLastSequenceId(); got != 15 {
		t.Fatalf("dedup state after takeover: %d, want 15", got)
	}
	if r := p2.mustSend(msg(15)); !r.GetDuplicate() {
		t.Fatalf("resend written twice: %v", r)
	}
	for i := uint64(16); i <= 20; i++ {
		p2.mustSend(msg(i))
	}
	cs := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	checkInOrder(t, cs.receive(20), 1, 20)
}

func TestServeWiresTheNodeHealthAndMetrics(t *testing.T) {
	eps := metatest.StartEtcd(t)
	store := metatest.OpenStoreAt(t, eps)
	startBookie(t, store)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	t.Cleanup(func() { _ = lc.Close() })
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serving.Serve(ctx, serving.ServeOptions{Config: serving.Config{NodeID: "solo"}, GRPC: glis, HTTP: hlis,
			Store: store, Ledgers: lc, Registry: prometheus.NewRegistry()})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + hlis.Addr().String()
	eventually(t, "ready", func() error { return httpOK(base + "/readyz") })
	conn, err := grpc.NewClient(glis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := &testNode{client: servingpb.NewBrokerClient(conn)}
	mustSubscribe(t, n, &servingpb.Subscribe{Topic: "served", Subscription: "s", Type: servingpb.SubscriptionType_EXCLUSIVE})
	p := mustProducer(t, n, "served", "p")
	p.mustSend(msg(1))
	body := httpBody(t, base+"/metrics")
	for _, want := range []string{"strata_publish_latency_seconds_count 1", "strata_bookie_write_latency_seconds", "strata_owned_topics 1"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	// The backlog per subscription, in entries and bytes, is refreshed
	// with the cursors (every CursorFlushInterval).
	sub := `{subscription="s",topic="public/default/served"}`
	eventually(t, "backlog metrics", func() error {
		body := httpBody(t, base+"/metrics")
		if !strings.Contains(body, "strata_subscription_backlog_entries"+sub+" 1\n") {
			return fmt.Errorf("no backlog of 1 entry for s")
		}
		if !strings.Contains(body, "strata_subscription_backlog_bytes"+sub+" ") || strings.Contains(body, "strata_subscription_backlog_bytes"+sub+" 0\n") {
			return fmt.Errorf("no backlog bytes above 0 for s")
		}
		return nil
	})
	// So are the entries a shared subscription holds back (delayed).
	d := mustSubscribe(t, n, &servingpb.Subscribe{Topic: "served", Subscription: "d", Type: servingpb.SubscriptionType_SHARED})
	d.flow(10)
	p.mustSend(delayedMsg(2, time.Now().Add(time.Hour)))
	eventually(t, "delayed metric", func() error {
		if want := `strata_subscription_delayed_entries{subscription="d",topic="public/default/served"} 1` + "\n"; !strings.Contains(httpBody(t, base+"/metrics"), want) {
			return fmt.Errorf("no %q", want)
		}
		return nil
	})
}

func httpOK(url string) error {
	r, err := http.Get(url)
	if err != nil {
		return err
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, r.Status)
	}
	return nil
}

func httpBody(t *testing.T, url string) string {
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// Ledger ids come from ranges reserved per metadata store, and a topic that
// moves to a node with an older range used to get a smaller ledger id than
// its previous ledger, which the SDK (comparing message ids as Pulsar's
// are) took for messages already seen. The new owner's ledger is now above
// the topic's newest, and order and acknowledgements follow the managed
// ledger across the move.
func TestLedgerIDsKeepGrowingWhenATopicMovesToANodeWithAnOlderRange(t *testing.T) {
	c := newRealCluster(t, 3)
	b := c.start("b")
	mustProducer(t, b, "public/default/other", "x").mustSend(msg(1)) // b's store reserves the first id range
	cNode := c.start("c")
	const topic = "public/default/backwards"
	p := mustProducer(t, cNode, topic, "p1")
	var first *servingpb.SendReceipt
	for i := uint64(1); i <= 5; i++ {
		r := p.mustSend(msg(i))
		if first == nil {
			first = r
		}
	}
	cs := mustSubscribe(t, cNode, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	got := cs.receive(5)
	for _, m := range got {
		cs.ack(m.GetId())
	}
	store := metatest.OpenStoreAt(t, c.endpoints)
	last := got[4].GetId()
	eventually(t, "acks persisted", func() error {
		cur, err := store.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			return err
		}
		if cur.MarkDelete != (ids.Position{Ledger: ids.LedgerID(last.GetLedger()), Entry: ids.EntryID(last.GetEntry())}) {
			return fmt.Errorf("mark-delete %v", cur.MarkDelete)
		}
		return nil
	})
	cNode.srv.Stop()
	cNode.Kill()
	var p2 *prod
	eventually(t, "b takes over", func() error {
		var err error
		p2, err = openProducer(t, b, topic, "p1")
		return err
	})
	r6 := p2.mustSend(msg(6))
	if r6.GetLedger() <= first.GetLedger() {
		t.Fatalf("the new owner's ledger %d is not above the previous owner's %d", r6.GetLedger(), first.GetLedger())
	}
	for i := uint64(7); i <= 10; i++ {
		p2.mustSend(msg(i))
	}
	cs2 := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs2.flow(100)
	checkInOrder(t, cs2.receive(5), 6, 10)
}

func TestRealClusterOwnerWhoseLedgerIsFencedCannotAppend(t *testing.T) {
	c := newRealCluster(t, 3)
	a := c.start("a")
	const topic = "public/default/fenced-real"
	p := mustProducer(t, a, topic, "p1")
	r := p.mustSend(msg(1))
	// Another writer's recovery fences the ledger on the bookies.
	store := metatest.OpenStoreAt(t, c.endpoints)
	other := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	t.Cleanup(func() { _ = other.Close() })
	if _, err := other.Recover(ctxT(t), ids.LedgerID(r.GetLedger()), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.send(msg(2)); errcode.CodeOf(err) != errcode.TopicFenced {
		t.Fatalf("append after fencing: got %v, want TOPIC_FENCED", err)
	}
	var p2 *prod
	eventually(t, "reload", func() error {
		var err error
		p2, err = openProducer(t, a, topic, "p1")
		return err
	})
	if r2 := p2.mustSend(msg(2)); r2.GetLedger() == r.GetLedger() {
		t.Fatalf("wrote to the fenced ledger %d again", r.GetLedger())
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(2), 1, 2)
}

func TestRealClusterCreatesAPartitionedTopicWithItsPartitions(t *testing.T) {
	c := newRealCluster(t, 3)
	n := c.start("a")
	if _, err := n.client.CreateTopic(ctxT(t), &servingpb.CreateTopicRequest{Topic: "public/default/parted", Partitions: 3}); err != nil {
		t.Fatalf("create partitioned topic on etcd: %v", err)
	}
	got, err := n.client.GetTopic(ctxT(t), &servingpb.GetTopicRequest{Topic: "public/default/parted"})
	if err != nil || got.GetTopic().GetPartitions() != 3 {
		t.Fatalf("GetTopic = %v, %v; want 3 partitions", got, err)
	}
	for i := 0; i < 3; i++ {
		p := mustProducer(t, n, fmt.Sprintf("public/default/parted-partition-%d", i), "p")
		p.mustSend(msg(1))
	}
}
