package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/client"
)

// gate stands between a client and its nodes: shut, it closes the
// connections it made and refuses new ones, as a broken network link
// does, while the nodes and other clients go on.
type gate struct {
	mu    sync.Mutex
	shut  bool
	conns []net.Conn
}

func (g *gate) dial(ctx context.Context, addr string) (net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return nil, errors.New("test gate shut")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err == nil {
		g.conns = append(g.conns, conn)
	}
	return conn, err
}

// cut closes the client's connections and keeps it from making more.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = true
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = false
}

// gatedClient is a client of s whose connections go through a gate.
func gatedClient(s *standalone) (*client.Client, *gate) {
	g := &gate{}
	return s.client(client.ReconnectBackoff(20*time.Millisecond, 200*time.Millisecond),
		client.DialOptions(grpc.WithContextDialer(g.dial))), g
}

// cutWhileHolding receives held of topic's messages on cons (of subscription
// "s"), cuts cons's client off and waits until the node has seen its
// stream go: the consumer is reconnecting, and its node does not know it.
func cutWhileHolding(t *testing.T, ctx context.Context, admin *client.Client, cons *client.Consumer, g *gate, topic string, held int) []*client.Message {
	t.Helper()
	var msgs []*client.Message
	for range held {
		msgs = append(msgs, receiveWithin(t, ctx, cons))
	}
	g.cut()
	pollUntil(t, ctx, "the consumer's stream gone from the node", func() bool {
		st, ok := subStats(ctx, admin, topic, "s")
		return ok && st.Consumers == 0
	})
	return msgs
}

// ackedWhileCut subscribes to subscription "s" of topic through a gated
// client, receives held messages, cuts the client off (cutWhileHolding)
// and acknowledges them while it reconnects: the SDK keeps those acks for
// its next stream. The gate opens with open.
func ackedWhileCut(t *testing.T, ctx context.Context, s *standalone, admin *client.Client, topic string, held int, opts ...client.ConsumerOption) (cons *client.Consumer, open func()) {
	t.Helper()
	c, g := gatedClient(s)
	cons, err := c.Subscribe(ctx, topic, "s", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	for _, m := range cutWhileHolding(t, ctx, admin, cons, g, topic, held) {
		if err := cons.Ack(m); err != nil {
			t.Fatalf("ack while reconnecting: %v, want nil (kept)", err)
		}
	}
	return cons, g.open
}

// receiveInOrder receives from..total-1 of sendCounting's messages on cons,
// acknowledging each, and then nothing more.
func receiveInOrder(t *testing.T, ctx context.Context, cons *client.Consumer, from, total int, why string) {
	t.Helper()
	for want := from; want < total; want++ {
		m := receiveWithin(t, ctx, cons)
		if got, _ := strconv.Atoi(string(m.Payload)); got != want {
			t.Fatalf("got message %s, want %d: %s", m.Payload, want, why)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	receiveNone(t, ctx, cons)
}

// TestAResetWhileTheConsumerReconnectsRedeliversMessagesItAckedBeforeTheReset:
// a consumer holds messages when its connection breaks, and its
// application acknowledges them while it reconnects (the SDK keeps those
// acks for its next stream). Meanwhile the subscription is reset to the
// earliest message, or to one of those it held: no stream of it is there
// to be ended with CursorMoved. Once back, the consumer gets every message
// from the reset point again, those it acknowledged before the reset
// included: the kept acks carry the cursor epoch of the stream that
// delivered their messages, which the reset changed, and the node drops
// them. Before, they acknowledged those messages anew, and the replay the
// reset asked for skipped them.
func TestAResetWhileTheConsumerReconnectsRedeliversMessagesItAckedBeforeTheReset(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)
	admin := s.client()
	const total, held = 20, 10
	for _, tc := range []struct {
		name string
		to   func(ids []client.MessageID) client.CursorTarget
		from int
	}{
		{"to the earliest", func([]client.MessageID) client.CursorTarget { return client.CursorTarget{Earliest: true} }, 0},
		{"to a message id", func(ids []client.MessageID) client.CursorTarget { return client.CursorTarget{ID: &ids[3]} }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "reset-while-reconnecting-" + strconv.Itoa(tc.from)
			ids := sendCounting(t, ctx, admin, topic, total)
			cons, open := ackedWhileCut(t, ctx, s, admin, topic, held, client.ConsumerInitialPosition(client.Earliest))
			if _, err := admin.Admin().ResetCursor(ctx, topic, "s", tc.to(ids), true); err != nil {
				t.Fatal(err)
			}
			open()
			receiveInOrder(t, ctx, cons, tc.from, total, "the reset was made after the acks of the messages before it")
		})
	}
}

// TestAResetOnARestartedNodeDropsAcksMadeBeforeItWithTheEpochStoredInEtcd:
// the cursor epoch is stored with the cursor, so a node that loads the
// topic anew knows it. A subscription reset once (epoch moved past the
// first) gets a consumer, which holds messages when its connection breaks
// and acknowledges them while it reconnects; the node restarts, and the
// subscription is reset again there, before the consumer is back. The
// restarted node read the epoch the consumer was told from etcd and moved
// past it, so the consumer's kept acks are dropped and the whole topic
// comes again. Had it started the loaded cursor at the first epoch, the
// second reset would have brought it to the very epoch of those acks.
func TestAResetOnARestartedNodeDropsAcksMadeBeforeItWithTheEpochStoredInEtcd(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)
	admin := s.client(client.ReconnectBackoff(50*time.Millisecond, 500*time.Millisecond))
	const topic, total, held = "reset-after-restart", 20, 10
	sendCounting(t, ctx, admin, topic, total)
	if err := admin.Admin().CreateSubscription(ctx, topic, "s", client.Earliest); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Admin().ResetCursor(ctx, topic, "s", client.CursorTarget{Earliest: true}, true); err != nil {
		t.Fatal(err)
	}
	cons, open := ackedWhileCut(t, ctx, s, admin, topic, held)
	s.stop()
	s.start()
	if _, err := admin.Admin().ResetCursor(ctx, topic, "s", client.CursorTarget{Earliest: true}, true); err != nil {
		t.Fatal(err)
	}
	open()
	receiveInOrder(t, ctx, cons, 0, total, "the reset on the restarted node was made after the acks of the messages before it")
}

// TestASubscriptionDeletedWhileItsConsumerReconnectsStartsAfreshWithoutItsAcks:
// a consumer holds messages when its connection breaks, and its
// application acknowledges them while it reconnects; meanwhile the
// subscription is deleted. The consumer's next subscribe creates it anew
// from the earliest message, and it gets every message: the kept acks
// carry the epoch of the deleted subscription, which the new one does not
// start at. Had every subscription started at the same epoch, they would
// have acknowledged those messages in the new one.
func TestASubscriptionDeletedWhileItsConsumerReconnectsStartsAfreshWithoutItsAcks(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)
	admin := s.client()
	const topic, total, held = "delete-while-reconnecting", 20, 10
	sendCounting(t, ctx, admin, topic, total)
	cons, open := ackedWhileCut(t, ctx, s, admin, topic, held, client.ConsumerInitialPosition(client.Earliest))
	if err := admin.Admin().DeleteSubscription(ctx, topic, "s"); err != nil {
		t.Fatal(err)
	}
	open()
	receiveInOrder(t, ctx, cons, 0, total, "the subscription was deleted after the acks, and made anew from the earliest")
}
