package serving_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

func TestCumulativeAckMovesTheCursorAndIsRefusedOnShared(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "cumulative"
	p := mustProducer(t, n, topic, "p")
	for i := uint64(1); i <= 10; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(6)
	got := cs.receive(6)
	if err := cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: []*servingpb.MessageId{got[5].GetId()}, Cumulative: true}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cursor at message 6", func() error {
		cur, err := c.mem.GetCursor(ctxT(t), "public/default/"+topic, "s")
		if err != nil {
			return err
		}
		if cur.MarkDelete.Entry != ids.EntryID(got[5].GetId().GetEntry()) {
			return fmt.Errorf("mark-delete %v", cur.MarkDelete)
		}
		return nil
	})
	cs.cancel()
	eventually(t, "reconnect", func() error {
		cs2, err := subscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
		if err != nil {
			return err
		}
		cs2.flow(10)
		checkInOrder(t, cs2.receive(4), 7, 10)
		return nil
	})
	sh := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "sh", Type: servingpb.SubscriptionType_SHARED, InitialPosition: servingpb.InitialPosition_EARLIEST})
	sh.flow(1)
	m := sh.receive(1)
	_ = sh.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: []*servingpb.MessageId{m[0].GetId()}, Cumulative: true}}})
	if _, err := sh.stream.Recv(); errcode.CodeOf(errcode.FromError(err)) != errcode.InvalidArgument {
		t.Fatalf("cumulative ack on shared: got %v, want INVALID_ARGUMENT", err)
	}
}

func TestReaderStartsAtAMessageIDAndSeekRewinds(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "reader"
	p := mustProducer(t, n, topic, "p")
	var rs []*servingpb.SendReceipt
	for i := uint64(1); i <= 10; i++ {
		rs = append(rs, p.mustSend(msg(i)))
	}
	start := &servingpb.MessageId{Ledger: rs[4].GetLedger(), Entry: rs[4].GetEntry()}
	r := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, NonDurable: true, StartMessageId: start})
	r.flow(100)
	checkInOrder(t, r.receive(6), 5, 10)
	byTime := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, NonDurable: true, StartTimeUnixNano: rs[7].GetPublishTimeUnixNano()})
	byTime.flow(100)
	checkInOrder(t, byTime.receive(3), 8, 10)
	byTime.cancel()
	seekTo := &servingpb.MessageId{Ledger: rs[1].GetLedger(), Entry: rs[1].GetEntry()}
	if err := r.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Seek{Seek: &servingpb.Seek{To: &servingpb.Seek_MessageId{MessageId: seekTo}}}}); err != nil {
		t.Fatal(err)
	}
	var after []*servingpb.ReceivedMessage
	for len(after) < 9 {
		resp, err := r.stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if sd := resp.GetSeekDone(); sd != nil {
			if sd.GetPosition().GetEntry() != seekTo.GetEntry() {
				t.Fatalf("seek done at %v, want %v", sd.GetPosition(), seekTo)
			}
			after = nil // messages before the seek answer may precede it
			continue
		}
		after = append(after, resp.GetMessages().GetMessages()...)
	}
	checkInOrder(t, after, 2, 10)
	// Readers leave nothing behind.
	r.cancel()
	eventually(t, "reader gone", func() error {
		st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if len(st.GetSubscriptions()) != 0 {
			return fmt.Errorf("%d subscriptions", len(st.GetSubscriptions()))
		}
		return nil
	})
}

func TestResetCursorRedeliversFromTheMessage(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 2 })
	const topic = "reset"
	p := mustProducer(t, n, topic, "p")
	var rs []*servingpb.SendReceipt
	for i := uint64(1); i <= 5; i++ {
		rs = append(rs, p.mustSend(msg(i)))
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(5)
	for _, m := range cs.receive(5) {
		cs.ack(m.GetId())
	}
	cs.cancel()
	ctx := ctxT(t)
	to := &servingpb.MessageId{Ledger: rs[2].GetLedger(), Entry: rs[2].GetEntry()}
	if _, err := n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "nope", To: &servingpb.ResetCursorRequest_MessageId{MessageId: to}, Execute: true}); errcode.CodeOf(errcode.FromError(err)) != errcode.SubscriptionNotFound {
		t.Fatalf("reset of unknown subscription: %v", err)
	}
	// Resolving a time (without executing) answers the first message at or
	// after it, or the end of the topic.
	for _, tc := range []struct {
		at    int64
		entry int64
		end   bool
	}{
		{1, rs[0].GetEntry(), false},
		{rs[3].GetPublishTimeUnixNano(), rs[3].GetEntry(), false},
		{rs[3].GetPublishTimeUnixNano() - 1, rs[3].GetEntry(), false},
		{rs[4].GetPublishTimeUnixNano() + 1, 0, true},
	} {
		resp, err := n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", To: &servingpb.ResetCursorRequest_TimeUnixNano{TimeUnixNano: tc.at}})
		if err != nil || resp.GetEndOfTopic() != tc.end || (!tc.end && resp.GetPosition().GetEntry() != tc.entry) {
			t.Fatalf("resolve time %d: %v %v, want entry %d end %v", tc.at, resp, err, tc.entry, tc.end)
		}
	}
	resp, err := n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", To: &servingpb.ResetCursorRequest_MessageId{MessageId: to}, Execute: true})
	if err != nil || resp.GetPosition().GetEntry() != to.GetEntry() {
		t.Fatalf("reset: %v %v", resp, err)
	}
	eventually(t, "resubscribe", func() error {
		cs2, err := subscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
		if err != nil {
			return err
		}
		cs2.flow(10)
		checkInOrder(t, cs2.receive(3), 3, 5)
		return nil
	})
}

func TestConsumedLedgersPastRetentionAreDeleted(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 3; cfg.TrimInterval = 50 * time.Millisecond })
	const topic = "retention"
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	p := mustProducer(t, n, topic, "p")
	var rs []*servingpb.SendReceipt
	for i := uint64(1); i <= 9; i++ {
		rs = append(rs, p.mustSend(msg(i)))
	}
	firstLedger := ids.LedgerID(rs[0].GetLedger())
	cs.flow(9)
	got := cs.receive(9)
	for _, m := range got[:4] { // ledger 1 fully, ledger 2 partly
		cs.ack(m.GetId())
	}
	eventually(t, "first ledger deleted", func() error {
		if c.memL.Has(firstLedger) {
			return fmt.Errorf("ledger %d still stored", firstLedger)
		}
		return nil
	})
	if !c.memL.Has(ids.LedgerID(rs[3].GetLedger())) {
		t.Fatal("a partly consumed ledger was deleted")
	}
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLedgers()[0].GetLedger() == uint64(firstLedger) || st.GetSubscriptions()[0].GetBacklog() != 5 {
		t.Fatalf("stats after trim: %v", st)
	}
}

func TestAProducerWithTooManyPendingBatchesGetsQueueFull(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxPendingPerProducer = 4 })
	p := mustProducer(t, n, "queue", "p")
	resume := c.memL.Stall()
	for i := uint64(1); i <= 5; i++ {
		if err := p.stream.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Send{Send: &servingpb.SendBatch{Messages: []*servingpb.Message{msg(i)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := p.stream.Recv()
	if err != nil || errcode.Code(r.GetError().GetCode()) != errcode.ProducerQueueFull || r.GetError().GetFirstSequenceId() != 5 {
		t.Fatalf("fifth batch: got %v %v, want PRODUCER_QUEUE_FULL", r, err)
	}
	resume()
	for i := uint64(1); i <= 4; i++ {
		r, err := p.stream.Recv()
		if err != nil || r.GetReceipt().GetLastSequenceId() != i {
			t.Fatalf("receipt %d: %v %v", i, r, err)
		}
	}
}

func TestAdminCreatesListsAndDeletesTopics(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	ctx := ctxT(t)
	if _, err := n.client.CreateTopic(ctx, &servingpb.CreateTopicRequest{Topic: "t/ns/parted", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.CreateTopic(ctx, &servingpb.CreateTopicRequest{Topic: "t/ns/parted"}); errcode.CodeOf(errcode.FromError(err)) != errcode.TopicExists {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := openProducer(t, n, "t/ns/parted", ""); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("produce to a partitioned parent: %v", err)
	}
	mustProducer(t, n, "t/ns/parted-partition-1", "p").mustSend(msg(1))
	lt, err := n.client.ListTopics(ctx, &servingpb.ListTopicsRequest{Namespace: "t/ns"})
	if err != nil || len(lt.GetTopics()) != 1 || lt.GetTopics()[0].GetPartitions() != 3 {
		t.Fatalf("list: %v %v", lt, err)
	}
	gt, err := n.client.GetTopic(ctx, &servingpb.GetTopicRequest{Topic: "t/ns/parted"})
	if err != nil || gt.GetTopic().GetPartitions() != 3 {
		t.Fatalf("get: %v %v", gt, err)
	}
	if _, err := n.client.DeleteTopic(ctx, &servingpb.DeleteTopicRequest{Topic: "t/ns/parted", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.GetTopic(ctx, &servingpb.GetTopicRequest{Topic: "t/ns/parted-partition-1"}); errcode.CodeOf(errcode.FromError(err)) != errcode.TopicNotFound {
		t.Fatalf("partition after delete: %v", err)
	}
	if _, err := n.client.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: "t/ns/never"}); errcode.CodeOf(errcode.FromError(err)) != errcode.TopicNotFound {
		t.Fatalf("stats of unknown topic: %v", err)
	}
	pol, err := n.client.GetNamespacePolicy(ctx, &servingpb.GetNamespacePolicyRequest{Namespace: "t/ns"})
	if err != nil || pol.GetPolicy().GetMaxMessageBytes() != 5<<20 {
		t.Fatalf("default policy: %v %v", pol, err)
	}
	if _, err := n.client.SetNamespacePolicy(ctx, &servingpb.SetNamespacePolicyRequest{Namespace: "t/ns", Policy: &servingpb.NamespacePolicy{Ensemble: 1, WriteQuorum: 2}}); errcode.CodeOf(errcode.FromError(err)) != errcode.InvalidPolicy {
		t.Fatalf("bad policy: %v", err)
	}
}

func TestDeleteSubscriptionRefusesWhileConsumersAreAttached(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	ctx := ctxT(t)
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: "subs", Subscription: "s"})
	if _, err := n.client.DeleteSubscription(ctx, &servingpb.DeleteSubscriptionRequest{Topic: "subs", Subscription: "s"}); errcode.CodeOf(errcode.FromError(err)) != errcode.ConsumerBusy {
		t.Fatalf("delete with a consumer: %v", err)
	}
	if _, err := subscribe(t, n, &servingpb.Subscribe{Topic: "subs", Subscription: "s"}); errcode.CodeOf(err) != errcode.ConsumerBusy {
		t.Fatalf("second exclusive consumer: %v", err)
	}
	cs.cancel()
	eventually(t, "delete", func() error {
		_, err := n.client.DeleteSubscription(ctx, &servingpb.DeleteSubscriptionRequest{Topic: "subs", Subscription: "s"})
		return err
	})
	if _, err := c.mem.GetCursor(ctx, "public/default/subs", "s"); err == nil {
		t.Fatal("cursor left in the store")
	}
}

func TestNackedMessagesAreRedeliveredWithACount(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "nack"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1), msg(2)) // one entry, two messages
	p.mustSend(msg(3))
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	got := cs.receive(3)
	cs.ack(got[0].GetId()) // message 1 of the batch acked, message 2 not
	cs.ack(got[2].GetId())
	if err := cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Nack{Nack: &servingpb.Nack{Ids: []*servingpb.MessageId{got[1].GetId()}}}}); err != nil {
		t.Fatal(err)
	}
	re := cs.receive(1)
	if len(re) != 1 || re[0].GetSequenceId() != 2 || re[0].GetRedeliveryCount() != 1 {
		t.Fatalf("redelivery: %v, want only message 2 with count 1", re)
	}
}

func TestMessagesPastTheTTLAreAcknowledgedOnEverySubscription(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.TrimInterval = 50 * time.Millisecond; cfg.MaxLedgerEntries = 2 })
	ctx := ctxT(t)
	if _, err := n.client.SetNamespacePolicy(ctx, &servingpb.SetNamespacePolicyRequest{Namespace: "public/ttl",
		Policy: &servingpb.NamespacePolicy{TtlMs: 1, RetentionMs: -1}}); err != nil {
		t.Fatal(err)
	}
	const topic = "public/ttl/t"
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs.cancel()
	p := mustProducer(t, n, topic, "p")
	for i := uint64(1); i <= 5; i++ {
		p.mustSend(msg(i))
	}
	eventually(t, "backlog expired", func() error {
		st, err := n.client.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if b := st.GetSubscriptions()[0].GetBacklog(); b != 0 {
			return fmt.Errorf("backlog %d", b)
		}
		return nil
	})
}

func TestRetentionChangedAfterTheTopicLoadedApplies(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 3; cfg.TrimInterval = 50 * time.Millisecond })
	keep := &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1}
	if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/default", Policy: keep}); err != nil {
		t.Fatal(err)
	}
	const topic = "retention-change"
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	p := mustProducer(t, n, topic, "p")
	var rs []*servingpb.SendReceipt
	for i := uint64(1); i <= 6; i++ {
		rs = append(rs, p.mustSend(msg(i)))
	}
	cs.flow(6)
	for _, m := range cs.receive(6) {
		cs.ack(m.GetId())
	}
	firstLedger := ids.LedgerID(rs[0].GetLedger())
	// Now delete consumed data at once: the loaded topic must pick it up.
	drop := &servingpb.NamespacePolicy{RetentionMs: 0, OffloadThresholdBytes: -1, OffloadAgeMs: -1}
	if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/default", Policy: drop}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "consumed ledger deleted after retention changed to 0", func() error {
		if c.memL.Has(firstLedger) {
			return fmt.Errorf("ledger %d still stored", firstLedger)
		}
		return nil
	})
}

// Adding partitions creates the topic's subscriptions on the new
// partitions at their start: a consumer that subscribes there later, even
// at the latest position, gets what was produced before it came. Only
// increases of a partitioned topic are allowed.
func TestAddPartitionsCarriesSubscriptionsToTheNewPartitions(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	ctx := ctxT(t)
	if _, err := n.client.CreateTopic(ctx, &servingpb.CreateTopicRequest{Topic: "grow", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.CreateTopic(ctx, &servingpb.CreateTopicRequest{Topic: "flat"}); err != nil {
		t.Fatal(err)
	}
	old := mustSubscribe(t, n, &servingpb.Subscribe{Topic: "grow-partition-0", Subscription: "s", Type: servingpb.SubscriptionType_SHARED})
	old.cancel()
	for _, bad := range []struct {
		topic string
		n     uint32
		want  errcode.Code
	}{{"grow", 2, errcode.InvalidArgument}, {"grow", 1, errcode.InvalidArgument}, {"flat", 3, errcode.InvalidArgument},
		{"missing", 3, errcode.TopicNotFound}, {"bad name!", 3, errcode.InvalidTopicName}} {
		_, err := n.client.AddPartitions(ctx, &servingpb.AddPartitionsRequest{Topic: bad.topic, Partitions: bad.n})
		if errcode.CodeOf(errcode.FromError(err)) != bad.want {
			t.Fatalf("%s to %d partitions: got %v, want %v", bad.topic, bad.n, err, bad.want)
		}
	}
	if _, err := n.client.AddPartitions(ctx, &servingpb.AddPartitionsRequest{Topic: "grow", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := n.client.GetTopic(ctx, &servingpb.GetTopicRequest{Topic: "grow"})
	if err != nil || got.GetTopic().GetPartitions() != 4 {
		t.Fatalf("after adding: %v %v", got, err)
	}
	p := mustProducer(t, n, "grow-partition-3", "")
	p.mustSend(msg(1))
	late := mustSubscribe(t, n, &servingpb.Subscribe{Topic: "grow-partition-3", Subscription: "s", Type: servingpb.SubscriptionType_SHARED,
		InitialPosition: servingpb.InitialPosition_LATEST})
	late.flow(10)
	checkInOrder(t, late.receive(1), 1, 1)
}

// TestCreatedSubscriptionKeepsItsMessagesUntilItsFirstConsumer: a
// subscription created without a consumer (Pulsar's create-subscription)
// starts where it was asked to, survives the topic moving to another node,
// and its first consumer, whatever initial position it asks for, receives
// every message from that start; creating it again is a typed error that
// changes nothing.
func TestCreatedSubscriptionKeepsItsMessagesUntilItsFirstConsumer(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 2 })
	const topic = "created"
	p := mustProducer(t, a, topic, "p")
	for i := uint64(1); i <= 2; i++ {
		p.mustSend(msg(i))
	}
	ctx := ctxT(t)
	create := func(n *testNode, sub string, at servingpb.InitialPosition) error {
		_, err := n.client.CreateSubscription(ctx, &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: sub, InitialPosition: at})
		return err
	}
	if err := create(a, "all", servingpb.InitialPosition_EARLIEST); err != nil {
		t.Fatal(err)
	}
	if err := create(a, "new", servingpb.InitialPosition_LATEST); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub  string
		at   servingpb.InitialPosition
		code errcode.Code
	}{
		{"all", servingpb.InitialPosition_LATEST, errcode.SubscriptionExists},
		{"", servingpb.InitialPosition_LATEST, errcode.InvalidSubscription},
		{"odd", servingpb.InitialPosition(7), errcode.InvalidArgument},
	} {
		if err := create(a, tc.sub, tc.at); errcode.CodeOf(errcode.FromError(err)) != tc.code {
			t.Fatalf("create %q at %v: %v, want %v", tc.sub, tc.at, err, tc.code)
		}
	}
	for i := uint64(3); i <= 5; i++ {
		p.mustSend(msg(i))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := c.start("b", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 2 })
	st, err := b.client.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	backlog := map[string]uint64{}
	for _, s := range st.GetSubscriptions() {
		backlog[s.GetName()] = s.GetBacklog()
	}
	if backlog["all"] != 5 || backlog["new"] != 3 || len(backlog) != 2 {
		t.Fatalf("backlogs after the takeover: %v, want all=5 new=3", backlog)
	}
	for sub, first := range map[string]uint64{"all": 1, "new": 3} {
		cs := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: sub, Type: servingpb.SubscriptionType_SHARED})
		cs.flow(10)
		checkInOrder(t, cs.receive(int(5-first+1)), first, 5)
	}
}

// TestResetToEarliestAndLatestMovesTheWholeBacklog: reset to latest
// acknowledges everything written (clear-backlog), so only later messages
// arrive; reset to earliest delivers every retained message again.
func TestResetToEarliestAndLatestMovesTheWholeBacklog(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "edges"
	ctx := ctxT(t)
	p := mustProducer(t, n, topic, "p")
	if _, err := n.client.CreateSubscription(ctx, &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "s"}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 4; i++ {
		p.mustSend(msg(i))
	}
	reset := func(edge servingpb.InitialPosition) *servingpb.ResetCursorResponse {
		t.Helper()
		resp, err := n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", To: &servingpb.ResetCursorRequest_Edge{Edge: edge}, Execute: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := reset(servingpb.InitialPosition_LATEST); !resp.GetEndOfTopic() {
		t.Fatalf("reset to latest resolved %v, want the end of the topic", resp)
	}
	p.mustSend(msg(5))
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs.flow(10)
	checkInOrder(t, cs.receive(1), 5, 5)
	cs.cancel()
	eventually(t, "consumer detached", func() error {
		st, err := n.client.TopicStats(ctx, &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if k := st.GetSubscriptions()[0].GetConsumers(); k != 0 {
			return fmt.Errorf("%d consumers", k)
		}
		return nil
	})
	if resp := reset(servingpb.InitialPosition_EARLIEST); resp.GetEndOfTopic() {
		t.Fatalf("reset to earliest resolved the end of the topic")
	}
	cs2 := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs2.flow(10)
	checkInOrder(t, cs2.receive(5), 1, 5)
	if _, err := n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", To: &servingpb.ResetCursorRequest_Edge{Edge: 9}}); errcode.CodeOf(errcode.FromError(err)) != errcode.InvalidArgument {
		t.Fatalf("reset to an unknown edge: %v", err)
	}
}

// TestUnsubscribeDeletesTheCursorOnlyForTheLastConsumer: an Unsubscribe
// from one of two consumers is refused with CONSUMER_BUSY and its stream
// goes on delivering; from the last one it deletes the subscription and its
// stored cursor, then ends the stream cleanly.
func TestUnsubscribeDeletesTheCursorOnlyForTheLastConsumer(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "unsub"
	shared := &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED}
	a := mustSubscribe(t, n, shared)
	b := mustSubscribe(t, n, shared)
	unsubscribe := func(cs *cons) *servingpb.Unsubscribed {
		t.Helper()
		if err := cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Unsubscribe{Unsubscribe: &servingpb.Unsubscribe{}}}); err != nil {
			t.Fatal(err)
		}
		for {
			r, err := cs.stream.Recv()
			if err != nil {
				t.Fatalf("waiting for unsubscribed: %v", err)
			}
			if u := r.GetUnsubscribed(); u != nil {
				return u
			}
		}
	}
	if u := unsubscribe(a); errcode.Code(u.GetErrorCode()) != errcode.ConsumerBusy {
		t.Fatalf("unsubscribe beside another consumer: %v, want CONSUMER_BUSY", u)
	}
	b.cancel()
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	a.flow(1)
	checkInOrder(t, a.receive(1), 1, 1)
	eventually(t, "the other consumer detached", func() error {
		st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if k := st.GetSubscriptions()[0].GetConsumers(); k != 1 {
			return fmt.Errorf("%d consumers", k)
		}
		return nil
	})
	if u := unsubscribe(a); u.GetErrorCode() != 0 {
		t.Fatalf("unsubscribe of the last consumer: %v", u)
	}
	if _, err := a.stream.Recv(); err != io.EOF {
		t.Fatalf("after unsubscribing, the stream ended with %v, want a clean end", err)
	}
	if _, err := c.mem.GetCursor(ctxT(t), "public/default/"+topic, "s"); err == nil {
		t.Fatal("the cursor is still stored after unsubscribe")
	}
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil || len(st.GetSubscriptions()) != 0 {
		t.Fatalf("subscriptions after unsubscribe: %v %v", st.GetSubscriptions(), err)
	}
}

// quotaNode starts a node whose topics check the backlog quota every 20 ms,
// with the namespace public/quota set to quota bytes under policy.
func quotaNode(t *testing.T, quota int64, policy servingpb.BacklogQuotaPolicy) *testNode {
	t.Helper()
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.BacklogQuotaCheckInterval = 20 * time.Millisecond
		cfg.MaxLedgerEntries = 2
	})
	if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/quota",
		Policy: &servingpb.NamespacePolicy{BacklogQuotaBytes: quota, BacklogQuotaPolicy: policy}}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBacklogQuotaProducerExceptionRefusesSendsUntilTheBacklogDrains: once a
// subscription's backlog is over the quota, sends fail with
// BACKLOG_QUOTA_EXCEEDED and nothing of them is written; once the
// subscription acknowledges its backlog, sends succeed again, and the
// subscription gets every message that was accepted, once.
func TestBacklogQuotaProducerExceptionRefusesSendsUntilTheBacklogDrains(t *testing.T) {
	n := quotaNode(t, 200, servingpb.BacklogQuotaPolicy_PRODUCER_EXCEPTION)
	const topic = "public/quota/held"
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "slow"})
	p := mustProducer(t, n, topic, "p")
	accepted := uint64(0)
	eventually(t, "a send refused for the quota", func() error {
		r, err := p.send(msg(accepted + 1))
		if err != nil {
			return err
		}
		if e := r.GetError(); e != nil {
			if code := errcode.Code(e.GetCode()); code != errcode.BacklogQuotaExceeded {
				t.Fatalf("send failed with %v, want BACKLOG_QUOTA_EXCEEDED", code)
			}
			return nil
		}
		accepted++
		return fmt.Errorf("%d sends accepted", accepted)
	})
	cs.flow(uint32(accepted))
	got := cs.receive(int(accepted))
	checkInOrder(t, got, 1, accepted)
	for _, m := range got {
		cs.ack(m.GetId())
	}
	eventually(t, "a send accepted again", func() error {
		r, err := p.send(msg(accepted + 1))
		if err != nil {
			return err
		}
		if r.GetReceipt() == nil {
			return fmt.Errorf("still refused: %v", r.GetError())
		}
		return nil
	})
	cs.flow(1)
	checkInOrder(t, cs.receive(1), accepted+1, accepted+1)
}

// TestBacklogQuotaEvictionSkipsTheOldestBacklogOfTheSlowSubscriptionOnly:
// under consumer_backlog_eviction, a subscription that consumes nothing is
// moved forward until its backlog fits the quota, and then gets the
// newest messages in order; a subscription within the quota keeps all.
func TestBacklogQuotaEvictionSkipsTheOldestBacklogOfTheSlowSubscriptionOnly(t *testing.T) {
	const quota = 200
	n := quotaNode(t, quota, servingpb.BacklogQuotaPolicy_CONSUMER_BACKLOG_EVICTION)
	const topic, total = "public/quota/evicted", 12
	slow := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "slow"})
	fast := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "fast"})
	fast.flow(total)
	p := mustProducer(t, n, topic, "p")
	for i := uint64(1); i <= total; i++ {
		p.mustSend(msg(i))
	}
	all := fast.receive(total)
	checkInOrder(t, all, 1, total)
	for _, m := range all {
		fast.ack(m.GetId())
	}
	eventually(t, "the slow subscription within the quota", func() error {
		st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		for _, s := range st.GetSubscriptions() {
			if s.GetName() == "slow" && (s.GetBacklogBytes() > quota || s.GetBacklog() == total) {
				return fmt.Errorf("slow: backlog %d entries, %d bytes", s.GetBacklog(), s.GetBacklogBytes())
			}
		}
		return nil
	})
	slow.flow(total)
	r, err := slow.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := r.GetMessages().GetMessages()
	first := got[0].GetSequenceId()
	if first <= 1 {
		t.Fatalf("the slow subscription still starts at message %d", first)
	}
	checkInOrder(t, append(got, slow.receive(int(total-first+1)-len(got))...), first, total)
}

// TestExclusiveProducerHasTheTopicToItself: an exclusive producer cannot
// open beside a shared one (PRODUCER_FENCED), opens once that one is gone,
// keeps every other producer out while connected, and lets them in again
// when it leaves.
func TestExclusiveProducerHasTheTopicToItself(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "exclusive"
	exclusive := &servingpb.OpenProducer{Topic: topic, ProducerName: "x", AccessMode: servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE}
	fenced := func(what string, err error) {
		t.Helper()
		if errcode.CodeOf(err) != errcode.ProducerFenced {
			t.Fatalf("%s: %v, want PRODUCER_FENCED", what, err)
		}
	}
	shared := mustProducer(t, n, topic, "s1")
	_, err := openProducerWith(t, n, exclusive)
	fenced("exclusive beside a shared producer", err)
	shared.close()
	x, err := openProducerWith(t, n, exclusive)
	if err != nil {
		t.Fatal(err)
	}
	x.mustSend(msg(1))
	_, err = openProducer(t, n, topic, "s2")
	fenced("shared beside the exclusive producer", err)
	_, err = openProducerWith(t, n, &servingpb.OpenProducer{Topic: topic, ProducerName: "y", AccessMode: servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE})
	fenced("a second exclusive producer", err)
	_, err = openProducerWith(t, n, &servingpb.OpenProducer{Topic: topic, ProducerName: "z", AccessMode: 9})
	if errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("unknown access mode: %v", err)
	}
	x.close()
	mustProducer(t, n, topic, "s3").mustSend(msg(2))
}

// TestWaitForExclusiveProducersTakeTheTopicInLineOrder: producers that
// wait for the topic to themselves queue while a shared producer holds it
// (an exclusive one beside it still fails), take it one at a time in the
// order they came, keep shared producers out while they hold it, and one
// that gives up leaves the line without ever holding the topic.
func TestWaitForExclusiveProducersTakeTheTopicInLineOrder(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/leader"
	type opened struct {
		p   *prod
		err error
	}
	wait := func(ctx context.Context, name string) chan opened {
		ch := make(chan opened, 1)
		go func() {
			s, err := n.client.Produce(ctx)
			if err == nil {
				err = s.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: &servingpb.OpenProducer{
					Topic: topic, ProducerName: name, AccessMode: servingpb.ProducerAccessMode_ACCESS_WAIT_FOR_EXCLUSIVE}}})
			}
			var r *servingpb.ProduceResponse
			if err == nil {
				r, err = s.Recv()
			}
			if err != nil {
				ch <- opened{err: errcode.FromError(err)}
				return
			}
			ch <- opened{p: &prod{t: t, stream: s, opened: r.GetOpened()}}
		}()
		return ch
	}
	inLine := func(want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d producers in line", want), func() error {
			if got := n.ProducersWaiting(topic); got != want {
				return fmt.Errorf("%d in line", got)
			}
			return nil
		})
	}
	take := func(name string, ch chan opened) *prod {
		t.Helper()
		o := <-ch
		if o.err != nil || o.p.opened.GetProducerName() != name {
			t.Fatalf("%s: %v %v", name, o.p, o.err)
		}
		return o.p
	}
	free := func(name string, ch chan opened) {
		t.Helper()
		select {
		case o := <-ch:
			t.Fatalf("%s opened while the topic was held: %v %v", name, o.p, o.err)
		default:
		}
	}

	shared := mustProducer(t, n, topic, "s1")
	w1 := wait(ctxT(t), "w1")
	inLine(1)
	w2 := wait(ctxT(t), "w2")
	inLine(2)
	gaveUp, giveUp := context.WithCancel(ctxT(t))
	w3 := wait(gaveUp, "w3")
	inLine(3)
	_, err := openProducerWith(t, n, &servingpb.OpenProducer{Topic: topic, ProducerName: "x", AccessMode: servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE})
	if errcode.CodeOf(err) != errcode.ProducerFenced {
		t.Fatalf("exclusive beside a shared producer: %v, want PRODUCER_FENCED", err)
	}
	free("w1", w1)

	shared.close()
	first := take("w1", w1)
	inLine(2)
	first.mustSend(msg(1))
	if _, err := openProducer(t, n, topic, "s2"); errcode.CodeOf(err) != errcode.ProducerFenced {
		t.Fatalf("shared beside the producer that waited: %v, want PRODUCER_FENCED", err)
	}
	free("w2", w2)
	giveUp()
	if o := <-w3; o.err == nil {
		t.Fatal("w3 opened after giving up")
	}
	inLine(1)

	first.close()
	second := take("w2", w2)
	inLine(0)
	second.mustSend(msg(2))
	second.close()
	mustProducer(t, n, topic, "s3").mustSend(msg(3))
}

// TestExclusiveWithFencingClosesEveryOtherProducer: a producer opened with
// fencing takes the topic from a shared producer, from another fencing
// one and from a connection of its own name, each of which ends with
// PRODUCER_FENCED and writes nothing more; while it holds the topic,
// others are refused as beside any exclusive producer.
func TestExclusiveWithFencingClosesEveryOtherProducer(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/fenced"
	fencing := func(name string) *prod {
		t.Helper()
		p, err := openProducerWith(t, n, &servingpb.OpenProducer{Topic: topic, ProducerName: name,
			AccessMode: servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE_WITH_FENCING})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return p
	}
	fenced := func(what string, p *prod, seq uint64) {
		t.Helper()
		r, err := p.send(msg(seq))
		if errcode.CodeOf(err) != errcode.ProducerFenced {
			t.Fatalf("%s: a send after the fence answered %v %v, want the stream ended with PRODUCER_FENCED", what, r, err)
		}
	}
	shared := mustProducer(t, n, topic, "s1")
	shared.mustSend(msg(1))
	f := fencing("f")
	fenced("the shared producer", shared, 2)
	f.mustSend(msg(3))
	if _, err := openProducer(t, n, topic, "s2"); errcode.CodeOf(err) != errcode.ProducerFenced {
		t.Fatalf("shared beside the fencing producer: %v, want PRODUCER_FENCED", err)
	}
	g := fencing("g")
	fenced("the first fencing producer", f, 4)
	g.mustSend(msg(5))
	again := fencing("g") // the same name, a new connection
	fenced("the earlier connection of the same name", g, 6)
	again.mustSend(msg(7))
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "all", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(100)
	var got []uint64
	for _, m := range cs.receive(4) {
		got = append(got, m.GetSequenceId())
	}
	if fmt.Sprint(got) != "[1 3 5 7]" {
		t.Fatalf("the topic holds %v, want [1 3 5 7]: a fenced producer wrote", got)
	}
}

// TestSeekDoneComesBeforeAnyMessageOfTheNewPosition: the client drops what
// it receives before SeekDone, so no message of the new position may come
// before it (it would be lost: the node counts it delivered). With every
// message received and nothing in flight, repeated seeks to the earliest
// message each answer SeekDone first and then redeliver everything.
func TestSeekDoneComesBeforeAnyMessageOfTheNewPosition(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic, total = "seek-order", 20
	p := mustProducer(t, n, topic, "p")
	for i := uint64(1); i <= total; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(1 << 20)
	checkInOrder(t, cs.receive(total), 1, total)
	for round := range 50 {
		seek := &servingpb.Seek{To: &servingpb.Seek_Position{Position: servingpb.InitialPosition_EARLIEST}}
		if err := cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Seek{Seek: seek}}); err != nil {
			t.Fatal(err)
		}
		r, err := cs.stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetSeekDone() == nil {
			t.Fatalf("round %d: %d messages came before SeekDone", round, len(r.GetMessages().GetMessages()))
		}
		checkInOrder(t, cs.receive(total), 1, total)
	}
}
