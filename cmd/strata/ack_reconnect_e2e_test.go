package main

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestAcksMadeWhileTheNodeRestartsReachItAndNoAckedMessageComesTwice: on a
// real standalone, consumers hold messages when their node stops
// gracefully (SIGTERM: it flushes the cursors and gives its topics up),
// acknowledge them while it is down (one consumer message by message, one
// cumulatively) and, once the node is back and has loaded their topics
// again, get each message they did not acknowledge once and none of those
// they did. Before, those acks were dropped and the messages came again.
func TestAcksMadeWhileTheNodeRestartsReachItAndNoAckedMessageComesTwice(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)
	c := s.client(client.ReconnectBackoff(50*time.Millisecond, 500*time.Millisecond))
	const total, held, ackedFirst = 40, 20, 10
	type acker struct {
		topic string
		opts  []client.ConsumerOption
		ack   func(*client.Consumer, []*client.Message) error
	}
	ackers := []acker{
		{"acked-one-by-one", []client.ConsumerOption{client.ConsumerType(client.Shared)}, func(cons *client.Consumer, ms []*client.Message) error {
			for _, m := range ms {
				if err := cons.Ack(m); err != nil {
					return err
				}
			}
			return nil
		}},
		{"acked-cumulatively", nil, func(cons *client.Consumer, ms []*client.Message) error {
			return cons.AckCumulative(ms[len(ms)-1])
		}},
	}
	cons := make([]*client.Consumer, len(ackers))
	msgs := make([][]*client.Message, len(ackers))
	for i, a := range ackers {
		sendCounting(t, ctx, c, a.topic, total)
		var err error
		cons[i], err = c.Subscribe(ctx, a.topic, "s", append([]client.ConsumerOption{client.ConsumerInitialPosition(client.Earliest)}, a.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cons[i].Close()
		for range held {
			msgs[i] = append(msgs[i], receiveWithin(t, ctx, cons[i]))
		}
		if err := a.ack(cons[i], msgs[i][:ackedFirst]); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, ctx, a.topic+"'s first acks on the server", func() bool {
			st, ok := subStats(ctx, c, a.topic, "s")
			return ok && st.Backlog == total-ackedFirst
		})
	}
	s.stop()
	for i, a := range ackers {
		if err := a.ack(cons[i], msgs[i][ackedFirst:]); err != nil {
			t.Fatalf("%s: ack while the node is down: %v, want nil (kept)", a.topic, err)
		}
	}
	s.start()
	for i, a := range ackers {
		for want := held; want < total; want++ {
			m := receiveWithin(t, ctx, cons[i])
			if got, _ := strconv.Atoi(string(m.Payload)); got != want {
				t.Fatalf("%s: after the restart got %s, want %d (messages %d..%d were acknowledged while the node was down)",
					a.topic, m.Payload, want, ackedFirst, held-1)
			}
			if err := cons[i].Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		receiveNone(t, ctx, cons[i])
	}
}

// TestAConsumerAckingWhileItsTopicIsUnloadedTimeAfterTimeGetsNoMessageTwice:
// a consumer receives and acknowledges 3,000 messages (one entry each)
// while its topic is unloaded ten times under it. Each unload ends its
// stream; the acks still on their way then, and those made until the
// consumer has subscribed again, reach the node that loads the topic
// again before it redelivers: no message is handed out twice, and the
// backlog drains. Before, hundreds came twice in such a run.
func TestAConsumerAckingWhileItsTopicIsUnloadedTimeAfterTimeGetsNoMessageTwice(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)
	c := s.client(client.ReconnectBackoff(20*time.Millisecond, 200*time.Millisecond))
	const topic, total, unloads = "acked-across-unloads", 3000, 10
	cons, err := c.Subscribe(ctx, topic, "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerReceiverQueueSize(50))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.NewProducer(ctx, topic, client.ProducerBatchMaxMessages(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range total {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte(strconv.Itoa(i))}, func(_ client.MessageID, _ *client.ProducerMessage, err error) {
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	seen := make([]int, total) // the receiver's until done
	var distinct atomic.Int64
	done := make(chan error, 1)
	go func() {
		for distinct.Load() < total {
			m, err := cons.Receive(ctx)
			if err != nil {
				done <- err
				return
			}
			n, _ := strconv.Atoi(string(m.Payload))
			if seen[n]++; seen[n] == 1 {
				distinct.Add(1)
			}
			if err := cons.Ack(m); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 1; i <= unloads; i++ {
		pollUntil(t, ctx, fmt.Sprintf("%d messages received before unload %d", i*total/(unloads+1), i), func() bool {
			return distinct.Load() >= int64(i*total/(unloads+1))
		})
		if err := c.Admin().UnloadTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for n, times := range seen {
		if times > 1 {
			t.Errorf("message %d handed out %d times", n, times)
		}
	}
	pollUntil(t, ctx, "the backlog drained", func() bool {
		st, ok := subStats(ctx, c, topic, "s")
		return ok && st.Backlog == 0
	})
	receiveNone(t, ctx, cons)
}
