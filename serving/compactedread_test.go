package serving_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestDurableSubscriptionReadingCompactedGetsTheLatestOfEachKeyThenTheRest:
// a durable exclusive subscription that reads compacted gets, from its
// start, the latest message of each key up to the horizon (with the ids
// they were published with, one of them from inside a batch), then what
// followed the horizon; acknowledging those drains its whole backlog,
// while a subscription that does not read compacted gets every message.
func TestDurableSubscriptionReadingCompactedGetsTheLatestOfEachKeyThenTheRest(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.CursorFlushInterval = 20 * time.Millisecond })
	const topic = "public/default/state"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(keyed(1, "a", "1"))
	p.mustSend(keyed(2, "x", "x1"), keyed(3, "y", "y1")) // one entry, two keys
	p.mustSend(keyed(4, "a", "2"))
	p.mustSend(keyed(5, "x", "x2"))
	p.mustSend(keyed(6, "b", "1"))
	p.mustSend(keyed(7, "b", "")) // a tombstone
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	p.mustSend(keyed(8, "a", "3"))

	if _, err := subscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "shared", Type: servingpb.SubscriptionType_SHARED,
		ReadCompacted: true}); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a shared subscription reading compacted: %v, want INVALID_ARGUMENT", err)
	}
	read := func(sub string, compacted bool, want string) {
		t.Helper()
		cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: sub, InitialPosition: servingpb.InitialPosition_EARLIEST,
			ReadCompacted: compacted})
		defer cs.cancel()
		cs.flow(100)
		var got string
		var ids []*servingpb.MessageId
		for got == "" || len(got) < len(want) {
			ms := cs.receive(1)
			for _, m := range ms {
				got += fmt.Sprintf("%s=%s@%d ", m.GetKey(), m.GetPayload(), m.GetSequenceId())
				ids = append(ids, m.GetId())
				if _, ok := m.GetProperties()["__strata_compacted_id"]; ok {
					t.Fatalf("a compacted message kept its internal property: %v", m)
				}
			}
		}
		if got != want {
			t.Fatalf("%s got %q, want %q", sub, got, want)
		}
		cs.ack(ids...)
		eventually(t, sub+"'s backlog drained", func() error {
			st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
			if err != nil {
				return err
			}
			for _, s := range st.GetSubscriptions() {
				if s.GetName() == sub && s.GetBacklog() != 0 {
					return fmt.Errorf("backlog %d (mark-delete %v)", s.GetBacklog(), s.GetMarkDelete())
				}
			}
			return nil
		})
	}
	read("latest", true, "y=y1@3 a=2@4 x=x2@5 a=3@8 ")
	read("everything", false, "a=1@1 x=x1@2 y=y1@3 a=2@4 x=x2@5 b=1@6 b=@7 a=3@8 ")
}

// TestANewSubscriptionReadingCompactedGetsKeysWhoseLedgersWereTrimmed: the
// latest value of each key outlives the ledgers retention deleted; a new
// durable subscription reading compacted from the earliest message gets
// those values first, then the retained log.
func TestANewSubscriptionReadingCompactedGetsKeysWhoseLedgersWereTrimmed(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.MaxLedgerEntries, cfg.TrimInterval, cfg.CursorFlushInterval = 2, 20*time.Millisecond, 20*time.Millisecond
	})
	const topic = "public/default/trimmed-state"
	p := mustProducer(t, n, topic, "p")
	// A subscription that consumes everything as it comes.
	old := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "old", InitialPosition: servingpb.InitialPosition_EARLIEST})
	old.flow(100)
	for i, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}} {
		p.mustSend(keyed(uint64(i+1), kv[0], kv[1]))
	}
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	p.mustSend(keyed(5, "d", "5"))
	p.mustSend(keyed(6, "e", "6"))
	p.mustSend(keyed(7, "f", "7")) // the horizon's ledger is closed and trimmed
	// It consumes up to e, the end of a ledger that trims then delete: its
	// position is then in a deleted ledger.
	var seen []*servingpb.MessageId
	for len(seen) < 6 {
		for _, m := range old.receive(1) {
			seen = append(seen, m.GetId())
		}
	}
	old.ack(seen[:6]...)
	old.cancel()
	// Compacted again, the ledgers of d and e may go too: until then the
	// compaction holds them.
	if _, err := n.client.CompactTopic(ctxT(t), &servingpb.CompactTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	p.mustSend(keyed(8, "g", "8")) // after the horizon: read from the log
	eventually(t, "the compacted ledgers trimmed", func() error {
		ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
		if err != nil {
			return err
		}
		for _, li := range ml.Ledgers {
			if uint64(li.ID) == seen[3].GetLedger() || uint64(li.ID) == seen[5].GetLedger() { // the first horizon's, and e's
				return fmt.Errorf("ledger %d is still there", li.ID)
			}
		}
		return nil
	})
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "new", InitialPosition: servingpb.InitialPosition_EARLIEST,
		ReadCompacted: true})
	defer cs.cancel()
	cs.flow(100)
	var got string
	var ids []*servingpb.MessageId
	for !strings.HasSuffix(got, "g=8 ") {
		for _, m := range cs.receive(1) {
			got += fmt.Sprintf("%s=%s ", m.GetKey(), m.GetPayload())
			ids = append(ids, m.GetId())
		}
	}
	if got != "b=2 a=3 c=4 d=5 e=6 f=7 g=8 " {
		t.Fatalf("got %q, want the compacted b, a, c, d, e and f, then the log", got)
	}
	cs.ack(ids...)

	// The subscription that had consumed them, back and reading compacted
	// on a reloaded topic (its position is then where it had acknowledged
	// to, in a deleted ledger), is not sent them again: it goes on with f.
	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	again := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "old", ReadCompacted: true})
	defer again.cancel()
	again.flow(100)
	if m := again.receive(1)[0]; m.GetKey() != "f" {
		t.Fatalf("a subscription that had consumed up to e got %s=%s", m.GetKey(), m.GetPayload())
	}
}
