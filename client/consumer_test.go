package client_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
)

func publish(cl interface{ Publish(string, ...string) }, topic string, from, to int) {
	for i := from; i < to; i++ {
		cl.Publish(topic, fmt.Sprintf("m%03d", i))
	}
}

func receiveN(t *testing.T, ctx context.Context, c *client.Consumer, n int, ack bool) []*client.Message {
	t.Helper()
	var out []*client.Message
	for range n {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d of %d: %v", len(out)+1, n, err)
		}
		if ack {
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestConsumerGrantsQueueSizeThenRefillsAtHalf(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 25)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerReceiverQueueSize(10))
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, ctx, cons, 25, true)
	for i, m := range msgs {
		if string(m.Payload) != fmt.Sprintf("m%03d", i) {
			t.Fatalf("message %d is %q: out of order", i, m.Payload)
		}
	}
	// 25 messages taken = 5 refills of half the queue.
	waitFor(t, "6 flow requests", func() bool { return len(b.Flows()) >= 6 })
	flows := b.Flows()
	if len(flows) != 6 || flows[0] != 10 {
		t.Fatalf("flows %v: want 10 first, then refills", flows)
	}
	for _, f := range flows[1:] {
		if f != 5 {
			t.Fatalf("flows %v: every refill should be half the queue (5)", flows)
		}
	}
	waitFor(t, "25 acks", func() bool { return len(b.Acks()) == 25 })
}

func TestConsumerStartsAtLatestByDefault(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 3)
	cons, err := c.Subscribe(ctx, "t", "s")
	if err != nil {
		t.Fatal(err)
	}
	publish(cl, testTopic, 3, 5)
	msgs := receiveN(t, ctx, cons, 2, true)
	if string(msgs[0].Payload) != "m003" || string(msgs[1].Payload) != "m004" {
		t.Fatalf("got %q %q, want the messages published after subscribing", msgs[0].Payload, msgs[1].Payload)
	}
}

func TestConsumerResubscribesAfterStreamBreakAndGetsUnackedAgain(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 5)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, ctx, cons, 3, false)
	for _, m := range msgs[:2] {
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "2 acks", func() bool { return len(b.Acks()) == 2 })
	b.BreakStreams(errcode.New(errcode.Unavailable, "test break"))
	waitFor(t, "resubscribe", func() bool { return len(b.Subscribes()) >= 2 })
	// m002 was received before the break but not acknowledged: it comes
	// again (after, possibly, what was buffered before the break).
	seen := map[string]bool{}
	for !seen["m002"] {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("unacknowledged m002 not redelivered after resubscribe (saw %v): %v", seen, err)
		}
		seen[string(m.Payload)] = true
	}
	if seen["m000"] || seen["m001"] {
		t.Fatalf("acknowledged messages redelivered: %v", seen)
	}
}

func TestMessagesIteratorYieldsInOrderAndStopsOnBreak(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 10)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg, err := range cons.Messages(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.Payload) != fmt.Sprintf("m%03d", n) {
			t.Fatalf("message %d is %q", n, msg.Payload)
		}
		n++
		if n == 10 {
			break
		}
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range cons.Messages(short) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("iterator on a cancelled context: %v", err)
		}
	}
}

func TestPartitionedConsumerMergesEveryPartitionAndAcksEach(t *testing.T) {
	cl, b, c := setup(t, 3)
	ctx := testCtx(t)
	for i := range 3 {
		publish(cl, fmt.Sprintf("%s-partition-%d", testTopic, i), i*10, i*10+4)
	}
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int32{}
	for _, m := range receiveN(t, ctx, cons, 12, true) {
		seen[string(m.Payload)] = m.ID.Partition
	}
	for i := range 3 {
		for j := range 4 {
			p, ok := seen[fmt.Sprintf("m%03d", i*10+j)]
			if !ok || p != int32(i) {
				t.Fatalf("m%03d: seen=%v partition %d", i*10+j, ok, p)
			}
		}
	}
	waitFor(t, "12 acks", func() bool { return len(b.Acks()) == 12 })
	st, err := c.Admin().TopicStats(ctx, testTopic+"-partition-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subscriptions) != 1 || st.Subscriptions[0].Backlog != 0 {
		t.Fatalf("partition 1 stats after acking everything: %+v", st.Subscriptions)
	}
}

func TestSubscribeToMissingTopicIsTopicNotFound(t *testing.T) {
	_, _, c := setup(t, 0)
	_, err := c.Subscribe(testCtx(t), "tenant/ns/missing", "s")
	if !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("got %v, want ErrTopicNotFound", err)
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != errcode.TopicNotFound {
		t.Fatalf("got %#v, want a *client.Error with code TOPIC_NOT_FOUND", err)
	}
	if _, err := c.Subscribe(testCtx(t), "a/b/c/d", "s"); !errors.Is(err, client.ErrInvalidTopicName) {
		t.Fatalf("bad name: got %v, want ErrInvalidTopicName", err)
	}
}

func TestSeekMovesTheSubscription(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 5)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerReceiverQueueSize(2))
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, ctx, cons, 5, true)
	if err := cons.Seek(ctx, msgs[1].ID); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "m001" {
		t.Fatalf("after Seek(%v) got %q, want m001", msgs[1].ID, m.Payload)
	}
	if err := cons.SeekTime(ctx, msgs[3].PublishTime); err != nil {
		t.Fatal(err)
	}
	m, err = cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.PublishTime.Before(msgs[3].PublishTime) {
		t.Fatalf("after SeekTime got a message published before the time")
	}
}

func TestReaderResumesAfterLastMessageOnReconnect(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 6)
	ids := cl.Messages(testTopic)
	start := client.MessageID{Ledger: ids[1].GetId().GetLedger(), Entry: ids[1].GetId().GetEntry()}
	r, err := c.NewReader(ctx, "t", client.ReaderStartMessageID(start))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Payload))
	}
	b.BreakStreams(errcode.New(errcode.Unavailable, "test break"))
	waitFor(t, "resubscribe", func() bool { return len(b.Subscribes()) >= 2 })
	for len(got) < 5 {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Payload))
	}
	want := []string{"m001", "m002", "m003", "m004", "m005"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reader got %v, want %v (no gaps, no repeats across the reconnect)", got, want)
	}
	subs := b.Subscribes()
	if !subs[0].GetNonDurable() || subs[len(subs)-1].GetStartMessageId() == nil {
		t.Fatalf("reader subscribes: %v", subs)
	}
}

func TestReaderFromLatestSeesOnlyNewMessages(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 3)
	r, err := c.NewReader(ctx, "t", client.ReaderStartLatest())
	if err != nil {
		t.Fatal(err)
	}
	publish(cl, testTopic, 3, 4)
	m, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "m003" {
		t.Fatalf("got %q, want m003", m.Payload)
	}
}

func TestCumulativeAckRefusedOnShared(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 1)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerType(client.Shared), client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.AckCumulative(m); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("got %v, want ErrInvalidArgument", err)
	}
}

func TestCloseEndsReceiveWithErrClosed(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	cons, err := c.Subscribe(ctx, "t", "s")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := cons.Receive(ctx); done <- err }()
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
}

func TestReaderStartingInsideABatchSkipsEarlierMessagesAndAcksWhatItReads(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p.SendAsync(ctx, payload(i), nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := c.NewReader(ctx, "t", client.ReaderStartMessageID(client.MessageID{Ledger: 1, Entry: 0, Batch: 1}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m001", "m002"} {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != want {
			t.Fatalf("got %q, want %q", m.Payload, want)
		}
	}
	waitFor(t, "the reader's acks", func() bool { return len(b.Acks()) == 2 })
}

func TestClientCloseStopsEveryGoroutine(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 2); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	c, err := client.New(b.URL(), client.ReconnectBackoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewReader(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprint(i), Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	b.BreakStreams(errcode.New(errcode.Unavailable, "test break"))
	receiveN(t, ctx, cons, 10, true)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
	if _, err := c.NewProducer(ctx, "t"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("NewProducer on a closed client: %v", err)
	}
}

func TestConsumerFollowsOwnershipMove(t *testing.T) {
	cl := fakebroker.NewCluster()
	a := fakebroker.Start(t, cl)
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, a.URL())
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 2)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	receiveN(t, ctx, cons, 2, true)
	cons.Close() // flushes the gathered acks
	cons, err = c.Subscribe(ctx, "t", "s")
	if err != nil {
		t.Fatal(err)
	}
	cl.MoveTopic(testTopic, b)
	waitFor(t, "subscribe at the new owner", func() bool { return len(b.Subscribes()) > 0 })
	publish(cl, testTopic, 2, 4)
	got := receiveN(t, ctx, cons, 2, true)
	if string(got[0].Payload) != "m002" || string(got[1].Payload) != "m003" {
		t.Fatalf("after the move got %q, %q", got[0].Payload, got[1].Payload)
	}
}

func TestProducerFailsForGoodWhenItsTopicIsDeleted(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	var r receipts
	p.SendAsync(ctx, payload(1), r.cb)
	waitFor(t, "the held batch", func() bool { return len(b.Batches()) == 2 })
	if err := c.Admin().DeleteTopic(ctx, "t", true); err != nil {
		t.Fatal(err)
	}
	b.BreakStreams(errcode.New(errcode.Unavailable, "test break"))
	b.ReleaseBatches()
	waitFor(t, "the pending message to fail", func() bool { return r.len() == 1 })
	if !errors.Is(r.errs[0], client.ErrTopicNotFound) {
		t.Fatalf("pending message failed with %v, want ErrTopicNotFound", r.errs[0])
	}
	if _, err := p.Send(ctx, payload(2)); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("send after the topic was deleted: %v", err)
	}
}

// TestRetryLetterPolicyRejectsABadTopicAndANegativeDelay: a retry topic
// that is not a valid name fails Subscribe before anything is subscribed,
// and a negative ReconsumeLater delay is ErrInvalidArgument, with nothing
// published or acknowledged.
func TestRetryLetterPolicyRejectsABadTopicAndANegativeDelay(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	if _, err := c.Subscribe(ctx, "t", "s", client.ConsumerRetryLetter(client.RetryLetterPolicy{Topic: "a/b/c/d"})); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("subscribe with a bad retry topic: %v, want ErrInvalidArgument", err)
	}
	publish(cl, testTopic, 0, 1)
	// The retry topic is the fake broker's to create on subscribe.
	if err := cl.CreateTopic("public/default/t-s-RETRY", 0); err != nil {
		t.Fatal(err)
	}
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerRetryLetter(client.RetryLetterPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := len(b.Batches())
	if err := cons.ReconsumeLater(ctx, m, -time.Second); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("negative delay: %v, want ErrInvalidArgument", err)
	}
	if n := len(b.Batches()); n != before {
		t.Fatalf("a rejected ReconsumeLater published %d batches", n-before)
	}
}

func TestBatchReceiveReturnsInOrderWithinItsLimits(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	if _, err := (&client.Consumer{}).BatchReceive(ctx, client.BatchReceivePolicy{MaxMessages: -1}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a negative limit: %v", err)
	}
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	empty, cancel := context.WithCancel(ctx)
	cancel()
	if msgs, err := cons.BatchReceive(empty, client.BatchReceivePolicy{}); !errors.Is(err, context.Canceled) || msgs != nil {
		t.Fatalf("nothing to receive, ctx cancelled: %d messages, %v", len(msgs), err)
	}
	publish(cl, testTopic, 0, 250)
	next := 0
	batch := func(p client.BatchReceivePolicy) int {
		t.Helper()
		msgs, err := cons.BatchReceive(ctx, p)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("batch at %d: %d messages, %v", next, len(msgs), err)
		}
		for _, m := range msgs {
			if string(m.Payload) != fmt.Sprintf("m%03d", next) {
				t.Fatalf("got %q, want m%03d", m.Payload, next)
			}
			next++
		}
		return len(msgs)
	}
	if n := batch(client.BatchReceivePolicy{MaxMessages: 100, Timeout: time.Minute}); n != 100 {
		t.Fatalf("MaxMessages 100: %d messages", n)
	}
	if n := batch(client.BatchReceivePolicy{MaxBytes: 10, Timeout: time.Minute}); n != 3 { // 4 B each: 12 B cross 10
		t.Fatalf("MaxBytes 10: %d messages", n)
	}
	// The rest, fewer than the count: the timeout ends each batch.
	for next < 250 {
		batch(client.BatchReceivePolicy{MaxMessages: 1000, Timeout: 100 * time.Millisecond})
	}
}

// TestConsumerResubscribesAtOnceWhenItsTopicIsUnloaded: as the producer,
// a consumer whose stream ends with NOT_OWNER and no redirect subscribes
// again at once, not after a reconnect backoff (here a minute).
func TestConsumerResubscribesAtOnceWhenItsTopicIsUnloaded(t *testing.T) {
	cl, b, _ := setup(t, 0)
	c, err := client.New(b.URL(), client.ReconnectBackoff(time.Minute, time.Minute), client.OperationTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	publish(cl, testTopic, 0, 1)
	receiveN(t, ctx, cons, 1, true)
	b.BreakStreams(&errcode.Error{Code: errcode.NotOwner, Message: "topic unloaded; look it up again"})
	waitFor(t, "the consumer subscribed again", func() bool { return len(b.Subscribes()) >= 2 })
	// m001 is published after the break: the consumer must get it on its
	// new stream. m000 may come again before it, when its ack was still
	// gathered as the stream broke; that is not what this test is about.
	publish(cl, testTopic, 1, 2)
	for string(receiveN(t, ctx, cons, 1, true)[0].Payload) != "m001" {
	}
}
