package serving_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// heldMeta is serving.Meta whose next managed-ledger write, once armed,
// waits until a cursor is deleted (what a topic deletion does right after
// it drops the topic) before it is stored.
type heldMeta struct {
	serving.Meta
	armed    atomic.Bool
	held     chan []ids.LedgerID // the ledgers of the held write, once it waits
	release  chan struct{}
	released sync.Once
	stored   chan error // the held write's answer
}

func (m *heldMeta) PutManagedLedger(ctx context.Context, ml *metadata.ManagedLedger) error {
	if !m.armed.CompareAndSwap(true, false) {
		return m.Meta.PutManagedLedger(ctx, ml)
	}
	var ls []ids.LedgerID
	for _, li := range ml.Ledgers {
		ls = append(ls, li.ID)
	}
	m.held <- ls
	<-m.release
	// The write reached etcd before the drop cancelled the writer's
	// context; only its answer comes after.
	err := m.Meta.PutManagedLedger(context.WithoutCancel(ctx), ml)
	m.stored <- err
	return err
}

func (m *heldMeta) DeleteCursor(ctx context.Context, topic, sub string) error {
	m.released.Do(func() { close(m.release) })
	return m.Meta.DeleteCursor(ctx, topic, sub)
}

// TestDeletingATopicDeletesTheLedgerARollAddedWhileItDropped: on a real
// cluster (etcd, three bookies), a topic deleted while a ledger roll is
// recording its new ledger deletes that ledger too, rather than leaving
// it on the bookies and in etcd, named by no topic, for good.
func TestDeletingATopicDeletesTheLedgerARollAddedWhileItDropped(t *testing.T) {
	c := newRealCluster(t, 3)
	store := metatest.OpenStoreAt(t, c.endpoints)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	m := &heldMeta{Meta: serving.StoreMeta(store), held: make(chan []ids.LedgerID, 1), release: make(chan struct{}),
		stored: make(chan error, 1)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serving.Config{NodeID: "a", GRPCAddr: lis.Addr().String(), Ensemble: 3, WriteQuorum: 2, AckQuorum: 2,
		CursorFlushInterval: 50 * time.Millisecond, MaxLedgerEntries: 2}
	node, err := serving.NewNode(cfg, m, serving.LedgerClient(lc), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, node, lis, lc.Close)
	const topic = "public/default/deleted-while-rolling"
	p := mustProducer(t, n, topic, "p")
	// Its cursor is what the deletion deletes right after the drop.
	if _, err := n.client.CreateSubscription(ctxT(t), &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "s",
		InitialPosition: servingpb.InitialPosition_EARLIEST}); err != nil {
		t.Fatal(err)
	}
	m.armed.Store(true)
	p.mustSend(msg(1))
	p.mustSend(msg(2)) // fills the ledger: the roll's write of the next one waits
	var rolled []ids.LedgerID
	select {
	case rolled = <-m.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the roll did not write the managed ledger")
	}
	if _, err := n.client.DeleteTopic(ctxT(t), &servingpb.DeleteTopicRequest{Topic: topic, Force: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.stored:
	case <-time.After(20 * time.Second):
		t.Fatal("the roll's write of the managed ledger did not end")
	}
	// A deletion answers once it deleted what it will delete.
	for _, id := range rolled {
		if l, err := store.GetLedger(ctxT(t), id); !errors.Is(err, metadata.ErrNotFound) {
			t.Fatalf("ledger %d of the deleted topic: %+v, %v; want it gone", id, l, err)
		}
	}
}

// failingCursorDeletes is serving.Meta whose cursor deletions fail while
// fail is set, as they do while etcd is out of reach.
type failingCursorDeletes struct {
	serving.Meta
	fail atomic.Bool
}

func (m *failingCursorDeletes) DeleteCursor(ctx context.Context, topic, sub string) error {
	if m.fail.Load() {
		return errors.New("etcd out of reach (test)")
	}
	return m.Meta.DeleteCursor(ctx, topic, sub)
}

// TestASubscriptionWhoseCursorDeletionFailedStaysWithItsBacklog: a
// deletion of a subscription that could not delete its stored cursor
// answers an error and leaves the subscription as it was: listed, its
// backlog still held for it and delivered to its next consumer. Removed
// from the node all the same, its backlog no longer held back trims, and
// the cursor left in etcd came back after a move, past messages trimmed
// meanwhile.
func TestASubscriptionWhoseCursorDeletionFailedStaysWithItsBacklog(t *testing.T) {
	c := newRealCluster(t, 1)
	store := metatest.OpenStoreAt(t, c.endpoints)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	m := &failingCursorDeletes{Meta: serving.StoreMeta(store)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serving.Config{NodeID: "a", GRPCAddr: lis.Addr().String(), Ensemble: 1, WriteQuorum: 1, AckQuorum: 1}
	node, err := serving.NewNode(cfg, m, serving.LedgerClient(lc), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, node, lis, lc.Close)
	const topic = "public/default/undeleted-subscription"
	if _, err := n.client.CreateSubscription(ctxT(t), &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "s",
		InitialPosition: servingpb.InitialPosition_EARLIEST}); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, n, topic, "p")
	for i := uint64(1); i <= 5; i++ {
		p.mustSend(msg(i))
	}
	m.fail.Store(true)
	if _, err := n.client.DeleteSubscription(ctxT(t), &servingpb.DeleteSubscriptionRequest{Topic: topic, Subscription: "s"}); err == nil {
		t.Fatal("a deletion that could not delete the stored cursor answered success")
	}
	m.fail.Store(false)
	stats, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.GetSubscriptions()) != 1 || stats.GetSubscriptions()[0].GetBacklog() != 5 {
		t.Fatalf("after the failed deletion: subscriptions %v; want s with its backlog of 5", stats.GetSubscriptions())
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	defer cs.cancel()
	cs.flow(10)
	checkInOrder(t, cs.receive(5), 1, 5)
}
