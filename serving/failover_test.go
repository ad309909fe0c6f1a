package serving_test

import (
	"fmt"
	"testing"

	"github.com/strata-mq/strata/serving/servingpb"
)

func failoverSub(topic, consumer string) *servingpb.Subscribe {
	return &servingpb.Subscribe{Topic: topic, Subscription: "fo", Type: servingpb.SubscriptionType_FAILOVER, ConsumerName: consumer}
}

// wantSeqs checks the sequence ids and redelivery counts of msgs.
func wantSeqs(t *testing.T, msgs []*servingpb.ReceivedMessage, first uint64, redeliveries uint32) {
	t.Helper()
	for i, m := range msgs {
		if m.GetSequenceId() != first+uint64(i) || m.GetRedeliveryCount() != redeliveries {
			t.Fatalf("message %d: seq %d redelivered %d times, want seq %d redelivered %d times",
				i, m.GetSequenceId(), m.GetRedeliveryCount(), first+uint64(i), redeliveries)
		}
	}
}

// A failover subscription delivers only to its active consumer, the first
// by name; when that one leaves, the standby receives what it had not
// acknowledged, in order, and then the rest. A standby that had received
// anything would see it first, and the order check would fail.
func TestFailoverDeliversToTheActiveConsumerAndHandsOverInOrder(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "failover"
	standby := mustSubscribe(t, n, failoverSub(topic, "consumer-b"))
	active := mustSubscribe(t, n, failoverSub(topic, "consumer-a"))
	standby.flow(100)
	active.flow(100)
	p := mustProducer(t, n, topic, "")
	for i := uint64(1); i <= 10; i++ {
		p.mustSend(msg(i))
	}
	got := active.receive(10)
	wantSeqs(t, got, 1, 0)
	eventually(t, "stats name the active consumer", func() error { return activeIs(t, n, topic, "consumer-a") })
	// Cumulative acknowledgement is allowed, as on an exclusive subscription.
	if err := active.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{
		Ack: &servingpb.Ack{Ids: []*servingpb.MessageId{got[3].GetId()}, Cumulative: true}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cumulative ack applied", func() error { return backlogIs(t, n, topic, 6) })
	active.cancel()
	wantSeqs(t, standby.receive(6), 5, 1)
	eventually(t, "stats name the new active consumer", func() error { return activeIs(t, n, topic, "consumer-b") })
	p.mustSend(msg(11))
	wantSeqs(t, standby.receive(1), 11, 0)
}

// A consumer that attaches with a name before the active one's takes over,
// and receives what the previous active one had not acknowledged, in order.
func TestFailoverMovesToAConsumerThatSortsFirst(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "failover-switch"
	first := mustSubscribe(t, n, failoverSub(topic, "consumer-b"))
	first.flow(100)
	p := mustProducer(t, n, topic, "")
	for i := uint64(1); i <= 5; i++ {
		p.mustSend(msg(i))
	}
	wantSeqs(t, first.receive(5), 1, 0)
	next := mustSubscribe(t, n, failoverSub(topic, "consumer-a"))
	next.flow(100)
	wantSeqs(t, next.receive(5), 1, 1)
	p.mustSend(msg(6))
	wantSeqs(t, next.receive(1), 6, 0)
}

// The partitions of a topic spread over a failover subscription's
// consumers: partition i is served by the consumer at i modulo their
// number, by name.
func TestFailoverSpreadsPartitionsOverTheConsumers(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "spread-partition-1"
	a := mustSubscribe(t, n, failoverSub(topic, "consumer-a"))
	b := mustSubscribe(t, n, failoverSub(topic, "consumer-b"))
	a.flow(100)
	b.flow(100)
	p := mustProducer(t, n, topic, "")
	p.mustSend(msg(1))
	wantSeqs(t, b.receive(1), 1, 0)
	b.cancel()
	wantSeqs(t, a.receive(1), 1, 1)
}

// onlySubscription returns the stats of the topic's only subscription.
func onlySubscription(t *testing.T, n *testNode, topic string) (*servingpb.SubscriptionStats, error) {
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		return nil, err
	}
	if len(st.GetSubscriptions()) != 1 {
		return nil, fmt.Errorf("%d subscriptions, want 1", len(st.GetSubscriptions()))
	}
	return st.GetSubscriptions()[0], nil
}

// backlogIs checks the backlog of the topic's only subscription.
func backlogIs(t *testing.T, n *testNode, topic string, want uint64) error {
	s, err := onlySubscription(t, n, topic)
	if err == nil && s.GetBacklog() != want {
		err = fmt.Errorf("backlog %d, want %d", s.GetBacklog(), want)
	}
	return err
}

// activeIs checks the active consumer the stats of the topic's only
// subscription name.
func activeIs(t *testing.T, n *testNode, topic, want string) error {
	s, err := onlySubscription(t, n, topic)
	if err == nil && s.GetActiveConsumer() != want {
		err = fmt.Errorf("active consumer %q, want %q", s.GetActiveConsumer(), want)
	}
	return err
}
