package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// subscribeEarliest subscribes to subscription s of the test topic from its
// earliest message, with opts; the consumer closes with the test.
func subscribeEarliest(t *testing.T, ctx context.Context, c *client.Client, opts ...client.ConsumerOption) *client.Consumer {
	t.Helper()
	cons, err := c.Subscribe(ctx, "t", "s", append([]client.ConsumerOption{client.ConsumerInitialPosition(client.Earliest)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	return cons
}

// testBreak is how the tests end a consumer's stream: a connection lost.
var testBreak = errcode.New(errcode.Unavailable, "test break")

// reconnectingWith receives m000..m007 of ten messages, holding them, then
// ends the consumer's stream with breakErr and holds its next subscribe
// (breakHolding). It answers the messages held and the number of the
// consume stream waiting.
func reconnectingWith(t *testing.T, ctx context.Context, cl *fakebroker.Cluster, b *fakebroker.Broker, cons *client.Consumer, breakErr error) ([]*client.Message, int) {
	t.Helper()
	publish(cl, testTopic, 0, 10)
	msgs := receiveN(t, ctx, cons, 8, false)
	return msgs, breakHolding(t, b, breakErr)
}

// breakHolding ends the consumer's stream with breakErr and holds its next
// subscribe: the consumer stays reconnecting until the test releases b's
// subscribes. It answers the number of the consume stream waiting.
func breakHolding(t *testing.T, b *fakebroker.Broker, breakErr error) int {
	t.Helper()
	subscribed := len(b.Subscribes())
	b.HoldSubscribes()
	b.BreakStreams(breakErr)
	waitFor(t, "the consumer subscribing again", func() bool { return len(b.Subscribes()) > subscribed })
	log := b.ConsumeLog()
	return log[len(log)-1].Stream
}

// acksOnStream answers the ids acknowledged on consume stream n of b, those
// acknowledged cumulatively apart, and whether a flow came on it; only the
// requests before its first flow count.
func acksOnStream(b *fakebroker.Broker, n int) (ids, cumulative map[string]bool, flowed bool) {
	ids, cumulative = map[string]bool{}, map[string]bool{}
	for _, r := range b.ConsumeLog() {
		if r.Stream != n {
			continue
		}
		if r.Req.GetFlow() != nil {
			return ids, cumulative, true
		}
		into := ids
		if r.Req.GetAck().GetCumulative() {
			into = cumulative
		}
		for _, id := range r.Req.GetAck().GetIds() {
			into[wireID(id)] = true
		}
	}
	return ids, cumulative, false
}

func wireID(id *servingpb.MessageId) string {
	return fmt.Sprintf("%d:%d:%d", id.GetLedger(), id.GetEntry(), id.GetBatch())
}

// TestAcksMadeWhileReconnectingReachTheNewStreamBeforeItsFlowAndTheirMessagesDoNotComeAgain:
// acks (grouped, sent at once, or cumulative) made while a partition's
// stream is down are kept and sent on the next stream right after its
// subscribe, before its flow, so that the server has them before it
// redelivers: of the eight messages the application held, only the three
// it did not acknowledge come again, with the two it never got. Ack
// answers nil: the SDK, not the application, sends it once it can.
func TestAcksMadeWhileReconnectingReachTheNewStreamBeforeItsFlowAndTheirMessagesDoNotComeAgain(t *testing.T) {
	individually := func(cons *client.Consumer, msgs []*client.Message) error {
		for _, m := range msgs {
			if err := cons.Ack(m); err != nil {
				return err
			}
		}
		return nil
	}
	cumulatively := func(cons *client.Consumer, msgs []*client.Message) error {
		return cons.AckCumulative(msgs[len(msgs)-1])
	}
	for _, tc := range []struct {
		name       string
		opts       []client.ConsumerOption
		ack        func(*client.Consumer, []*client.Message) error
		cumulative bool
	}{
		{"grouped", nil, individually, false},
		{"without grouping", []client.ConsumerOption{client.ConsumerAckGroupingTime(0)}, individually, false},
		{"cumulative", nil, cumulatively, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, b, c := setup(t, 0)
			ctx := testCtx(t)
			cons := subscribeEarliest(t, ctx, c, tc.opts...)
			msgs, stream := reconnectingWith(t, ctx, cl, b, cons, testBreak)
			if err := tc.ack(cons, msgs[:5]); err != nil {
				t.Fatalf("ack while reconnecting: %v, want nil (kept for the next stream)", err)
			}
			b.ReleaseSubscribes()
			waitFor(t, "a flow on the new stream", func() bool { _, _, flowed := acksOnStream(b, stream); return flowed })
			ids, cum, _ := acksOnStream(b, stream)
			acked, sent := msgs[:5], ids
			if tc.cumulative {
				acked, sent = msgs[4:5], cum
			}
			for _, m := range acked {
				if !sent[m.ID.String()] {
					t.Errorf("the ack of %s (%s) did not reach the new stream before its flow (acks %v, cumulative %v)", m.Payload, m.ID, ids, cum)
				}
			}
			for _, m := range receiveN(t, ctx, cons, 5, true) {
				if p := string(m.Payload); p < "m005" {
					t.Errorf("%s, acknowledged while the consumer reconnected, came again", p)
				}
			}
		})
	}
}

// TestCloseSendsTheAcksKeptWhileReconnecting: a consumer closed while its
// partition reconnects, holding acks it could not send, waits (within its
// close grace) for the partition to subscribe again and sends them there.
func TestCloseSendsTheAcksKeptWhileReconnecting(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	cons := subscribeEarliest(t, ctx, c)
	msgs, stream := reconnectingWith(t, ctx, cl, b, cons, testBreak)
	if err := cons.Ack(msgs[0]); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- cons.Close() }()
	b.ReleaseSubscribes()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if ids, _, _ := acksOnStream(b, stream); !ids[msgs[0].ID.String()] {
		t.Fatalf("the ack kept at Close did not reach the new stream (acks there: %v)", ids)
	}
	if _, err := cons.Receive(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("receive after close: %v", err)
	}
}

// TestAcksMadeAfterTheServerMovedTheCursorAreNotSentOnTheNextStream: when
// the server ends a stream because the subscription's cursor moved (an
// admin reset, another consumer's seek), the acks made until the next
// stream are of messages sent before the move: they are dropped, as a
// seek drops them, rather than acknowledge messages the move redelivers.
func TestAcksMadeAfterTheServerMovedTheCursorAreNotSentOnTheNextStream(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	cons := subscribeEarliest(t, ctx, c)
	moved := errcode.New(errcode.Unavailable, "subscription was reset: subscribe again")
	moved.CursorMoved = true
	msgs, stream := reconnectingWith(t, ctx, cl, b, cons, moved)
	for _, m := range msgs[:5] {
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := cons.AckCumulative(msgs[7]); err != nil {
		t.Fatal(err)
	}
	b.ReleaseSubscribes()
	waitFor(t, "a flow on the new stream", func() bool { _, _, flowed := acksOnStream(b, stream); return flowed })
	if ids, cum, _ := acksOnStream(b, stream); len(ids)+len(cum) > 0 {
		t.Fatalf("acks made after the cursor moved were sent on the next stream: %v, cumulative %v", ids, cum)
	}
	got := receiveN(t, ctx, cons, 10, true)
	if string(got[0].Payload) != "m000" {
		t.Fatalf("first message after the move: %s, want m000 again", got[0].Payload)
	}
}

// TestAcksSentJustBeforeTheStreamBrokeAreSentAgainBeforeTheNextFlow: a Send
// that returned nil only buffered its request, and a node giving a topic
// up ends its consumers' streams before it flushes their cursors; so the
// acks sent within a second before a stream ended go again on the next
// stream, before its flow.
func TestAcksSentJustBeforeTheStreamBrokeAreSentAgainBeforeTheNextFlow(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	cons := subscribeEarliest(t, ctx, c, client.ConsumerAckGroupingTime(0))
	publish(cl, testTopic, 0, 5)
	msgs := receiveN(t, ctx, cons, 3, true)
	waitFor(t, "the acks on the first stream", func() bool { return len(b.Acks()) == 3 })
	stream := breakHolding(t, b, testBreak)
	b.ReleaseSubscribes()
	waitFor(t, "a flow on the new stream", func() bool { _, _, flowed := acksOnStream(b, stream); return flowed })
	ids, _, _ := acksOnStream(b, stream)
	for _, m := range msgs {
		if !ids[m.ID.String()] {
			t.Errorf("the ack of %s, sent just before the stream broke, was not sent again before the next flow (acks there: %v)", m.Payload, ids)
		}
	}
}

// TestANackWhileReconnectingDoesNotUndoAKeptAck: a nack made while the
// partition reconnects is lost with the stream, which is harmless (the
// server redelivers every unacknowledged message to the new one), and it
// does not undo an ack of the same message kept meanwhile: that message
// stays acknowledged, whichever came first, and the one only nacked comes
// again.
func TestANackWhileReconnectingDoesNotUndoAKeptAck(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	cons := subscribeEarliest(t, ctx, c)
	msgs, _ := reconnectingWith(t, ctx, cl, b, cons, testBreak)
	_ = cons.Nack(msgs[0]) // lost with the stream, whatever it answers
	if err := cons.Ack(msgs[0]); err != nil {
		t.Fatal(err)
	}
	if err := cons.Ack(msgs[1]); err != nil {
		t.Fatal(err)
	}
	_ = cons.Nack(msgs[1])
	_ = cons.Nack(msgs[2])
	b.ReleaseSubscribes()
	got := receiveN(t, ctx, cons, 8, true)
	if p := string(got[0].Payload); p != "m002" {
		t.Fatalf("first message on the new stream: %s, want m002 (m000 and m001 were acknowledged)", p)
	}
	for _, m := range got {
		if p := string(m.Payload); p == "m000" || p == "m001" {
			t.Fatalf("%s, acknowledged and nacked while reconnecting, came again", p)
		}
	}
}
