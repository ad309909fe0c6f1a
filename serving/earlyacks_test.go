package serving_test

import (
	"slices"
	"testing"

	"github.com/strata-mq/strata/serving/servingpb"
)

// TestAcksBeforeTheFirstFlowOnAReloadedTopicAcknowledgeMessagesNotReadYet:
// a consumer that subscribes again after its topic moved sends the acks
// its application made meanwhile before it grants permits. The node that
// loaded the topic has read nothing yet, and dropped such acks: those
// messages came again. It now keeps them and applies them as it reads
// their entries, a message of a batch at a time, or up to a cumulative
// ack.
func TestAcksBeforeTheFirstFlowOnAReloadedTopicAcknowledgeMessagesNotReadYet(t *testing.T) {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newCluster(t).start("a", nil)
			topic := "public/default/early-acks-" + tc.name
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
				t.Fatalf("after the reload got %v, want %v: the acks sent before the flow were not applied", seqs, tc.want)
			}
		})
	}
}
