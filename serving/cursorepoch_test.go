package serving_test

import (
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// ackAt sends an ack of ids at cursor epoch (0: none, an old client's).
func (c *cons) ackAt(epoch uint64, ids ...*servingpb.MessageId) {
	c.t.Helper()
	ack := &servingpb.Ack{Ids: ids, CursorEpoch: epoch}
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: ack}}); err != nil {
		c.t.Fatalf("ack: %v", err)
	}
}

// barrier waits until the node has handled what c sent before it: it
// reads a stream's requests in order, and answers a HasMessagesAfter.
func (c *cons) barrier() {
	c.t.Helper()
	req := &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_HasMessagesAfter{HasMessagesAfter: &servingpb.HasMessagesAfter{}}}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
	for {
		r, err := c.stream.Recv()
		if err != nil {
			c.t.Fatalf("waiting for HasMessagesAfterResult: %v", err)
		}
		if r.GetHasMessagesAfterResult() != nil {
			return
		}
	}
}

// TestAnAckFromBeforeASeekIsDroppedAndOneWithoutAnEpochIsApplied: a stream
// is told its subscription's cursor epoch when it starts, and the new one
// after its seek. An ack carrying the epoch from before the seek names a
// message the seek is to deliver again: it is dropped. An ack with no
// epoch (a client from before epochs) is applied as it always was, before
// or after a seek, and so is one carrying the current epoch.
func TestAnAckFromBeforeASeekIsDroppedAndOneWithoutAnEpochIsApplied(t *testing.T) {
	n := newCluster(t).start("a", nil)
	const topic = "public/default/ack-epochs"
	p := mustProducer(t, n, topic, "p")
	for seq := uint64(1); seq <= 5; seq++ {
		p.mustSend(msg(seq))
	}
	sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST}
	c := mustSubscribe(t, n, sub)
	if c.epoch == 0 {
		t.Fatal("Subscribed carries no cursor epoch")
	}
	c.flow(100)
	got := c.receive(5)
	c.ackAt(0, got[0].GetId())       // an old client's, before the seek: applied
	c.ackAt(c.epoch, got[1].GetId()) // the current epoch's: applied
	c.barrier()
	before := c.epoch
	c.seek(&servingpb.Seek{To: &servingpb.Seek_Position{Position: servingpb.InitialPosition_EARLIEST}})
	if c.epoch == 0 || c.epoch == before {
		t.Fatalf("epoch after the seek %d, before it %d: want a new one", c.epoch, before)
	}
	c.ackAt(before, got[2].GetId()) // made before the seek: dropped
	c.ackAt(0, got[3].GetId())      // an old client's, after the seek: applied
	c.barrier()
	c.cancel()

	p.mustSend(msg(6))
	again := subscribeWhenServed(t, n, sub)
	again.flow(100)
	// The seek to the earliest brings back what was acknowledged before
	// it; of the acks after it, only the one from before it is dropped.
	if seqs, want := again.receiveThrough(6), []uint64{1, 2, 3, 5, 6}; !slices.Equal(seqs, want) {
		t.Fatalf("delivered after the seek: %v, want %v", seqs, want)
	}
}

// TestAResetsEpochIsStoredWithItAndTheNextOwnerDropsAcksFromBeforeIt: an
// executed reset stores the cursor's new epoch with the moved cursor
// before it is answered. Its owner dies before any flush; a consumer that
// held every message on the old stream subscribes on the next owner and
// sends the acks it kept, at the epoch of that stream, before its flow (as
// the SDK does). The next owner loaded the new epoch from the metadata,
// drops those acks, and delivers every message again, as the reset asked.
func TestAResetsEpochIsStoredWithItAndTheNextOwnerDropsAcksFromBeforeIt(t *testing.T) {
	c := newCluster(t)
	slowFlush := func(cfg *serving.Config) { cfg.CursorFlushInterval = time.Hour }
	a := c.start("a", slowFlush)
	aSession := c.mem.Sessions()[0]
	b := c.start("b", slowFlush)
	const topic = "public/default/reset-epoch-takeover"
	p := mustProducer(t, a, topic, "p1")
	for i := uint64(1); i <= 10; i++ {
		p.mustSend(msg(i))
	}
	sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST}
	first := mustSubscribe(t, a, sub)
	first.flow(10)
	got := first.receive(10)
	first.cancel()
	if _, err := a.client.ResetCursor(ctxT(t), &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", Execute: true,
		To: &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_EARLIEST}}); err != nil {
		t.Fatal(err)
	}
	cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Epoch == 0 || cur.Epoch == first.epoch {
		t.Fatalf("cursor stored once the reset was answered at epoch %d; the stream before it was at %d", cur.Epoch, first.epoch)
	}

	aSession.Expire()
	again := subscribeWhenServed(t, b, sub)
	if again.epoch != cur.Epoch {
		t.Fatalf("the next owner tells epoch %d, the stored cursor has %d", again.epoch, cur.Epoch)
	}
	kept := make([]*servingpb.MessageId, len(got))
	for i, m := range got {
		kept[i] = m.GetId()
	}
	again.ackAt(first.epoch, kept...)
	p2 := mustProducer(t, b, topic, "p2")
	p2.mustSend(msg(11))
	again.flow(100)
	if seqs, want := again.receiveThrough(11), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(seqs, want) {
		t.Fatalf("delivered after the reset and the takeover: %v, want %v", seqs, want)
	}
}
