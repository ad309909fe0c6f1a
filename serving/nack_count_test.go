package serving_test

import (
	"testing"

	"github.com/strata-mq/strata/serving/servingpb"
)

func (c *cons) nack(ids ...*servingpb.MessageId) {
	if err := c.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Nack{Nack: &servingpb.Nack{Ids: ids}}}); err != nil {
		c.t.Fatalf("nack: %v", err)
	}
}

// A nack counts a redelivery of the messages it names, not of their
// siblings in the batch: a dead-letter policy reads the count as a
// message's own failures. Where ownership is per entry (Shared,
// Exclusive, Failover) the siblings come back uncounted, without what was
// acknowledged; on Key_Shared, where it is per message, they do not come
// back at all.
func TestANackCountsARedeliveryOfTheNackedMessagesOnly(t *testing.T) {
	for _, typ := range []servingpb.SubscriptionType{servingpb.SubscriptionType_EXCLUSIVE, servingpb.SubscriptionType_SHARED,
		servingpb.SubscriptionType_FAILOVER, servingpb.SubscriptionType_KEY_SHARED} {
		t.Run(typ.String(), func(t *testing.T) {
			c := newCluster(t)
			n := c.start("a", nil)
			const topic = "nack-count"
			cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: typ})
			cs.flow(100)
			p := mustProducer(t, n, topic, "p")
			p.mustSend(round(1, 10)...) // one entry, seq 1..10
			got := cs.receive(10)
			cs.ack(got[0].GetId())
			cs.nack(got[3].GetId(), got[7].GetId())

			keyed := typ == servingpb.SubscriptionType_KEY_SHARED
			want := map[uint64]uint32{4: 1, 8: 1} // seq: redelivery count
			if !keyed {
				want = map[uint64]uint32{4: 1, 8: 1, 2: 0, 3: 0, 5: 0, 6: 0, 7: 0, 9: 0, 10: 0}
			}
			checkCounts(t, cs.receive(len(want)), want)

			cs.nack(got[3].GetId()) // again: 4 failed twice, 8 once
			want = map[uint64]uint32{4: 2}
			if !keyed {
				want = map[uint64]uint32{4: 2, 8: 1, 2: 0, 3: 0, 5: 0, 6: 0, 7: 0, 9: 0, 10: 0}
			}
			checkCounts(t, cs.receive(len(want)), want)
			p.mustSend(msg(11))
			if m := cs.receive(1); len(m) != 1 || m[0].GetSequenceId() != 11 {
				t.Fatalf("after the redeliveries got %v, want only seq 11", m)
			}
		})
	}
}

// checkCounts checks that msgs are exactly the sequence ids of want, each
// with its redelivery count.
func checkCounts(t *testing.T, msgs []*servingpb.ReceivedMessage, want map[uint64]uint32) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d (seq: count) %v", len(msgs), len(want), want)
	}
	for _, m := range msgs {
		count, ok := want[m.GetSequenceId()]
		if !ok || m.GetRedeliveryCount() != count {
			t.Fatalf("seq %d redelivered %d times; want (seq: count) %v", m.GetSequenceId(), m.GetRedeliveryCount(), want)
		}
	}
}
