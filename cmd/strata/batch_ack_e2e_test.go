package main

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterTopicsUnload:
// through the SDK on a real standalone, a consumer acknowledges some
// messages of one producer batch, `strata topics unload` moves the topic,
// and a new consumer of the subscription receives exactly the others,
// then what was published after (Pulsar's batch-index acknowledgements).
// Before, the whole batch came again; a new consumer, unlike the old one
// reconnecting, has no memory of what was acknowledged to drop it with.
func TestMessagesAcknowledgedInABatchAreNotDeliveredAgainAfterTopicsUnload(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cli := cliAt(t, s.url())
	const topic, batch = "batch-acks", 10
	sub := func() *client.Consumer {
		cons, err := c.Subscribe(ctx, topic, "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerAckGroupingTime(0))
		if err != nil {
			t.Fatal(err)
		}
		return cons
	}
	cons := sub()
	p, err := c.NewProducer(ctx, topic, client.ProducerBatchMaxMessages(batch), client.ProducerLinger(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	errs := make(chan error, batch)
	for i := range batch {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte(strconv.Itoa(i))}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
			if err == nil && id.Batch != int32(i) {
				t.Errorf("message %d has batch index %d: not one batch", i, id.Batch)
			}
			errs <- err
		})
	}
	for range batch {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	acked := []int{0, 3, 4, 8}
	for i := range batch {
		m := receiveWithin(t, ctx, cons)
		if slices.Contains(acked, i) {
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUnacked(t, ctx, c, topic, "s", 1, uint64(batch-len(acked)))
	cons.Close()
	cli("", "topics", "unload", topic)

	cons = sub()
	defer cons.Close()
	sendPayloads(t, ctx, c, topic, 1, func(int) []byte { return []byte(strconv.Itoa(batch)) })
	var want []int
	for i := range batch + 1 {
		if !slices.Contains(acked, i) {
			want = append(want, i)
		}
	}
	var got []int
	for !slices.Contains(got, batch) {
		n, _ := strconv.Atoi(string(receiveWithin(t, ctx, cons).Payload))
		got = append(got, n)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the unload the subscription delivered %v, want %v", got, want)
	}
}
