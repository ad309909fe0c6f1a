package serving_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestABatchRefusedAsQueueFullIsNotOvertakenByALaterBatchOfItsStream:
// PRODUCER_QUEUE_FULL is retriable, so a producer that gets it for a batch
// ends its stream and resends that batch and every later one on the next.
// A later batch that the node wrote meanwhile (its stream still open, the
// pending count gone down) made the resent batch look like a duplicate:
// it was answered at no position and never written, a loss and a reorder.
// The node now refuses every later batch of the stream too.
func TestABatchRefusedAsQueueFullIsNotOvertakenByALaterBatchOfItsStream(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxPendingPerProducer = 1 })
	const topic = "public/default/queue-full"
	p := mustProducer(t, n, topic, "p")
	var once sync.Once
	stalled := c.memL.Stall()
	resume := func() { once.Do(stalled) }
	t.Cleanup(resume)
	for seq := uint64(1); seq <= 2; seq++ {
		if err := p.stream.Send(sendReq(seq)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := p.stream.Recv()
	if e := r.GetError(); err != nil || e == nil || errcode.Code(e.GetCode()) != errcode.ProducerQueueFull || e.GetLastSequenceId() != 2 {
		t.Fatalf("batch 2 with batch 1 pending: %v %v; want PRODUCER_QUEUE_FULL", r, err)
	}
	resume()
	if r, err := p.stream.Recv(); err != nil || r.GetReceipt().GetLastSequenceId() != 1 {
		t.Fatalf("batch 1: %v %v; want its receipt", r, err)
	}
	// Batch 3 was on its way before the producer read the refusal of 2.
	if err := p.stream.Send(sendReq(3)); err != nil {
		t.Fatal(err)
	}
	r, err = p.stream.Recv()
	if err == nil && r.GetReceipt() != nil {
		t.Fatalf("batch 3 written after batch 2 was refused on its stream: %v", r)
	}
	p.close()
	p2 := mustProducer(t, n, topic, "p")
	for seq := uint64(2); seq <= 3; seq++ {
		if r := p2.mustSend(msg(seq)); r.GetDuplicate() {
			t.Fatalf("resend of batch %d, never written, answered as a duplicate: %v", seq, r)
		}
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(3), 1, 3)
}

// TestSDKProducerOverTheNodesPendingLimitLosesAndReordersNothing: on etcd
// and real bookies, an SDK producer pipelining more batches than the node
// lets one producer have pending gets PRODUCER_QUEUE_FULL again and again,
// reconnects and resends; every message is acknowledged once, at the
// position it was written, and consumed once, in order.
func TestSDKProducerOverTheNodesPendingLimitLosesAndReordersNothing(t *testing.T) {
	c := newRealCluster(t, 3)
	a := c.startWith("a", func(cfg *serving.Config) { cfg.MaxPendingPerProducer = 2 })
	const topic = "public/default/sdk-queue-full"
	ctx := ctxT(t)
	cl, err := client.New("strata://"+a.addr, client.OperationTimeout(20*time.Second),
		client.ReconnectBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer(ctx, topic, client.ProducerLinger(0), client.ProducerBatchMaxMessages(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const sent = 300
	var (
		mu     sync.Mutex
		acked  []client.MessageID
		failed []error
	)
	for i := range sent {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "m-%06d", i)}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed = append(failed, err)
			case len(acked) != i:
				failed = append(failed, fmt.Errorf("message %d acknowledged after %d others", i, len(acked)))
			default:
				acked = append(acked, id)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(failed) > 0 || len(acked) != sent {
		t.Fatalf("%d of %d sends acknowledged; failures: %v", len(acked), sent, failed)
	}
	// One message a batch: each acknowledged at an entry of its own, after
	// the one before.
	for i := 1; i < sent; i++ {
		if prev, id := acked[i-1], acked[i]; id.Ledger < prev.Ledger || (id.Ledger == prev.Ledger && id.Entry <= prev.Entry) {
			t.Fatalf("message %d acknowledged at %v, message %d at %v", i-1, prev, i, id)
		}
	}
	mu.Unlock()
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("end")}); err != nil {
		t.Fatal(err)
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(sent + 10)
	got := cs.receive(sent + 1)
	if end := got[len(got)-1]; len(got) != sent+1 || string(end.GetPayload()) != "end" {
		t.Fatalf("consumed %d messages ending with %q, want %d ending with the one sent last", len(got), end.GetPayload(), sent+1)
	}
	for i, m := range got[:sent] {
		id := m.GetId()
		if string(m.GetPayload()) != fmt.Sprintf("m-%06d", i) ||
			(client.MessageID{Ledger: id.GetLedger(), Entry: id.GetEntry(), Batch: id.GetBatch()}) != acked[i] {
			t.Fatalf("message %d: %q at %v, acknowledged at %v", i, m.GetPayload(), id, acked[i])
		}
	}
}
