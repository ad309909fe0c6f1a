package serving_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

func TestProducedMessagesAreConsumedInOrderByteIdentical(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 7; cfg.CacheBytes = 600 })
	const topic = "public/default/orders"
	// A subscription from the earliest position, created before producing.
	early := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	p := mustProducer(t, n, topic, "p1")
	var seq uint64
	const batches = 40
	for i := 0; i < batches; i++ {
		var ms []*servingpb.Message
		for j := 0; j <= i%3; j++ {
			seq++
			ms = append(ms, msg(seq))
		}
		p.mustSend(ms...)
	}
	early.flow(1000)
	got := early.receive(int(seq))
	checkInOrder(t, got, 1, seq)
	// A second subscription reads everything back from the bookies (the
	// cache is tiny and ledgers rolled several times).
	late := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "late", InitialPosition: servingpb.InitialPosition_EARLIEST})
	late.flow(1000)
	checkInOrder(t, late.receive(int(seq)), 1, seq)
}

func checkInOrder(t *testing.T, got []*servingpb.ReceivedMessage, first, last uint64) {
	t.Helper()
	if len(got) != int(last-first+1) {
		t.Fatalf("got %d messages, want %d", len(got), last-first+1)
	}
	for i, m := range got {
		want := first + uint64(i)
		if m.GetSequenceId() != want || !bytes.Equal(m.GetPayload(), payloadOf(want)) ||
			m.GetProperties()["seq"] != fmt.Sprint(want) || m.GetKey() != fmt.Sprintf("k%d", want%7) {
			t.Fatalf("message %d: got seq %d payload %q, want seq %d", i, m.GetSequenceId(), m.GetPayload(), want)
		}
		if i > 0 && m.GetPublishTimeUnixNano() < got[i-1].GetPublishTimeUnixNano() {
			t.Fatalf("publish time went backwards at %d", i)
		}
	}
}

func TestResentBatchIsWrittenOnce(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "dedup"
	p := mustProducer(t, n, topic, "p1")
	r1 := p.mustSend(msg(1), msg(2))
	r2 := p.mustSend(msg(3))
	// The producer reconnects and resends both batches.
	p.stream.CloseSend()
	var p2 *prod
	var again *servingpb.SendReceipt
	eventually(t, "reconnect", func() error {
		var err error
		p2, err = openProducer(t, n, topic, "p1")
		return err
	})
	if p2.opened.GetLastSequenceId() != 3 {
		t.Fatalf("last sequence id: got %d, want 3", p2.opened.GetLastSequenceId())
	}
	again = p2.mustSend(msg(1), msg(2))
	if !again.GetDuplicate() || again.GetLedger() != r1.GetLedger() || again.GetEntry() != r1.GetEntry() {
		t.Fatalf("resend: got %v, want duplicate of %v", again, r1)
	}
	if d := p2.mustSend(msg(3)); !d.GetDuplicate() || d.GetEntry() != r2.GetEntry() {
		t.Fatalf("resend: got %v, want duplicate of %v", d, r2)
	}
	p2.mustSend(msg(4))
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	checkInOrder(t, cs.receive(4), 1, 4)
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetMessagesIn() != 4 {
		t.Fatalf("messages in: got %d, want 4", st.GetMessagesIn())
	}
}

func TestSharedSubscriptionDeliversEachMessageOnce(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic, total = "shared", 300
	var consumers []*cons
	for i := 0; i < 3; i++ {
		consumers = append(consumers, mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "work", Type: servingpb.SubscriptionType_SHARED}))
	}
	p := mustProducer(t, n, topic, "")
	for i := uint64(1); i <= total; i++ {
		p.mustSend(msg(i))
	}
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	counts := make([]int, 3)
	// Each consumer has permits for a third of the messages, so that all
	// of them arrive only if every consumer takes its share. With permits
	// for all, the first consumer whose flow is read may rightly take
	// everything before the others' flows arrive (a loaded machine did).
	for i, cs := range consumers {
		cs.flow(total / 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := cs.stream.Recv()
				if err != nil {
					return
				}
				for _, m := range r.GetMessages().GetMessages() {
					_ = cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: []*servingpb.MessageId{m.GetId()}}}})
					mu.Lock()
					seen[m.GetSequenceId()]++
					counts[i]++
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, "all messages delivered", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < total {
			return fmt.Errorf("%d of %d seen", len(seen), total)
		}
		return nil
	})
	for _, cs := range consumers {
		cs.cancel()
	}
	wg.Wait()
	for seq, k := range seen {
		if k != 1 {
			t.Fatalf("message %d delivered %d times", seq, k)
		}
	}
	for i, k := range counts {
		if k != total/3 {
			t.Fatalf("consumer %d got %d messages, not its %d permits: %v", i, k, total/3, counts)
		}
	}
}

func TestUnackedMessagesOfADisconnectedConsumerGoToTheOthers(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "redeliver"
	a := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "work", Type: servingpb.SubscriptionType_SHARED})
	p := mustProducer(t, n, topic, "")
	for i := uint64(1); i <= 10; i++ {
		p.mustSend(msg(i))
	}
	a.flow(10)
	got := a.receive(10)
	a.ack(got[0].GetId(), got[1].GetId()) // acks 2, leaves 8
	eventually(t, "acks applied", func() error {
		st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if b := st.GetSubscriptions()[0].GetBacklog(); b != 8 {
			return fmt.Errorf("backlog %d", b)
		}
		return nil
	})
	b := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "work", Type: servingpb.SubscriptionType_SHARED})
	b.flow(100)
	a.cancel() // disconnects without acking
	re := b.receive(8)
	for i, m := range re {
		if m.GetSequenceId() != uint64(i+3) || m.GetRedeliveryCount() != 1 {
			t.Fatalf("redelivered %d: seq %d count %d, want seq %d count 1", i, m.GetSequenceId(), m.GetRedeliveryCount(), i+3)
		}
	}
}

// A subscription's backlog counts entries (one per producer batch, as
// Pulsar's msgBacklog), and a batch leaves it only once every message of it
// is acknowledged; unacked counts delivered messages. The stats documented
// in serving.proto and client.SubscriptionStats say so.
func TestBacklogCountsEntriesAndUnackedCountsMessages(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "backlog-units"
	a := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED})
	p := mustProducer(t, n, topic, "")
	p.mustSend(msg(1), msg(2), msg(3), msg(4), msg(5)) // one batch: one entry
	stats := func(wantBacklog, wantUnacked uint64) {
		t.Helper()
		eventually(t, "stats", func() error {
			st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
			if err != nil {
				return err
			}
			s := st.GetSubscriptions()[0]
			if s.GetBacklog() != wantBacklog || s.GetUnacked() != wantUnacked {
				return fmt.Errorf("backlog %d unacked %d, want %d and %d", s.GetBacklog(), s.GetUnacked(), wantBacklog, wantUnacked)
			}
			return nil
		})
	}
	stats(1, 0)
	a.flow(10)
	got := a.receive(5)
	stats(1, 5)
	a.ack(got[0].GetId(), got[1].GetId(), got[2].GetId(), got[3].GetId())
	stats(1, 1)
	a.ack(got[4].GetId())
	stats(0, 0)
}

// backlog_bytes covers every entry after the mark-delete position, falls
// by the acknowledged entries' share as the position advances, and is zero
// once everything is acknowledged.
func TestBacklogBytesFollowsTheMarkDeletePosition(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "backlog-bytes"
	a := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED})
	p := mustProducer(t, n, topic, "")
	p.mustSend(msg(1), msg(2)) // three entries of the same size
	p.mustSend(msg(3), msg(4))
	p.mustSend(msg(5), msg(6))
	stored := func() uint64 {
		st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetStorageBytes()
	}()
	if stored == 0 {
		t.Fatal("three entries stored in 0 bytes")
	}
	want := func(b uint64) {
		t.Helper()
		eventually(t, "backlog bytes", func() error {
			st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
			if err != nil {
				return err
			}
			if got := st.GetSubscriptions()[0].GetBacklogBytes(); got != b {
				return fmt.Errorf("backlog bytes %d, want %d (of %d stored)", got, b, stored)
			}
			return nil
		})
	}
	want(stored)
	a.flow(10)
	got := a.receive(6)
	a.ack(got[0].GetId(), got[1].GetId()) // the first entry, in full
	want(uint64(float64(stored) * 2 / 3))
	a.ack(got[4].GetId(), got[5].GetId()) // past the mark-delete position: still counted
	want(uint64(float64(stored) * 2 / 3))
	a.ack(got[2].GetId(), got[3].GetId())
	want(0)
}

func TestBadInputGetsATypedErrorAndChangesNothing(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	ctx := ctxT(t)
	if _, err := n.client.SetNamespacePolicy(ctx, &servingpb.SetNamespacePolicyRequest{Namespace: "public/small",
		Policy: &servingpb.NamespacePolicy{MaxMessageBytes: 100}}); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, n, "public/small/t", "p")
	if p.opened.GetMaxMessageBytes() != 100 {
		t.Fatalf("max message bytes: got %d", p.opened.GetMaxMessageBytes())
	}
	r, err := p.send(&servingpb.Message{SequenceId: 1, Payload: make([]byte, 101)})
	if err != nil || errcode.Code(r.GetError().GetCode()) != errcode.MessageTooLarge {
		t.Fatalf("oversize: got %v %v, want MESSAGE_TOO_LARGE", r, err)
	}
	ok := p.mustSend(&servingpb.Message{SequenceId: 1, Payload: make([]byte, 100)})
	if ok.GetEntry() != 0 {
		t.Fatalf("the rejected batch was written: first good entry is %d", ok.GetEntry())
	}
	if _, err := openProducer(t, n, "a/b/c/d", ""); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("invalid topic: got %v", err)
	}
	if _, err := n.client.Lookup(ctx, &servingpb.LookupRequest{Topic: "bad name"}); errcode.CodeOf(errcode.FromError(err)) != errcode.InvalidTopicName {
		t.Fatalf("invalid lookup: got %v", err)
	}
	if _, err := subscribe(t, n, &servingpb.Subscribe{Topic: "public/small/t", Subscription: "s", Type: 42}); errcode.CodeOf(err) != errcode.InvalidSubscription {
		t.Fatalf("subscription type 42: got %v, want INVALID_SUBSCRIPTION", err)
	}
	if _, err := n.client.TriggerOffload(ctx, &servingpb.TriggerOffloadRequest{Topic: "public/small/t"}); errcode.CodeOf(errcode.FromError(err)) != errcode.Unimplemented {
		t.Fatalf("offload: got %v", err)
	}
	st, err := n.client.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: "public/small/t"})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetMessagesIn() != 1 || len(st.GetSubscriptions()) != 0 {
		t.Fatalf("stats after bad input: %v", st)
	}
	if p.mustSend(&servingpb.Message{SequenceId: 2}).GetEntry() != 1 {
		t.Fatal("node stopped serving after bad input")
	}
}

func TestRequestAtTheWrongNodeIsRedirectedToTheOwner(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	b := c.start("b", nil)
	mustProducer(t, a, "owned-by-a", "")
	_, err := openProducer(t, b, "owned-by-a", "")
	var e *errcode.Error
	if !asErr(err, &e) || e.Code != errcode.NotOwner || e.Redirect != a.addr {
		t.Fatalf("got %v, want NOT_OWNER redirect to %s", err, a.addr)
	}
	lr, err := b.client.Lookup(ctxT(t), &servingpb.LookupRequest{Topic: "owned-by-a"})
	if err != nil || lr.GetOwner() != a.addr {
		t.Fatalf("lookup at b: %v %v", lr, err)
	}
}

func asErr(err error, e **errcode.Error) bool {
	x, ok := err.(*errcode.Error)
	if ok {
		*e = x
	}
	return ok
}

var _ = context.Background

func TestEncodedBatchesAreCheckedAndWrittenAsTheSameEntry(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	p := mustProducer(t, n, "encoded", "p")
	enc := func(ms ...entry.Message) []byte {
		var b []byte
		for i := range ms {
			b = entry.AppendMessage(b, &ms[i])
		}
		return b
	}
	good := enc(entry.Message{SequenceID: 1, Key: "k", Properties: map[string]string{"a": "1", "b": "2"}, Payload: []byte("x")},
		entry.Message{SequenceID: 2, Payload: []byte("y")})
	unsorted := enc(entry.Message{SequenceID: 1})
	unsorted = append(unsorted[:len(unsorted)-2], 2, 1, 'b', 0, 1, 'a', 0, 0)
	for name, b := range map[string]*servingpb.SendBatch{
		"garbage":         {Encoded: []byte("not a batch"), Count: 1},
		"count too high":  {Encoded: good, Count: 3},
		"no count":        {Encoded: good},
		"unsorted props":  {Encoded: unsorted, Count: 1},
		"both forms":      {Encoded: good, Count: 2, Messages: []*servingpb.Message{msg(1)}},
		"empty":           {},
		"descending seqs": {Encoded: enc(entry.Message{SequenceID: 5}, entry.Message{SequenceID: 4}), Count: 2},
	} {
		r, err := p.sendBatch(b)
		if err != nil || errcode.Code(r.GetError().GetCode()) != errcode.InvalidArgument {
			t.Fatalf("%s: got %v %v, want an INVALID_ARGUMENT send error", name, r, err)
		}
	}
	r, err := p.sendBatch(&servingpb.SendBatch{Encoded: good, Count: 2})
	if err != nil || r.GetReceipt() == nil || r.GetReceipt().GetEntry() != 0 {
		t.Fatalf("good encoded batch: %v %v (a rejected batch was written?)", r, err)
	}
	// The entry is byte for byte what the node makes of the same messages
	// sent one by one: what a rebuild from the object store produces.
	ctx := ctxT(t)
	ml, err := c.meta.GetManagedLedger(ctx, "public/default/encoded")
	if err != nil || len(ml.Ledgers) == 0 {
		t.Fatalf("managed ledger: %v %v", ml, err)
	}
	rec, err := c.meta.GetLedger(ctx, ml.Ledgers[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.ledgers.Read(ctx, rec, 0, 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("read entry 0: %d entries, %v", len(es), err)
	}
	raw := es[0].Payload
	b, err := entry.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(entry.Encode(b), raw) {
		t.Fatal("entry written from an encoded batch differs from Encode of its messages")
	}
	if len(b.Messages) != 2 || b.Messages[0].Properties["b"] != "2" || string(b.Messages[1].Payload) != "y" {
		t.Fatalf("entry holds %+v", b.Messages)
	}
}
