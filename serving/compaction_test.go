package serving_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// readCompacted reads a topic's compacted messages and the stream's end.
func readCompacted(t *testing.T, n *testNode, topic string) ([]*servingpb.ReceivedMessage, *servingpb.CompactedEnd) {
	t.Helper()
	st, err := n.client.ReadCompacted(ctxT(t), &servingpb.ReadCompactedRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var got []*servingpb.ReceivedMessage
	for {
		r, err := st.Recv()
		if err == io.EOF {
			t.Fatal("the stream ended without its end")
		}
		if err != nil {
			t.Fatal(errcode.FromError(err))
		}
		if end := r.GetEnd(); end != nil {
			return got, end
		}
		got = append(got, r.GetMessages().GetMessages()...)
	}
}

// keyed is message seq with key and payload.
func keyed(seq uint64, key, payload string) *servingpb.Message {
	return &servingpb.Message{SequenceId: seq, Key: key, Payload: []byte(payload), Properties: map[string]string{"p": "v"}}
}

func summary(ms []*servingpb.ReceivedMessage) string {
	var s string
	for _, m := range ms {
		s += fmt.Sprintf("%s=%s@%d ", m.GetKey(), m.GetPayload(), m.GetSequenceId())
	}
	return s
}

// TestCompactionKeepsTheLatestMessageOfEachKeyAcrossCompactionsAndTrims:
// a compaction keeps each key's latest message with the id it was
// published with (a tombstone removes its key, keyless messages are left
// out); a second compaction folds the first into what came after it; and
// once retention has trimmed the ledgers compacted, the compacted messages
// are still there, and the rest of the topic starts at the earliest entry
// retained.
func TestCompactionKeepsTheLatestMessageOfEachKeyAcrossCompactionsAndTrims(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.MaxLedgerEntries, cfg.TrimInterval = 2, 20*time.Millisecond
	})
	const topic = "public/default/prices"
	if got, end := readCompacted(t, n, topic); len(got) != 0 || end.GetCompacted() {
		t.Fatalf("before any compaction: %d messages, end %v", len(got), end)
	}
	p := mustProducer(t, n, topic, "p")
	// A subscription that consumes nothing holds the ledgers until it goes.
	if _, err := n.client.CreateSubscription(ctxT(t), &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "hold",
		InitialPosition: servingpb.InitialPosition_EARLIEST}); err != nil {
		t.Fatal(err)
	}
	var ids []*servingpb.SendReceipt
	for i, kv := range [][2]string{{"apple", "1"}, {"pear", "2"}, {"apple", "3"}, {"plum", "4"}, {"", "keyless"}, {"pear", ""}} {
		ids = append(ids, p.mustSend(keyed(uint64(i+1), kv[0], kv[1])))
	}
	r, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic})
	if err != nil || r.GetMessages() != 2 || r.GetHorizon().GetEntry() != ids[5].GetEntry() || r.GetHorizon().GetLedger() != ids[5].GetLedger() {
		t.Fatalf("compact: %v %v", r, err)
	}
	got, end := readCompacted(t, n, topic)
	if s := summary(got); s != "apple=3@3 plum=4@4 " {
		t.Fatalf("compacted: %s", s)
	}
	if got[0].GetId().GetLedger() != ids[2].GetLedger() || got[0].GetId().GetEntry() != ids[2].GetEntry() || got[0].GetProperties()["p"] != "v" ||
		len(got[0].GetProperties()) != 1 {
		t.Fatalf("apple's compacted copy: %v, want the id and properties it was published with", got[0])
	}
	if !end.GetCompacted() || end.GetContinueFrom() == nil {
		t.Fatalf("end %v: want the entry after the horizon", end)
	}

	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || ml.Compaction == nil {
		t.Fatalf("managed ledger %v %v: want the compaction recorded", ml, err)
	}
	firstLedger := ml.Compaction.Ledger
	p.mustSend(keyed(7, "plum", "5"))
	p.mustSend(keyed(8, "kiwi", "6"))
	p.mustSend(keyed(9, "apple", ""))
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readCompacted(t, n, topic); summary(got) != "plum=5@7 kiwi=6@8 " {
		t.Fatalf("second compaction: %s", summary(got))
	}
	if _, err := c.meta.GetLedger(ctxT(t), firstLedger); err == nil {
		t.Fatalf("the first compaction's ledger %d outlived the second", firstLedger)
	}

	// No subscription and no retention: trims delete every closed ledger
	// the compaction covers.
	p.mustSend(keyed(10, "fig", "7")) // rolls past the compacted horizon's ledger
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.DeleteSubscription(ctxT(t), &servingpb.DeleteSubscriptionRequest{Topic: topic, Subscription: "hold"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the compacted ledgers trimmed", func() error {
		ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
		if err != nil {
			return err
		}
		for _, li := range ml.Ledgers {
			if uint64(li.ID) == ids[0].GetLedger() || li.ID == ml.Compaction.Horizon.Ledger {
				return fmt.Errorf("ledger %d still there", li.ID)
			}
		}
		return nil
	})
	got, end = readCompacted(t, n, topic)
	if summary(got) != "plum=5@7 kiwi=6@8 fig=7@10 " || end.GetContinueFrom() != nil {
		t.Fatalf("after the trims: %s, end %v (want to go on from the earliest entry)", summary(got), end)
	}
}

// TestCompactionRunsOnItsOwnPastTheThreshold: with a compaction threshold
// in the namespace's policy, a topic compacts itself once its ledgers
// after the last compaction hold that many bytes, and again after more
// messages.
func TestCompactionRunsOnItsOwnPastTheThreshold(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.MaxLedgerEntries, cfg.TrimInterval = 2, 20*time.Millisecond
	})
	if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/auto",
		Policy: &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, CompactionThresholdBytes: 1}}); err != nil {
		t.Fatal(err)
	}
	const topic = "public/auto/levels"
	p := mustProducer(t, n, topic, "p")
	for i, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}} {
		p.mustSend(keyed(uint64(i+1), kv[0], kv[1]))
	}
	compacted := func(want string) {
		t.Helper()
		eventually(t, "a compaction with "+want, func() error {
			got, end := readCompacted(t, n, topic)
			if !end.GetCompacted() || summary(got) != want {
				return fmt.Errorf("compacted %q (%v)", summary(got), end.GetCompacted())
			}
			return nil
		})
	}
	compacted("b=2@2 a=3@3 ")
	p.mustSend(keyed(4, "b", "4"))
	p.mustSend(keyed(5, "c", "5"))
	compacted("a=3@3 b=4@4 c=5@5 ")
}

// TestCompactionPastTheThresholdNeedsNoLedgerRoll: the bytes written to
// the horizon's ledger after the horizon count toward the threshold, so a
// topic whose one ledger never rolls compacts again after more messages.
func TestCompactionPastTheThresholdNeedsNoLedgerRoll(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.TrimInterval = 20 * time.Millisecond })
	const topic = "public/default/one-ledger"
	if _, err := n.client.SetTopicPolicy(ctxT(t), &servingpb.SetTopicPolicyRequest{Topic: topic,
		Policy: &servingpb.TopicPolicy{CompactionThresholdBytes: proto.Int64(1)}}); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, n, topic, "p")
	compacted := func(want string) {
		t.Helper()
		eventually(t, "a compaction with "+want, func() error {
			got, end := readCompacted(t, n, topic)
			if !end.GetCompacted() || summary(got) != want {
				return fmt.Errorf("compacted %q (%v)", summary(got), end.GetCompacted())
			}
			return nil
		})
	}
	p.mustSend(keyed(1, "a", "1"))
	compacted("a=1@1 ")
	p.mustSend(keyed(2, "a", "2"))
	compacted("a=2@2 ")
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || len(ml.Ledgers) != 1 {
		t.Fatalf("managed ledger %+v %v: want one ledger", ml, err)
	}
}

// TestCompactionReadsOffloadedLedgersOnARealCluster: on a real cluster
// (etcd, three bookies, MinIO), a topic whose closed ledgers were offloaded
// and deleted from the bookies compacts from the object store, and its
// compacted ledger lives on the bookies.
func TestCompactionReadsOffloadedLedgersOnARealCluster(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) { tc.Interval = 50 * time.Millisecond })
	const topic = "public/auto/compact-offloaded"
	p := mustProducer(t, e.n, topic, "p")
	for i := uint64(1); i <= 13; i++ { // ledgers of 5 entries: two closed
		p.mustSend(keyed(i, fmt.Sprintf("k%d", i%3), fmt.Sprint(i)))
	}
	e.setPolicy("public/auto", &servingpb.NamespacePolicy{RetentionMs: -1})
	eventually(t, "closed ledgers offloaded and deleted from bookies", func() error { return e.allOffloadedAndDeleted(topic, 2) })
	if _, err := e.n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	got, end := readCompacted(t, e.n, topic)
	if s := summary(got); s != "k2=11@11 k0=12@12 k1=13@13 " || !end.GetCompacted() {
		t.Fatalf("compacted: %s (%v)", s, end)
	}
}

// TestDeletingACompactedTopicDeletesItsCompactedLedger: the compacted
// ledger, which is not in the topic's ledger list, goes with the topic.
func TestDeletingACompactedTopicDeletesItsCompactedLedger(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/gone"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(keyed(1, "k", "v"))
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || ml.Compaction == nil {
		t.Fatalf("managed ledger %v %v", ml, err)
	}
	p.close()
	if _, err := n.client.DeleteTopic(ctxT(t), &servingpb.DeleteTopicRequest{Topic: topic, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.meta.GetLedger(ctxT(t), ml.Compaction.Ledger); err == nil {
		t.Fatalf("compacted ledger %d outlived its topic", ml.Compaction.Ledger)
	}
}

// TestTrimsKeepTheLedgersAfterTheCompactionHorizonUntilTheyAreCompacted:
// on a real cluster (etcd, three bookies), retention deletes a compacted
// topic's ledgers only up to the compaction's horizon, as Pulsar's
// __compaction subscription holds them: a key's latest value written
// after the horizon reaches the next compaction even when every
// subscription consumed it, rather than the compacted view serving the
// value it replaced, or nothing for a new key.
func TestTrimsKeepTheLedgersAfterTheCompactionHorizonUntilTheyAreCompacted(t *testing.T) {
	c := newRealCluster(t, 3)
	n := c.startWith("a", func(cfg *serving.Config) {
		cfg.MaxLedgerEntries, cfg.TrimInterval = 2, 20*time.Millisecond
	})
	store := metatest.OpenStoreAt(t, c.endpoints)
	const topic = "public/default/horizon-holds"
	p := mustProducer(t, n, topic, "p")
	// A subscription that consumes nothing holds every ledger until it goes.
	if _, err := n.client.CreateSubscription(ctxT(t), &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "hold",
		InitialPosition: servingpb.InitialPosition_EARLIEST}); err != nil {
		t.Fatal(err)
	}
	first := p.mustSend(keyed(1, "a", "1"))
	p.mustSend(keyed(2, "b", "2"))
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	after := p.mustSend(keyed(3, "a", "3")) // the next ledger: after the horizon
	p.mustSend(keyed(4, "c", "4"))
	p.mustSend(keyed(5, "d", "5")) // and one more, so that the ledger of a=3 is closed
	eventually(t, "the ledger after the horizon closed", func() error {
		ml, err := store.GetManagedLedger(ctxT(t), topic)
		if err != nil {
			return err
		}
		for _, li := range ml.Ledgers {
			if uint64(li.ID) == after.GetLedger() && li.Closed {
				return nil
			}
		}
		return fmt.Errorf("ledger %d not recorded closed in %+v", after.GetLedger(), ml.Ledgers)
	})
	// Now nothing but the compaction needs the ledgers: one trim pass
	// deletes every one it may.
	if _, err := n.client.DeleteSubscription(ctxT(t), &servingpb.DeleteSubscriptionRequest{Topic: topic, Subscription: "hold"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the compacted ledger trimmed", func() error {
		ml, err := store.GetManagedLedger(ctxT(t), topic)
		if err != nil {
			return err
		}
		if uint64(ml.Ledgers[0].ID) == first.GetLedger() {
			return fmt.Errorf("ledger %d still there", first.GetLedger())
		}
		return nil
	})
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readCompacted(t, n, topic); summary(got) != "b=2@2 a=3@3 c=4@4 d=5@5 " {
		t.Fatalf("compacted after the trims: %s, want a=3 and c=4, written after the first horizon", summary(got))
	}
}
