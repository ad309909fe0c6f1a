package serving_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/client"
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
	r2 := r.GetReceipt()
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
	if r := p2.mustSend(msg(2)); !r.GetDuplicate() || posOf(r) != posOf(r2) {
		t.Fatalf("resend of 2: %v; first written at %v", r, posOf(r2))
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

// placedOn answers the first topic name prefix-i that the placement gives
// node id among ids.
func placedOn(t *testing.T, id string, nodes []string, prefix string) string {
	t.Helper()
	for i := range 64 {
		if name := fmt.Sprintf("public/default/%s-%d", prefix, i); serving.Placement(name, nodes) == id {
			return name
		}
	}
	t.Fatalf("the placement gives %s none of 64 topics: pick another prefix", id)
	return ""
}

// TestARebalanceMoveHandsTheLedgerOverClosedAndTheNewOwnerNeitherRecoversNorReadsIt:
// on etcd and real bookies, a topic moved by a rebalance while a producer
// pipelines batches: the old owner answers every batch it wrote before it
// ends the stream, and records its ledger closed with the producers'
// sequence ids, so the new owner loads the topic without fencing,
// recovering or reading that ledger (it used to read all of it again, the
// 0.6-1.9 s stall of a move). Batches resent to the new owner whose
// receipts the client lost are answered as duplicates at their original
// positions (read back from the old ledger's last entries only), the
// others are written, and a consumer sees every message once, in order.
func TestARebalanceMoveHandsTheLedgerOverClosedAndTheNewOwnerNeitherRecoversNorReadsIt(t *testing.T) {
	c := newRealCluster(t, 3)
	cfg := func(cfg *serving.Config) { cfg.MaxLedgerEntries = 10_000; cfg.RebalanceInterval = time.Hour }
	a := c.startWith("a", cfg)
	topic := placedOn(t, "b", []string{"a", "b"}, "moving")
	p := mustProducer(t, a, topic, "p1")
	receipts := map[uint64]*servingpb.SendReceipt{}
	for i := uint64(1); i <= 20; i++ {
		receipts[i] = p.mustSend(msg(i))
	}
	b := c.startWith("b", cfg)

	// Batches go on being sent while the move starts, so that some are in
	// flight when it does, some arrive while it drains, and some find the
	// stream ended.
	const last = 1000
	var wg sync.WaitGroup
	move := make(chan struct{})
	var moveOnce sync.Once
	startMove := func() { moveOnce.Do(func() { close(move) }) }
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer startMove()
		for i := uint64(21); i <= last; i++ {
			if i == 100 {
				startMove()
			}
			if p.stream.Send(sendReq(i)) != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		<-move
		if n := a.Rebalance(time.Now().Add(3 * time.Hour)); n != 1 {
			t.Errorf("the round moved %d topics, want 1", n)
		}
	}()
	hi := uint64(20)
	for {
		r, err := p.stream.Recv()
		if err != nil {
			var e *errcode.Error
			if err = errcode.FromError(err); !errors.As(err, &e) || e.Code != errcode.NotOwner || e.Redirect != b.addr {
				t.Fatalf("the old owner ended the stream with %v; want NOT_OWNER to %s", err, b.addr)
			}
			break
		}
		rc := r.GetReceipt()
		if rc == nil || rc.GetDuplicate() || rc.GetLastSequenceId() != hi+1 {
			t.Fatalf("after receipt %d: %v", hi, r)
		}
		hi++
		receipts[hi] = rc
	}
	wg.Wait()

	t.Logf("the old owner answered up to %d of %d", hi, last)
	// The new owner knows the last batch persisted: the one last answered.
	var p2 *prod
	eventually(t, "the producer at the new owner", func() (err error) {
		p2, err = openProducer(t, b, topic, "p1")
		return err
	})
	if got := p2.opened.GetLastSequenceId(); got != int64(hi) {
		t.Fatalf("the new owner's last sequence id is %d; the old owner answered up to %d", got, hi)
	}
	if rec, replayed := b.LoadStats(); rec != 0 || replayed != 0 {
		t.Fatalf("the new owner recovered %d ledgers and read %d entries back, want none", rec, replayed)
	}
	ml, err := metatestStore(t, c).GetManagedLedger(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	old := ml.Ledgers[len(ml.Ledgers)-2]
	if !old.Closed || old.ID != ids.LedgerID(receipts[hi].GetLedger()) || old.Entries != receipts[hi].GetEntry()+1 ||
		old.LastPublishTime != receipts[hi].GetPublishTimeUnixNano() || ml.Producers["p1"] != int64(hi) {
		t.Fatalf("the managed ledger records the old ledger as %+v and producers %v; last receipt %v", old, ml.Producers, receipts[hi])
	}

	// As if the receipts of the last five had been lost: their resends are
	// duplicates at the positions first answered.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := hi - 4; i <= last; i++ {
			if p2.stream.Send(sendReq(i)) != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	for i := hi - 4; i <= last; i++ {
		resp, err := p2.stream.Recv()
		r := resp.GetReceipt()
		if err != nil || r == nil || r.GetLastSequenceId() != i {
			t.Fatalf("resend of %d: %v %v", i, resp, err)
		}
		if i <= hi && (!r.GetDuplicate() || posOf(r) != posOf(receipts[i])) {
			t.Fatalf("resend of %d: %v; first written at %v", i, r, posOf(receipts[i]))
		}
		if i > hi && r.GetDuplicate() {
			t.Fatalf("batch %d, never answered by the old owner, answered as a duplicate: %v", i, r)
		}
		receipts[i] = r
	}
	if earlier := b.EarlierReceiptEntries(); earlier == 0 || earlier > 100 {
		t.Fatalf("the new owner read %d entries back for the receipts of 5 resends, want one read of at most 100", earlier)
	}
	cs := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(last + 10)
	got := cs.receive(last)
	checkInOrder(t, got, 1, last)
	for _, m := range got {
		if r := receipts[m.GetSequenceId()]; posOf(r) != (ids.Position{Ledger: ids.LedgerID(m.GetId().GetLedger()), Entry: ids.EntryID(m.GetId().GetEntry())}) {
			t.Fatalf("message %d stored at %v, answered at %v", m.GetSequenceId(), m.GetId(), posOf(r))
		}
	}
}

// TestAClientThatComesWhileATopicUnloadsIsSentWhereThePlacementPutsIt: a
// producer opening at the owner while it unloads the topic waits for the
// unload and is then sent to the node a lookup now picks (here the other
// one), rather than answered TOPIC_FENCED at once, which sent clients into
// their backoff past the end of the unload, or loading the topic back.
func TestAClientThatComesWhileATopicUnloadsIsSentWhereThePlacementPutsIt(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	topic := placedOn(t, "b", []string{"a", "b"}, "drain-open")
	p := mustProducer(t, a, topic, "p")
	p.mustSend(msg(1))
	b := c.start("b", nil)
	done, resume := stalledUnload(t, c, a, p, topic, 2)
	opened := make(chan error, 1)
	go func() {
		q, err := openProducer(t, a, topic, "q")
		if err == nil {
			q.close()
		}
		opened <- err
	}()
	// The unload cannot end while the append is stalled: the open has come
	// during it once it waits in topicFor (or has failed already, as it
	// used to).
	eventually(t, "the open waiting for the unload", func() error {
		select {
		case err := <-opened:
			t.Fatalf("a producer opening during the unload was answered before its end: %v", err)
		default:
		}
		buf := make([]byte, 1<<20)
		if !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("serving.(*Node).topicFor(")) {
			return errors.New("no request in topicFor")
		}
		return nil
	})
	resume()
	var e *errcode.Error
	if err := <-opened; !errors.As(err, &e) || e.Code != errcode.NotOwner || e.Redirect != b.addr {
		t.Fatalf("a producer opening during the unload: %v; want NOT_OWNER to %s", err, b.addr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := mustProducer(t, b, topic, "p").opened.GetLastSequenceId(); got != 2 {
		t.Fatalf("last sequence id %d at b, want 2", got)
	}
}

// TestSDKProducerFollowsAMoveAndAnUnloadLosingNothingAndNoLoadRecovers: on
// etcd and real bookies, an SDK producer sending all along while its topic
// moves to a node that joined (rebalance) and is then unloaded there
// (admin): every message is acknowledged once, consumed once in order at
// the id its receipt gave, and neither load on the new node recovered or
// read a ledger.
func TestSDKProducerFollowsAMoveAndAnUnloadLosingNothingAndNoLoadRecovers(t *testing.T) {
	c := newRealCluster(t, 3)
	cfg := func(cfg *serving.Config) { cfg.MaxLedgerEntries = 50; cfg.RebalanceInterval = time.Hour }
	a := c.startWith("a", cfg)
	topic := placedOn(t, "b", []string{"a", "b"}, "sdk-move")
	ctx := ctxT(t)
	cl, err := client.New("strata://"+a.addr, client.OperationTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(ctx, topic, client.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mu sync.Mutex
	var acked []client.MessageID // by message number
	var failed []error
	acks := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	stop, stopped := make(chan struct{}), make(chan int)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		sent := 0
		for {
			select {
			case <-stop:
				stopped <- sent
				return
			case <-tick.C:
			}
			for range 2 {
				i := sent
				sent++
				p.SendAsync(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "m-%06d", i)}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed = append(failed, err)
						return
					}
					if len(acked) != i {
						failed = append(failed, fmt.Errorf("message %d acknowledged after %d others", i, len(acked)))
					}
					acked = append(acked, id)
				})
			}
		}
	}()
	ackedPast := func(what string, n int) {
		t.Helper()
		eventually(t, what, func() error {
			if got := acks(); got < n {
				return fmt.Errorf("%d acknowledged", got)
			}
			return nil
		})
	}
	ackedPast("sends to a", 200)
	b := c.startWith("b", cfg)
	if n := a.Rebalance(time.Now().Add(3 * time.Hour)); n != 1 {
		t.Fatalf("the round moved %d topics, want 1", n)
	}
	ackedPast("sends after the move", acks()+200)
	if _, err := b.client.UnloadTopic(ctx, &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	ackedPast("sends after the unload", acks()+200)
	close(stop)
	sent := <-stopped
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(failed) > 0 || len(acked) != sent {
		t.Fatalf("%d of %d sends acknowledged; failures: %v", len(acked), sent, failed)
	}
	mu.Unlock()
	if rec, replayed := b.LoadStats(); rec != 0 || replayed != 0 {
		t.Fatalf("the loads on b recovered %d ledgers and read %d entries back, want none", rec, replayed)
	}
	// A last message after them all: a message written twice would show
	// as a shift before it.
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("end")}); err != nil {
		t.Fatal(err)
	}
	cs := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(uint32(sent + 10))
	got := cs.receive(sent + 1)
	if end := got[len(got)-1]; string(end.GetPayload()) != "end" {
		t.Fatalf("the last message consumed is %q, want the one sent last", end.GetPayload())
	}
	for i, m := range got[:sent] {
		id := m.GetId()
		if string(m.GetPayload()) != fmt.Sprintf("m-%06d", i) ||
			(client.MessageID{Ledger: id.GetLedger(), Entry: id.GetEntry(), Batch: id.GetBatch()}) != acked[i] {
			t.Fatalf("message %d: %q at %v, acknowledged at %v", i, m.GetPayload(), id, acked[i])
		}
	}
}
