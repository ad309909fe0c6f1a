package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
)

func TestBatchesAreCutAtMaxMessagesAndResolvedInOrder(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Hour), client.ProducerBatchMaxMessages(10))
	if err != nil {
		t.Fatal(err)
	}
	var r receipts
	for i := range 30 {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	waitFor(t, "30 receipts", func() bool { return r.len() == 30 })
	if got := batchSizes(b.Batches()); !slices.Equal(got, []int{10, 10, 10}) {
		t.Fatalf("batch sizes %v, want [10 10 10]", got)
	}
	for i := range 30 {
		if r.errs[i] != nil {
			t.Fatalf("message %d: %v", i, r.errs[i])
		}
		if r.msgs[i] != fmt.Sprintf("m%03d", i) {
			t.Fatalf("callback %d was for %s: callbacks out of order", i, r.msgs[i])
		}
		want := client.MessageID{Ledger: 1, Entry: int64(i / 10), Batch: int32(i % 10)}
		if r.ids[i] != want {
			t.Fatalf("message %d id %v, want %v", i, r.ids[i], want)
		}
	}
}

func TestBatchIsSentWhenLingerExpires(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var r receipts
	for i := range 3 {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	// No Flush, no full batch: only the linger timer can send them.
	waitFor(t, "3 receipts", func() bool { return r.len() == 3 })
	if got := batchSizes(b.Batches()); !slices.Equal(got, []int{3}) {
		t.Fatalf("batch sizes %v, want one batch of 3", got)
	}
}

func TestBatchesAreCutAtMaxBytes(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Hour), client.ProducerBatchMaxBytes(100))
	if err != nil {
		t.Fatal(err)
	}
	var r receipts
	for range 5 {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: make([]byte, 40)}, r.cb)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r.len() != 5 {
		t.Fatalf("Flush returned with %d of 5 callbacks run", r.len())
	}
	if got := batchSizes(b.Batches()); !slices.Equal(got, []int{2, 2, 1}) {
		t.Fatalf("batch sizes %v, want [2 2 1]", got)
	}
}

func TestSendBlocksWhilePendingLimitIsReached(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerMaxPendingMessages(2))
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	var r receipts
	p.SendAsync(ctx, payload(0), r.cb)
	p.SendAsync(ctx, payload(1), r.cb)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var blockedErr error
	p.SendAsync(short, payload(2), func(_ client.MessageID, _ *client.ProducerMessage, err error) { blockedErr = err })
	if !errors.Is(blockedErr, context.DeadlineExceeded) {
		t.Fatalf("third send with two pending: got %v, want it to block until its context ended", blockedErr)
	}
	b.ReleaseBatches()
	id, err := p.Send(ctx, payload(3))
	if err != nil {
		t.Fatal(err)
	}
	if r.len() != 2 || r.errs[0] != nil || r.errs[1] != nil {
		t.Fatalf("first two sends: %v", r.errs)
	}
	if r.ids[1].Less(id) == false {
		t.Fatalf("id %v of the later send is not after %v", id, r.ids[1])
	}
}

func TestFailFastProducerReturnsQueueFull(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerMaxPendingMessages(1), client.ProducerFailFast())
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	defer b.ReleaseBatches()
	p.SendAsync(ctx, payload(0), nil)
	_, err = p.Send(ctx, payload(1))
	if !errors.Is(err, client.ErrProducerQueueFull) {
		t.Fatalf("got %v, want ErrProducerQueueFull", err)
	}
}

func TestResendAfterLostReceiptKeepsSequenceIDsAndNameAndWritesOnce(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	b.DropReceipts(2) // two batches persist, their streams break before the receipt
	var r receipts
	for i := range 6 {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	log := cl.Messages(testTopic)
	if len(log) != 6 {
		t.Fatalf("log holds %d messages, want 6 (resends must be deduplicated)", len(log))
	}
	for i, m := range log {
		if m.GetSequenceId() != uint64(i) || string(m.GetPayload()) != fmt.Sprintf("m%03d", i) {
			t.Fatalf("log[%d] = seq %d %q", i, m.GetSequenceId(), m.GetPayload())
		}
		if r.ids[i] != (client.MessageID{Ledger: m.GetId().GetLedger(), Entry: m.GetId().GetEntry(), Batch: m.GetId().GetBatch()}) {
			t.Fatalf("message %d resolved with %v, stored at %v", i, r.ids[i], m.GetId())
		}
	}
	opens := b.Opens()
	if len(opens) < 3 {
		t.Fatalf("%d opens, want a reconnect per dropped receipt", len(opens))
	}
	for _, o := range opens[1:] {
		if o.Producer != p.Name() {
			t.Fatalf("reconnect opened as %q, want the first name %q", o.Producer, p.Name())
		}
	}
}

func TestProducerFollowsOwnershipMoveAndResendsHeldBatches(t *testing.T) {
	cl := fakebroker.NewCluster()
	a := fakebroker.Start(t, cl)
	bb := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, a.URL())
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	a.HoldBatches() // the next batches reach a but are not persisted
	var r receipts
	for i := 1; i <= 3; i++ {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	waitFor(t, "batches at the old owner", func() bool { return len(a.Batches()) >= 2 })
	cl.MoveTopic(testTopic, bb)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	log := cl.Messages(testTopic)
	if len(log) != 4 {
		t.Fatalf("log holds %d messages, want 4", len(log))
	}
	for i, m := range log {
		if m.GetSequenceId() != uint64(i) {
			t.Fatalf("log[%d] has sequence id %d: order broken", i, m.GetSequenceId())
		}
	}
	opens := bb.Opens()
	if len(opens) == 0 || opens[0].Producer != p.Name() {
		t.Fatalf("new owner saw opens %v, want the producer's name %q", opens, p.Name())
	}
}

func TestKeyedMessagesGoToTheKeysPartition(t *testing.T) {
	cl, _, c := setup(t, 4)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
	for _, k := range keys {
		id, err := p.Send(ctx, &client.ProducerMessage{Key: k, Payload: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		if int(id.Partition) != client.PartitionForKey(k, 4) {
			t.Fatalf("key %s: id partition %d, want %d", k, id.Partition, client.PartitionForKey(k, 4))
		}
	}
	for _, k := range keys {
		part := fmt.Sprintf("%s-partition-%d", testTopic, client.PartitionForKey(k, 4))
		found := false
		for _, m := range cl.Messages(part) {
			found = found || m.GetKey() == k
		}
		if !found {
			t.Fatalf("key %s not in %s", k, part)
		}
	}
	// Routing must not change between SDK versions, or a key's messages
	// would split across partitions: pin a few golden values.
	for _, g := range []struct {
		key     string
		n, want int
	}{{"alpha", 4, 3}, {"beta", 4, 3}, {"order-42", 4, 0}, {"alpha", 7, 5}, {"order-42", 7, 4}} {
		if got := client.PartitionForKey(g.key, g.n); got != g.want {
			t.Fatalf("PartitionForKey(%q, %d) = %d, want %d (routing changed)", g.key, g.n, got, g.want)
		}
	}
}

func TestUnkeyedMessagesRoundRobinPerBatch(t *testing.T) {
	cl, _, c := setup(t, 3)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Hour), client.ProducerBatchMaxMessages(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		p.SendAsync(ctx, payload(i), nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n := len(cl.Messages(fmt.Sprintf("%s-partition-%d", testTopic, i))); n != 2 {
			t.Fatalf("partition %d got %d messages, want one batch of 2 each", i, n)
		}
	}
}

func TestPerBatchSendErrorFailsOnlyThatBatch(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	b.FailNextSend(errcode.New(errcode.MessageTooLarge, "too big"))
	if _, err := p.Send(ctx, payload(0)); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("got %v, want ErrMessageTooLarge", err)
	}
	if _, err := p.Send(ctx, payload(1)); err != nil {
		t.Fatalf("send after a failed batch: %v", err)
	}
}

func TestMessageOverTopicLimitFailsWithoutBeingSent(t *testing.T) {
	cl := fakebroker.NewCluster()
	cl.MaxMessageBytes = 16
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, b.URL())
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(ctx, &client.ProducerMessage{Payload: make([]byte, 17)})
	var ce *client.Error
	if !errors.Is(err, client.ErrMessageTooLarge) || !errors.As(err, &ce) || ce.Code != errcode.MessageTooLarge {
		t.Fatalf("got %v, want a typed ErrMessageTooLarge", err)
	}
	if len(b.Batches()) != 0 {
		t.Fatal("oversize message reached the broker")
	}
}

func TestCloseFailsUnacknowledgedMessagesWithErrClosed(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	defer b.ReleaseBatches()
	var r receipts
	p.SendAsync(ctx, payload(0), r.cb)
	p.SendAsync(ctx, payload(1), r.cb)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r.len() != 2 || !errors.Is(r.errs[0], client.ErrClosed) || !errors.Is(r.errs[1], client.ErrClosed) {
		t.Fatalf("after Close: %v", r.errs)
	}
	if _, err := p.Send(ctx, payload(2)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after Close: %v", err)
	}
}

func TestProducerOnMissingTopicFailsWithTopicNotFound(t *testing.T) {
	_, _, c := setup(t, 0)
	_, err := c.NewProducer(testCtx(t), "nope")
	if !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("got %v, want ErrTopicNotFound", err)
	}
	if client.IsRetriable(err) {
		t.Fatal("TopicNotFound classified retriable")
	}
}

func TestBatchesInFlightAreCappedBelowTheServersLimit(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerMaxPendingMessages(5000), client.ProducerBatchMaxMessages(1),
		client.ProducerReceiptTimeout(0)) // held receipts must not look like a frozen node
	if err != nil {
		t.Fatal(err)
	}
	b.HoldReceipts()
	var r receipts
	const n = 2000
	for i := range n {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	waitFor(t, "512 batches in flight", func() bool { return len(b.Batches()) >= 512 })
	if got := len(b.Batches()); got != 512 {
		t.Fatalf("%d batches sent without a receipt, want the cap of 512", got)
	}
	b.ReleaseReceipts()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got := len(cl.Messages(testTopic)); got != n {
		t.Fatalf("%d messages stored, want %d", got, n)
	}
}

func TestSendTimeoutFailsUnacknowledgedMessagesWhileDisconnected(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, b.URL())
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerSendTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b.HoldBatches()
	// The owner moves to an address where nothing listens: the producer
	// cannot reconnect, and only the timeout resolves its messages.
	cl.SetOwner(testTopic, "127.0.0.1:1")
	var r receipts
	for i := range 3 {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	b.BreakStreams(errcode.New(errcode.Unavailable, "test break"))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r.len() != 3 {
		t.Fatalf("%d callbacks after Flush, want 3", r.len())
	}
	for i, err := range r.errs {
		if !errors.Is(err, client.ErrTimeout) || r.msgs[i] != fmt.Sprintf("m%03d", i) {
			t.Fatalf("callback %d: %s %v, want m%03d failing with ErrTimeout in order", i, r.msgs[i], err, i)
		}
	}
	b.ReleaseBatches()
	cl.SetOwner(testTopic, b.Addr)
	// The producer stays usable: once it has reconnected, sends succeed.
	waitFor(t, "a send to succeed after the timeouts", func() bool {
		_, err := p.Send(ctx, payload(3))
		return err == nil
	})
}

// A batch is one entry, held back as a whole until its delivery time: a
// delayed message is batched only with messages due at the same time.
func TestDelayedMessagesAreBatchedOnlyWithTheSameDeliveryTime(t *testing.T) {
	_, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Hour)
	var r receipts
	for i, due := range []time.Time{{}, {}, at, at, at.Add(time.Second), {}} {
		m := payload(i)
		m.DeliverAt = due
		p.SendAsync(ctx, m, r.cb)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := batchSizes(b.Batches()); !slices.Equal(got, []int{2, 2, 1, 1}) {
		t.Fatalf("batch sizes %v, want [2 2 1 1]", got)
	}
}

// TestMessageRouterPicksThePartitionAndOutOfRangeFails: a producer with a
// MessageRouter sends each message to the partition it returns (keys
// notwithstanding), and a partition out of range fails that send with
// ErrInvalidArgument and sends nothing.
func TestMessageRouterPicksThePartitionAndOutOfRangeFails(t *testing.T) {
	cl, _, c := setup(t, 4)
	ctx := testCtx(t)
	router := func(m *client.ProducerMessage, n int) int {
		if n != 4 {
			t.Errorf("router told %d partitions, want 4", n)
		}
		return int(m.Payload[0])
	}
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0), client.ProducerMessageRouter(router))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []byte{3, 0, 3, 2} {
		id, err := p.Send(ctx, &client.ProducerMessage{Key: "same", Payload: []byte{want}})
		if err != nil {
			t.Fatal(err)
		}
		if id.Partition != int32(want) {
			t.Fatalf("routed to %d: receipt from partition %d", want, id.Partition)
		}
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte{4}}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("router out of range: %v, want ErrInvalidArgument", err)
	}
	total := 0
	for i := range 4 {
		total += len(cl.Messages(fmt.Sprintf("%s-partition-%d", testTopic, i)))
	}
	if total != 4 {
		t.Fatalf("%d messages stored, want the 4 routed ones", total)
	}
}

// TestProducerReconnectsAtOnceWhenItsTopicIsUnloaded: a stream ended with
// NOT_OWNER and no redirect (an unload: the next lookup places the topic)
// is reopened at once, as Pulsar's clients do on a topic-unloaded notice,
// not after a reconnect backoff (here a minute).
func TestProducerReconnectsAtOnceWhenItsTopicIsUnloaded(t *testing.T) {
	_, b, _ := setup(t, 0)
	c, err := client.New(b.URL(), client.ReconnectBackoff(time.Minute, time.Minute), client.OperationTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	b.BreakStreams(&errcode.Error{Code: errcode.NotOwner, Message: "topic unloaded; look it up again"})
	waitFor(t, "the producer reopened", func() bool { return len(b.Opens()) >= 2 })
	if _, err := p.Send(ctx, payload(1)); err != nil {
		t.Fatal(err)
	}
}
