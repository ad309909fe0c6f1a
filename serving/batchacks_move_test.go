package serving_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving/servingpb"
)

// batchSize is the messages of the one batch the tests below acknowledge
// in part.
const batchSize = 10

// partlyAcked publishes messages 1..batchSize as one batch (one entry) on
// topic at n, has sub of type typ receive it and acknowledge the messages
// acked names (cumulatively up to the last of them when cumulative), and
// waits until the owner has applied that. It answers the consumer and the
// batch's position.
func partlyAcked(t *testing.T, n *testNode, topic string, typ servingpb.SubscriptionType, cumulative bool, acked ...uint64) (*cons, ids.Position) {
	t.Helper()
	p := mustProducer(t, n, topic, "p1")
	var batch []*servingpb.Message
	for i := uint64(1); i <= batchSize; i++ {
		batch = append(batch, msg(i))
	}
	at := posOf(p.mustSend(batch...))
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: typ, InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	got := cs.receive(batchSize)
	var ids []*servingpb.MessageId
	for _, seq := range acked {
		ids = append(ids, got[seq-1].GetId())
	}
	if cumulative {
		ids = ids[len(ids)-1:]
	}
	if err := cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: ids, Cumulative: cumulative}}}); err != nil {
		t.Fatal(err)
	}
	want := uint64(batchSize - len(acked))
	eventually(t, "acks applied", func() error { return unackedIs(t, n, topic, want) })
	return cs, at
}

// unackedOf lists the sequence ids of the batch not in acked.
func unackedOf(acked ...uint64) []uint64 {
	var out []uint64
	for i := uint64(1); i <= batchSize; i++ {
		if !slices.Contains(acked, i) {
			out = append(out, i)
		}
	}
	return out
}

// receivesExactly publishes one more message (batchSize+1) on topic at n
// and checks that cs receives want and then that one: a message
// acknowledged and delivered again, or one left out, would show before it.
// It answers that last message's id.
func receivesExactly(t *testing.T, n *testNode, cs *cons, topic string, want []uint64) *servingpb.MessageId {
	t.Helper()
	const last = batchSize + 1
	mustProducer(t, n, topic, "p2").mustSend(&servingpb.Message{SequenceId: 1, Payload: payloadOf(last)})
	cs.flow(100)
	var got []uint64
	var lastID *servingpb.MessageId
	for lastID == nil {
		for _, m := range cs.receive(1) {
			seq := m.GetSequenceId()
			if m.GetProducerName() == "p2" {
				seq, lastID = last, m.GetId()
			}
			got = append(got, seq)
		}
	}
	if want = append(slices.Clone(want), last); !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	return lastID
}

// TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterAnUnload: the
// acknowledged messages of a batch acknowledged in part are stored with
// the cursor (Pulsar's acknowledgmentAtBatchIndexLevelEnabled), so that
// after a graceful unload the next load delivers only the others, on
// each subscription type that acknowledges single messages, and after a
// cumulative acknowledgement that ends inside the batch. Before, the
// whole batch came again.
func TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterAnUnload(t *testing.T) {
	c := newRealCluster(t, 3)
	a := c.start("a")
	for _, tc := range []struct {
		name       string
		typ        servingpb.SubscriptionType
		cumulative bool
		acked      []uint64
	}{
		{"exclusive", servingpb.SubscriptionType_EXCLUSIVE, false, []uint64{1, 3, 4, 8}},
		{"shared", servingpb.SubscriptionType_SHARED, false, []uint64{2, 10}},
		{"key_shared", servingpb.SubscriptionType_KEY_SHARED, false, []uint64{1, 2, 5, 6, 7, 9}},
		{"cumulative", servingpb.SubscriptionType_FAILOVER, true, []uint64{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "public/default/batch-acks-" + tc.name
			cs, _ := partlyAcked(t, a, topic, tc.typ, tc.cumulative, tc.acked...)
			if _, err := a.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
				t.Fatal(err)
			}
			cs.cancel()
			cs2 := subscribeWhenServed(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: tc.typ})
			receivesExactly(t, a, cs2, topic, unackedOf(tc.acked...))
		})
	}
}

// TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterATakeover: the
// same when the owner dies without unloading: the next owner loads the
// cursor last flushed, with the batch's acknowledged messages.
func TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterATakeover(t *testing.T) {
	c := newRealCluster(t, 3)
	store := metatestStore(t, c)
	a := c.start("a")
	b := c.start("b")
	const topic = "public/default/batch-acks-takeover"
	acked := []uint64{2, 3, 9}
	cs, _ := partlyAcked(t, a, topic, servingpb.SubscriptionType_EXCLUSIVE, false, acked...)
	eventually(t, "cursor flushed with the batch's acks", func() error {
		cur, err := store.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			return err
		}
		if len(cur.BatchAcks) == 0 {
			return fmt.Errorf("no batch acks stored")
		}
		return nil
	})
	a.srv.Stop()
	a.Kill() // nothing flushed, closed or released: its lease ends
	cs.cancel()
	cs2 := subscribeWhenServed(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	receivesExactly(t, b, cs2, topic, unackedOf(acked...))
}

// TestASeekForgetsTheStoredBatchAcks: a seek back over a batch whose
// acknowledged messages the loaded cursor recorded delivers the whole
// batch again, as it would any message acknowledged before the seek.
func TestASeekForgetsTheStoredBatchAcks(t *testing.T) {
	c := newRealCluster(t, 3)
	a := c.start("a")
	const topic = "public/default/batch-acks-seek"
	cs, _ := partlyAcked(t, a, topic, servingpb.SubscriptionType_EXCLUSIVE, false, 1, 5)
	if _, err := a.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	cs.cancel()
	cs2 := subscribeWhenServed(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	// No permits yet: nothing is dispatched before the seek.
	cs2.seek(&servingpb.Seek{To: &servingpb.Seek_Position{Position: servingpb.InitialPosition_EARLIEST}})
	receivesExactly(t, a, cs2, topic, unackedOf())
}

// TestStoredBatchAcksThatAreCorruptOrCoverAWholeBatchSkipNothingElse: a
// cursor whose batch acks do not parse loads (the error is logged) and
// delivers the batch whole; one whose bits cover every message of the
// batch acknowledges it whole (the backlog drains past it) and delivers
// none of it.
func TestStoredBatchAcksThatAreCorruptOrCoverAWholeBatchSkipNothingElse(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	for _, tc := range []struct {
		name    string
		acks    func(at ids.Position) []byte
		wants   []uint64
		backlog uint64 // once the message after the batch is acknowledged
	}{
		{"corrupt", func(ids.Position) []byte { return []byte{0xff} }, unackedOf(), 1},
		{"whole", func(at ids.Position) []byte {
			b := binary.AppendUvarint(nil, uint64(at.Ledger))
			b = binary.AppendUvarint(b, uint64(at.Entry))
			return append(binary.AppendUvarint(b, batchSize), 0xff, 0x03) // 10 bits set
		}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "public/default/stored-batch-acks-" + tc.name
			cs, at := partlyAcked(t, a, topic, servingpb.SubscriptionType_EXCLUSIVE, false, 4)
			if _, err := a.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
				t.Fatal(err)
			}
			cs.cancel()
			cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
			if err != nil {
				t.Fatal(err)
			}
			cur.BatchAcks = tc.acks(at)
			if err := c.mem.PutCursor(ctxT(t), cur); err != nil {
				t.Fatal(err)
			}
			cs2 := subscribeWhenServed(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
			cs2.ack(receivesExactly(t, a, cs2, topic, tc.wants))
			eventually(t, "backlog", func() error { return backlogIs(t, a, topic, tc.backlog) })
		})
	}
}
