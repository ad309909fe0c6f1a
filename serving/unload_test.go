package serving_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

func sendReq(seq uint64) *servingpb.ProduceRequest {
	return &servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Send{Send: &servingpb.SendBatch{Messages: []*servingpb.Message{msg(seq)}}}}
}

func posOf(r *servingpb.SendReceipt) ids.Position {
	return ids.Position{Ledger: ids.LedgerID(r.GetLedger()), Entry: ids.EntryID(r.GetEntry())}
}

// metatestStore opens a store connection to c's etcd.
func metatestStore(t *testing.T, c *realCluster) *metadata.Store {
	return metatest.OpenStoreAt(t, c.endpoints)
}

// startNode runs a serving node over meta (which wraps store) and a ledger
// client of its own on store, with startWith's settings.
func (c *realCluster) startNode(id string, meta serving.Meta, store *metadata.Store) *testNode {
	t := c.t
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := serving.Config{NodeID: id, GRPCAddr: lis.Addr().String(), Ensemble: 3, WriteQuorum: 2, AckQuorum: 2,
		CursorFlushInterval: 50 * time.Millisecond}
	n, err := serving.NewNode(cfg, meta, serving.LedgerClient(lc), nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return serveNode(t, n, lis, lc.Close)
}

// casLoser is a Meta whose next store of a managed ledger recording its
// last ledger closed (what only a graceful unload stores) loses its
// compare-and-swap to another update made just before.
type casLoser struct {
	serving.Meta
	mu   sync.Mutex
	lost bool
}

func (m *casLoser) PutManagedLedger(ctx context.Context, ml *metadata.ManagedLedger) error {
	m.mu.Lock()
	lose := !m.lost && len(ml.Ledgers) > 0 && ml.Ledgers[len(ml.Ledgers)-1].Closed
	m.lost = m.lost || lose
	m.mu.Unlock()
	if lose {
		cur, err := m.Meta.GetManagedLedger(ctx, ml.Topic)
		if err != nil {
			return err
		}
		if err := m.Meta.PutManagedLedger(ctx, cur); err != nil {
			return err
		}
	}
	return m.Meta.PutManagedLedger(ctx, ml)
}

func (m *casLoser) didLose() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lost
}

// TestAnUnloadWhoseRecordOfTheClosedLedgerLosesItsCASLeavesItToBeRecovered:
// when the managed ledger changed under the unloading owner, its record of
// the closed ledger fails, and the next owner recovers and reads the
// ledger as after a crash: nothing lost, resends still deduplicated at
// their original positions.
func TestAnUnloadWhoseRecordOfTheClosedLedgerLosesItsCASLeavesItToBeRecovered(t *testing.T) {
	c := newRealCluster(t, 3)
	store := metatestStore(t, c)
	meta := &casLoser{Meta: serving.StoreMeta(store)}
	a := c.startNode("a", meta, store)
	const topic = "public/default/cas-lost"
	p := mustProducer(t, a, topic, "p1")
	receipts := map[uint64]*servingpb.SendReceipt{}
	for i := uint64(1); i <= 10; i++ {
		receipts[i] = p.mustSend(msg(i))
	}
	if _, err := a.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if !meta.didLose() {
		t.Fatal("the unload stored no managed ledger with its ledger closed")
	}
	p2 := mustProducer(t, a, topic, "p1")
	if got := p2.opened.GetLastSequenceId(); got != 10 {
		t.Fatalf("last sequence id %d after the reload, want 10", got)
	}
	if rec, replayed := a.LoadStats(); rec != 1 || replayed != 10 {
		t.Fatalf("the reload recovered %d ledgers and read %d entries back, want 1 and 10", rec, replayed)
	}
	for i := uint64(8); i <= 12; i++ {
		r := p2.mustSend(msg(i))
		if i <= 10 && (!r.GetDuplicate() || posOf(r) != posOf(receipts[i])) {
			t.Fatalf("resend of %d: %v; first written at %v", i, r, posOf(receipts[i]))
		}
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	checkInOrder(t, cs.receive(12), 1, 12)
}

// unloadAsync starts an admin unload of topic at n and answers its result.
func unloadAsync(t *testing.T, n *testNode, topic string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic})
		done <- err
	}()
	return done
}

// stalledUnload sends msg(seq) on p with the ledger's appends stalled,
// waits until it is in flight, starts an unload of topic and waits until
// it drains; it answers the unload's result and the function resuming the
// appends.
func stalledUnload(t *testing.T, c *cluster, n *testNode, p *prod, topic string, seq uint64) (<-chan error, func()) {
	t.Helper()
	var once sync.Once
	stalled := c.memL.Stall()
	resume := func() { once.Do(stalled) }
	t.Cleanup(resume)
	if err := p.stream.Send(sendReq(seq)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the batch in flight", func() error {
		if got := n.InFlight(topic); got != 1 {
			return fmt.Errorf("%d appends in flight", got)
		}
		return nil
	})
	done := unloadAsync(t, n, topic)
	eventually(t, "the unload draining", func() error {
		if !n.Draining(topic) {
			return errors.New("not draining")
		}
		return nil
	})
	return done, resume
}

// TestAnUnloadAnswersTheBatchInFlightAndLeavesOneThatArrivesMeanwhileToTheNextLoad:
// a batch in flight when an unload starts is answered before the stream
// ends; a batch that arrives while the unload waits for it is neither
// written nor answered, and goes to the next load, which finds the ledger
// recorded closed (no recovery) and answers a resend of the first at its
// original position.
func TestAnUnloadAnswersTheBatchInFlightAndLeavesOneThatArrivesMeanwhileToTheNextLoad(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/drain"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	done, resume := stalledUnload(t, c, n, p, topic, 2)
	if err := p.stream.Send(sendReq(3)); err != nil {
		t.Fatalf("the stream ended before the batch in flight was answered: %v", err)
	}
	resume()
	r, err := p.stream.Recv()
	if err != nil || r.GetReceipt().GetLastSequenceId() != 2 || r.GetReceipt().GetDuplicate() {
		t.Fatalf("the batch in flight: %v %v; want its receipt", r, err)
	}
	if r, err := p.stream.Recv(); errcode.CodeOf(errcode.FromError(err)) != errcode.NotOwner {
		t.Fatalf("after the receipt: %v %v; want the stream ended with NOT_OWNER", r, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if li := ml.Ledgers[len(ml.Ledgers)-1]; err != nil || !li.Closed || li.Entries != 2 || ml.Producers["p"] != 2 {
		t.Fatalf("managed ledger after the unload: %+v %v", ml, err)
	}
	p2 := mustProducer(t, n, topic, "p")
	if got := p2.opened.GetLastSequenceId(); got != 2 {
		t.Fatalf("last sequence id %d after the reload, want 2", got)
	}
	if rec, replayed := n.LoadStats(); rec != 0 || replayed != 0 {
		t.Fatalf("the reload recovered %d ledgers and read %d entries back, want none", rec, replayed)
	}
	if r := p2.mustSend(msg(3)); r.GetDuplicate() {
		t.Fatalf("batch 3, never answered, answered as a duplicate: %v", r)
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(3), 1, 3)
}

// TestAnAppendFailingWhileAnUnloadDrainsLeavesTheLedgerToBeRecovered: when
// the append in flight fails (the ledger fenced meanwhile), the unload
// does not record the ledger closed; the next load recovers it, and the
// batch, never answered, is written once when resent.
func TestAnAppendFailingWhileAnUnloadDrainsLeavesTheLedgerToBeRecovered(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/drain-fails"
	p := mustProducer(t, n, topic, "p")
	r1 := p.mustSend(msg(1))
	done, resume := stalledUnload(t, c, n, p, topic, 2)
	c.memL.Fence(ids.LedgerID(r1.GetLedger()))
	resume()
	if r, err := p.stream.Recv(); err == nil {
		t.Fatalf("the failed batch was answered: %v", r)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || ml.Ledgers[len(ml.Ledgers)-1].Closed {
		t.Fatalf("managed ledger after the failed unload: %+v %v; want its ledger left open", ml, err)
	}
	p2 := mustProducer(t, n, topic, "p")
	if got := p2.opened.GetLastSequenceId(); got != 1 {
		t.Fatalf("last sequence id %d after the reload, want 1", got)
	}
	if rec, _ := n.LoadStats(); rec != 1 {
		t.Fatalf("the reload recovered %d ledgers, want 1", rec)
	}
	if r := p2.mustSend(msg(2)); r.GetDuplicate() {
		t.Fatalf("batch 2, never written, answered as a duplicate: %v", r)
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(2), 1, 2)
}
