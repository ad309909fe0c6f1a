package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// sendPayloads sends payload(0)..payload(n-1) to topic one at a time (one
// entry each: Send waits for its receipt) and returns their ids.
func sendPayloads(t *testing.T, ctx context.Context, c *client.Client, topic string, n int, payload func(i int) []byte) []client.MessageID {
	t.Helper()
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ids := make([]client.MessageID, n)
	for i := range n {
		if ids[i], err = p.Send(ctx, &client.ProducerMessage{Payload: payload(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// sendCounting sends the messages "0".."n-1" (sendPayloads).
func sendCounting(t *testing.T, ctx context.Context, c *client.Client, topic string, n int) []client.MessageID {
	t.Helper()
	return sendPayloads(t, ctx, c, topic, n, func(i int) []byte { return []byte(strconv.Itoa(i)) })
}

// subStats is the stats of subscription sub of topic (one partition).
func subStats(ctx context.Context, c *client.Client, topic, sub string) (client.SubscriptionStats, bool) {
	st, err := c.Admin().TopicStats(ctx, topic)
	if err != nil {
		return client.SubscriptionStats{}, false
	}
	for _, s := range st.Subscriptions {
		if s.Name == sub {
			return s, true
		}
	}
	return client.SubscriptionStats{}, false
}

// waitUnacked waits until sub of topic has want consumers attached and
// want messages delivered to them and unacknowledged: after a cursor move,
// that its consumers subscribed again and got what follows the new
// position (what they had buffered from before it went with their old
// streams).
func waitUnacked(t *testing.T, ctx context.Context, c *client.Client, topic, sub string, consumers int, unacked uint64) {
	t.Helper()
	pollUntil(t, ctx, fmt.Sprintf("%d consumers holding %d unacked messages", consumers, unacked), func() bool {
		s, ok := subStats(ctx, c, topic, sub)
		return ok && s.Consumers == consumers && s.Unacked == unacked
	})
}

// receiveNone checks that cons has nothing more to hand out within a short
// wait: the absence of a duplicate cannot be waited for.
func receiveNone(t *testing.T, ctx context.Context, cons *client.Consumer) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if m, err := cons.Receive(rctx); err == nil {
		t.Fatalf("received %s after the position's last message", m.Payload)
	}
}

// TestMovingACursorDropsWhatItsConsumersHadBuffered: a reset by the admin
// API, or a seek by one consumer of a Shared subscription, disconnects the
// subscription's other consumers, as Pulsar does, so that what they had
// buffered from the old position is never handed out: after the move they
// get the messages from the new position, once each. Before, they handed
// out their whole buffer, and then the new position's messages again.
func TestMovingACursorDropsWhatItsConsumersHadBuffered(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()

	t.Run("reset", func(t *testing.T) {
		const topic = "reset-buffered"
		ids := sendCounting(t, ctx, c, topic, 30)
		cons, err := c.Subscribe(ctx, topic, "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerAckGroupingTime(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		for want := range 5 {
			m := receiveWithin(t, ctx, cons)
			if string(m.Payload) != strconv.Itoa(want) {
				t.Fatalf("got %s, want %d", m.Payload, want)
			}
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		waitUnacked(t, ctx, c, topic, "s", 1, 25) // 5..29 buffered in the consumer
		if _, err := c.Admin().ResetCursor(ctx, topic, "s", client.CursorTarget{ID: &ids[20]}, true); err != nil {
			t.Fatal(err)
		}
		waitUnacked(t, ctx, c, topic, "s", 1, 10)
		for want := 20; want < 30; want++ {
			if m := receiveWithin(t, ctx, cons); string(m.Payload) != strconv.Itoa(want) {
				t.Fatalf("after the reset to 20 got %s, want %d", m.Payload, want)
			}
		}
		receiveNone(t, ctx, cons)
	})

	t.Run("seek", func(t *testing.T) {
		const topic = "seek-buffered"
		var cons []*client.Consumer
		for _, name := range []string{"a", "b"} {
			cc, err := c.Subscribe(ctx, topic, "s", client.ConsumerType(client.Shared), client.ConsumerName(name))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			cons = append(cons, cc)
		}
		ids := sendCounting(t, ctx, c, topic, 30)
		waitUnacked(t, ctx, c, topic, "s", 2, 30) // all 30 buffered in a and b
		if err := cons[0].Seek(ctx, ids[25]); err != nil {
			t.Fatal(err)
		}
		waitUnacked(t, ctx, c, topic, "s", 2, 5)
		var got []int
		pollUntil(t, ctx, "25..29 received", func() bool {
			for _, cc := range cons {
				rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				m, err := cc.Receive(rctx)
				cancel()
				if err == nil {
					n, _ := strconv.Atoi(string(m.Payload))
					got = append(got, n)
				}
			}
			return len(got) >= 5
		})
		slices.Sort(got)
		if !slices.Equal(got, []int{25, 26, 27, 28, 29}) {
			t.Fatalf("after the seek to 25 the two consumers got %v", got)
		}
		for _, cc := range cons {
			receiveNone(t, ctx, cc)
		}
	})
}

// TestSeekAndResetRefuseAMessageIDOfAnotherLedger: a message id whose
// ledger is not the topic's (another partition's, or made up) is refused
// with INVALID_ARGUMENT and moves nothing; it used to sort before every
// entry and so rewound the subscription to the start. An id of a trimmed
// ledger older than every retained one still means the oldest message
// retained. The command line asks which partition an id of a partitioned
// topic is of.
func TestSeekAndResetRefuseAMessageIDOfAnotherLedger(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	const topic = "two-parts"
	if err := c.Admin().CreateTopic(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	names, err := c.Admin().PartitionNames(ctx, topic)
	if err != nil || len(names) != 2 {
		t.Fatalf("partitions %v: %v", names, err)
	}
	var ids [2][]client.MessageID
	for i, name := range names {
		ids[i] = sendCounting(t, ctx, c, name, 4)
	}
	if ids[0][0].Ledger == ids[1][0].Ledger {
		t.Fatalf("both partitions write ledger %d", ids[0][0].Ledger)
	}
	cons, err := c.Subscribe(ctx, topic, "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerAckGroupingTime(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for range 8 {
		if err := cons.Ack(receiveWithin(t, ctx, cons)); err != nil {
			t.Fatal(err)
		}
	}
	backlogs := func() [2]uint64 {
		var out [2]uint64
		for i, name := range names {
			st, _ := subStats(ctx, c, name, "s")
			out[i] = st.Backlog
		}
		return out
	}
	pollUntil(t, ctx, "everything acknowledged", func() bool { return backlogs() == [2]uint64{} })

	other := ids[1][1]
	other.Partition = 0 // partition 1's id, said to be partition 0's
	if err := cons.Seek(ctx, other); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("seek of partition 0 to partition 1's ledger: %v", err)
	}
	if _, err := c.Admin().ResetCursor(ctx, topic, "s", client.CursorTarget{ID: &other}, true); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("reset of partition 0 to partition 1's ledger: %v", err)
	}
	// Partition 0's ledger is older than every ledger of partition 1: by
	// order alone it would pass for one trimmed from partition 1.
	older := ids[0][1]
	older.Partition = 1
	if err := cons.Seek(ctx, older); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("seek of partition 1 to partition 0's older ledger: %v", err)
	}
	madeUp := client.MessageID{Ledger: 999999, Entry: 3}
	if err := cons.Seek(ctx, madeUp); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("seek to a made-up ledger: %v", err)
	}
	if _, _, err := run(t, "", "subscriptions", "reset", "--url", s.url(), "--topic", topic, "--subscription", "s",
		"--message-id", ids[1][1].String(), "--execute"); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("reset --message-id on a partitioned topic without --partition: %v", err)
	}
	if got := backlogs(); got != [2]uint64{} {
		t.Fatalf("refused moves changed the backlogs to %v", got)
	}

	// With its partition named, the id moves that partition only.
	if _, _, err := run(t, "", "subscriptions", "reset", "--url", s.url(), "--topic", topic, "--subscription", "s",
		"--message-id", ids[1][1].String(), "--partition", "1", "--execute"); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "partition 1 moved back to its second message", func() bool { return backlogs() == [2]uint64{0, 3} })

	// An id of a ledger older than every ledger of partition 0, which no
	// record names any more (trimmed), is its oldest message.
	trimmed := client.MessageID{Ledger: ids[0][0].Ledger - 1, Entry: 0}
	res, err := c.Admin().ResetCursor(ctx, names[0], "s", client.CursorTarget{ID: &trimmed}, false)
	if err != nil || len(res) != 1 || res[0].Position.Ledger != ids[0][0].Ledger || res[0].Position.Entry != ids[0][0].Entry {
		t.Fatalf("reset to a ledger older than the first resolved to %v (%v), want %v", res, err, ids[0][0])
	}
}

// TestConsumerCallsRightAfterOpeningAndAfterClosing: a seek or an
// ungrouped ack right after Subscribe, and a reader's seek right after
// NewReader, go through (they failed as if the consumer were reconnecting
// until its stream was recorded); after Close they fail with ErrClosed
// instead of a retriable error, or of nothing for an ack or a nack.
func TestConsumerCallsRightAfterOpeningAndAfterClosing(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	const topic = "right-after"
	ids := sendCounting(t, ctx, c, topic, 3)
	for i := range 5 {
		cons, err := c.Subscribe(ctx, topic, fmt.Sprintf("s%d", i), client.ConsumerInitialPosition(client.Earliest), client.ConsumerAckGroupingTime(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.SeekEarliest(ctx); err != nil {
			t.Fatalf("seek right after subscribe: %v", err)
		}
		cons.Close()
		cons, err = c.Subscribe(ctx, topic, fmt.Sprintf("s%d", i), client.ConsumerAckGroupingTime(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.AckID(ids[0]); err != nil {
			t.Fatalf("ack right after subscribe: %v", err)
		}
		cons.Close()
		r, err := c.NewReader(ctx, topic, client.ReaderStartEarliest())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SeekLatest(ctx); err != nil {
			t.Fatalf("reader seek right after open: %v", err)
		}
		r.Close()
	}
	cons, err := c.Subscribe(ctx, topic, "closed", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	m := receiveWithin(t, ctx, cons)
	cons.Close()
	if err := cons.Seek(ctx, ids[0]); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("seek after close: %v", err)
	}
	if err := cons.SeekEarliest(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("seek earliest after close: %v", err)
	}
	if err := cons.Ack(m); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("ack after close: %v", err)
	}
	if err := cons.Nack(m); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("nack after close: %v", err)
	}
}
