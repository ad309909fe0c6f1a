package serving_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestAcksOfMessagesNotReadYetOnAReloadedTopicApplyWhenTheirEntriesAreRead:
// a consumer that subscribes again after its topic moved sends the acks
// its application made meanwhile before it grants permits, and goes on
// acknowledging the messages it held after. The node that loaded the
// topic has read little or nothing yet, and dropped acks of messages not
// pending: those messages came again. It now keeps them and applies them
// as it reads their entries, a message of a batch at a time, or up to a
// cumulative ack.
func TestAcksOfMessagesNotReadYetOnAReloadedTopicApplyWhenTheirEntriesAreRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		ack  func(c *cons, got []*servingpb.ReceivedMessage)
		want []uint64 // sequence ids delivered after the reload
	}{
		{"individual", func(c *cons, got []*servingpb.ReceivedMessage) {
			c.ack(got[1].GetId(), got[2].GetId(), got[3].GetId()) // entry 1, and two of entry 2's three
		}, []uint64{1, 5, 6}},
		{"cumulative", func(c *cons, got []*servingpb.ReceivedMessage) {
			ack := &servingpb.Ack{Ids: []*servingpb.MessageId{got[3].GetId()}, Cumulative: true} // into entry 2
			if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: ack}}); err != nil {
				t.Fatal(err)
			}
		}, []uint64{5, 6}},
		{"after the first flow", func(c *cons, got []*servingpb.ReceivedMessage) {
			c.flow(1) // the node reads entry 0 only
			if m := c.receive(1); m[0].GetSequenceId() != 1 {
				t.Fatalf("first message after the reload: %v", m[0].GetSequenceId())
			}
			c.ack(got[1].GetId(), got[2].GetId(), got[3].GetId())
		}, []uint64{5, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newCluster(t).start("a", nil)
			topic := "public/default/early-acks-" + strings.ReplaceAll(tc.name, " ", "-")
			p := mustProducer(t, n, topic, "p")
			p.mustSend(msg(1))
			p.mustSend(msg(2))
			p.mustSend(msg(3), msg(4), msg(5))
			p.mustSend(msg(6))
			sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST}
			first := mustSubscribe(t, n, sub)
			first.flow(10)
			got := first.receive(6)
			if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
				t.Fatal(err)
			}
			first.cancel()
			again := mustSubscribe(t, n, sub) // loads the topic again
			tc.ack(again, got)
			again.flow(10)
			var seqs []uint64
			for _, m := range again.receive(len(tc.want)) {
				seqs = append(seqs, m.GetSequenceId())
			}
			if !slices.Equal(seqs, tc.want) {
				t.Fatalf("after the reload got %v, want %v: the acks of messages not read yet were not applied", seqs, tc.want)
			}
		})
	}
}

// TestAStreamEndedByACursorMoveSaysSo: the consumers a reset or another
// consumer's seek disconnects are told the cursor moved, so that their
// clients drop the acks they kept from before it; an unload's end says
// nothing of the kind, and the acks kept across it are sent.
func TestAStreamEndedByACursorMoveSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		end   func(n *testNode, topic string, other *cons) error
		moved bool
	}{
		{"reset", func(n *testNode, topic string, _ *cons) error {
			_, err := n.client.ResetCursor(ctxT(t), &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", Execute: true,
				To: &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_EARLIEST}})
			return err
		}, true},
		{"another consumer's seek", func(_ *testNode, _ string, other *cons) error {
			return other.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Seek{Seek: &servingpb.Seek{
				To: &servingpb.Seek_Position{Position: servingpb.InitialPosition_EARLIEST}}}})
		}, true},
		{"unload", func(n *testNode, topic string, _ *cons) error {
			_, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic})
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newCluster(t).start("a", nil)
			topic := "public/default/cursor-moved"
			mustProducer(t, n, topic, "p").mustSend(msg(1))
			sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED}
			watched, other := mustSubscribe(t, n, sub), mustSubscribe(t, n, sub)
			if err := tc.end(n, topic, other); err != nil {
				t.Fatal(err)
			}
			var err error
			for err == nil {
				_, err = watched.stream.Recv()
			}
			var e *errcode.Error
			if !errors.As(errcode.FromError(err), &e) || e.CursorMoved != tc.moved {
				t.Fatalf("stream ended with %v (cursor moved: %v), want cursor moved %v", err, e != nil && e.CursorMoved, tc.moved)
			}
		})
	}
}

// TestAnAckOfAMessageNotWrittenYetIsNotKept: an ack naming a position past
// the topic's last entry names no message a consumer was sent; kept until
// that entry is read, it would skip the message written there later.
func TestAnAckOfAMessageNotWrittenYetIsNotKept(t *testing.T) {
	n := newCluster(t).start("a", nil)
	const topic = "public/default/ack-of-the-future"
	p := mustProducer(t, n, topic, "p")
	first := p.mustSend(msg(1))
	c := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	c.flow(10)
	c.receive(1)
	c.ack(&servingpb.MessageId{Ledger: first.GetLedger(), Entry: first.GetEntry() + 3}) // not written yet
	// Answered after the ack is applied (the stream's requests are taken
	// in order): the entry is written after it.
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_HasMessagesAfter{HasMessagesAfter: &servingpb.HasMessagesAfter{}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.stream.Recv(); err != nil || r.GetHasMessagesAfterResult() == nil {
		t.Fatalf("waiting for the answer after the ack: %v %v", r, err)
	}
	for seq := uint64(2); seq <= 6; seq++ {
		p.mustSend(msg(seq))
	}
	var seqs []uint64
	for _, m := range c.receive(4) {
		seqs = append(seqs, m.GetSequenceId())
	}
	if want := []uint64{2, 3, 4, 5}; !slices.Equal(seqs, want) {
		t.Fatalf("got %v, want %v: the ack of a message not written yet skipped it", seqs, want)
	}
}

// TestACumulativeAckOfAnEntryReadAgainDoesNotSkipAHeldBackOneNotDelivered:
// a shared subscription that becomes exclusive delivers the entries given
// back when its shared consumers left before the delayed entry it held
// back, which is earlier in the log and not read again yet. A cumulative
// ack of one of those acknowledges what was delivered up to it; kept as an
// ack of messages not read yet, it acknowledged the held-back entry too
// when it was read, and that message was never delivered. So did the same
// ack sent again once applied (as a client sends again the acks of the
// second before its stream ended), its entry then acknowledged.
func TestACumulativeAckOfAnEntryReadAgainDoesNotSkipAHeldBackOneNotDelivered(t *testing.T) {
	for _, again := range []bool{false, true} {
		t.Run(fmt.Sprint("sent again=", again), func(t *testing.T) {
			n := newCluster(t).start("a", nil)
			topic := fmt.Sprintf("public/default/early-cumulative-undelay-%v", again)
			ex, p := heldBackThenExclusive(t, n, topic)
			ex.flow(1)
			m := ex.receive(1)[0]
			if m.GetSequenceId() != 3 {
				t.Fatalf("exclusive got %d first, want 3 (given back, so delivered before the log is read again)", m.GetSequenceId())
			}
			ack := &servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{
				Ids: []*servingpb.MessageId{m.GetId()}, Cumulative: true}}}
			if err := ex.stream.Send(ack); err != nil {
				t.Fatal(err)
			}
			eventually(t, "cumulative ack applied", func() error { return unackedIs(t, n, topic, 0) })
			if again {
				if err := ex.stream.Send(ack); err != nil {
					t.Fatal(err)
				}
			}
			ex.flow(10)
			p.mustSend(msg(4))
			if seqs, want := ex.receiveThrough(4), []uint64{2, 4}; !slices.Equal(seqs, want) {
				t.Fatalf("then got %v, want %v: the held-back message was acknowledged without being delivered", seqs, want)
			}
		})
	}
}

// TestAnAckOfAnEntryAcknowledgedWholeIsNotKept: a node that loads a topic
// reads from the mark-delete position and passes over the entries the
// cursor stored acknowledged past it, so an ack of one of their messages
// (a client sends again the acks of the second before its stream ended)
// is applied to nothing. Kept as an ack of a message not read yet, it
// stayed until the cursor moved, taking room from the acks that are.
func TestAnAckOfAnEntryAcknowledgedWholeIsNotKept(t *testing.T) {
	n := newCluster(t).start("a", nil)
	const topic = "public/default/early-ack-of-acked"
	p := mustProducer(t, n, topic, "p")
	for seq := uint64(1); seq <= 3; seq++ {
		p.mustSend(msg(seq))
	}
	sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED,
		InitialPosition: servingpb.InitialPosition_EARLIEST}
	first := mustSubscribe(t, n, sub)
	first.flow(10)
	got := first.receive(3)
	first.ack(got[1].GetId()) // stored as acked past the mark-delete position, before 1
	eventually(t, "ack applied", func() error { return unackedIs(t, n, topic, 2) })
	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	first.cancel()
	again := mustSubscribe(t, n, sub) // loads the topic again
	again.ack(got[1].GetId())
	again.flow(10)
	var seqs []uint64
	for _, m := range again.receive(2) { // read past 2, after the ack
		seqs = append(seqs, m.GetSequenceId())
	}
	if want := []uint64{1, 3}; !slices.Equal(seqs, want) {
		t.Fatalf("after the reload got %v, want %v", seqs, want)
	}
	if kept := n.EarlyAcks(topic, "s"); kept != 0 {
		t.Fatalf("%d acks kept for entries not read yet, want 0: the ack of an entry acknowledged whole stays", kept)
	}
}

// TestAcksOfCompactedMessagesNotReadYetApplyWhenTheCompactionIsRead: a
// subscription reading compacted reads, after a move, the compacted
// ledger again from its start; the acks its consumer kept across the move
// name the messages it was sent from there, and are applied as those are
// read, as they are on the log. They were kept and never applied: the
// acknowledged messages came again.
func TestAcksOfCompactedMessagesNotReadYetApplyWhenTheCompactionIsRead(t *testing.T) {
	n := newCluster(t).start("a", nil)
	const topic = "public/default/early-acks-compacted"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(keyed(1, "a", "1"))
	p.mustSend(keyed(2, "x", "x1"), keyed(3, "y", "y1"))
	p.mustSend(keyed(4, "a", "2"))
	p.mustSend(keyed(5, "x", "x2"))
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	p.mustSend(keyed(6, "a", "3"))
	sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST, ReadCompacted: true}
	first := mustSubscribe(t, n, sub)
	first.flow(10)
	got := first.receive(4)
	if s := summary(got); s != "y=y1@3 a=2@4 x=x2@5 a=3@6 " {
		t.Fatalf("read compacted %q", s)
	}
	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	first.cancel()
	again := mustSubscribe(t, n, sub) // loads the topic again
	again.ack(got[0].GetId(), got[2].GetId())
	again.flow(10)
	if seqs, want := again.receiveThrough(6), []uint64{4, 6}; !slices.Equal(seqs, want) {
		t.Fatalf("after the reload got %v, want %v: the acks of compacted messages were not applied", seqs, want)
	}
}

// receiveThrough answers the sequence ids c receives up to and including
// seq: a message that should not have come shows before it.
func (c *cons) receiveThrough(seq uint64) []uint64 {
	c.t.Helper()
	var seqs []uint64
	for !slices.Contains(seqs, seq) {
		for _, m := range c.receive(1) {
			seqs = append(seqs, m.GetSequenceId())
		}
	}
	return seqs
}

// TestAcksAppliedWhenTheirEntryIsReadAreStoredAndSurviveTheNextMove: an
// ack kept for a message not read yet, applied when its entry is read,
// makes the cursor dirty, so that the entry's acknowledged message is
// stored with it and a second move does not bring it back, even when the
// cursor was flushed between the ack and the read.
func TestAcksAppliedWhenTheirEntryIsReadAreStoredAndSurviveTheNextMove(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/early-acks-stored"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	p.mustSend(msg(2), msg(3), msg(4))
	sub := &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST}
	first := mustSubscribe(t, n, sub)
	first.flow(10)
	got := first.receive(4)
	unload := func() {
		t.Helper()
		if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
			t.Fatal(err)
		}
	}
	unload()
	first.cancel()
	again := subscribeWhenServed(t, n, sub)
	acked := time.Now().UnixNano()
	again.ack(got[2].GetId()) // message 3, of entry 1, not read yet on this load
	eventually(t, "the cursor flushed after the ack, before the entry is read", func() error {
		cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			return err
		}
		if cur.UpdatedAt <= acked {
			return fmt.Errorf("cursor last stored at %d, the ack at %d", cur.UpdatedAt, acked)
		}
		return nil
	})
	again.flow(10)
	if seqs := seqsOf(again.receive(3)); !slices.Equal(seqs, []uint64{1, 2, 4}) {
		t.Fatalf("after the first reload got %v, want [1 2 4]", seqs)
	}
	unload()
	again.cancel()
	third := subscribeWhenServed(t, n, sub)
	third.flow(10)
	if seqs := seqsOf(third.receive(3)); !slices.Equal(seqs, []uint64{1, 2, 4}) {
		t.Fatalf("after the second reload got %v, want [1 2 4]: the ack applied at the read was not stored", seqs)
	}
}

func seqsOf(ms []*servingpb.ReceivedMessage) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.GetSequenceId()
	}
	return out
}
