package serving_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// delayedMsg is message seq, to be delivered at at.
func delayedMsg(seq uint64, at time.Time) *servingpb.Message {
	m := msg(seq)
	m.Properties[entry.DeliverAtProperty] = strconv.FormatInt(at.UnixNano(), 10)
	return m
}

// delayedIs checks the entries subscription sub of topic holds back.
func delayedIs(t *testing.T, n *testNode, topic, sub string, want uint64) error {
	st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		return err
	}
	for _, s := range st.GetSubscriptions() {
		if s.GetName() == sub {
			if s.GetDelayed() != want {
				return fmt.Errorf("%s holds %d entries back, want %d", sub, s.GetDelayed(), want)
			}
			return nil
		}
	}
	return fmt.Errorf("no subscription %s", sub)
}

// A shared subscription delivers a delayed entry at its time, not before,
// and meanwhile delivers what comes after it; the delivered message does
// not carry the delivery-time property. An exclusive subscription delivers
// it at once, in order, as Pulsar's does. With no cache, the entry is read
// back from the bookies when due.
func TestSharedSubscriptionHoldsADelayedEntryUntilItsTime(t *testing.T) {
	for _, cache := range []int64{0, 1} {
		t.Run(fmt.Sprint("cacheBytes=", cache), func(t *testing.T) {
			c := newCluster(t)
			n := c.start("a", func(cfg *serving.Config) { cfg.CacheBytes = cache })
			const topic = "delayed"
			sh := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "sh", Type: servingpb.SubscriptionType_SHARED})
			ex := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "ex"})
			sh.flow(10)
			ex.flow(10)
			p := mustProducer(t, n, topic, "")
			at := time.Now().Add(1500 * time.Millisecond)
			p.mustSend(delayedMsg(1, at))
			p.mustSend(msg(2))
			checkInOrder(t, ex.receive(2), 1, 2)
			if m := sh.receive(1)[0]; m.GetSequenceId() != 2 {
				t.Fatalf("shared got seq %d first, want 2 (1 is delayed)", m.GetSequenceId())
			}
			eventually(t, "one entry held back", func() error { return delayedIs(t, n, topic, "sh", 1) })
			m := sh.receive(1)[0]
			if early := time.Until(at); m.GetSequenceId() != 1 || early > 0 {
				t.Fatalf("shared got seq %d %v before its time", m.GetSequenceId(), early)
			}
			if _, ok := m.GetProperties()[entry.DeliverAtProperty]; ok || m.GetProperties()["seq"] != "1" {
				t.Fatalf("delivered properties %v: want the application's, without the delivery time", m.GetProperties())
			}
			eventually(t, "nothing held back", func() error { return delayedIs(t, n, topic, "sh", 0) })
		})
	}
}

// heldBackThenExclusive has subscription s of topic, shared, receive
// messages 1 and 3, acknowledge 1 and hold back 2 (delayed an hour); then
// its consumer leaves, giving 3 back, and an exclusive consumer attaches,
// which it answers with the producer.
func heldBackThenExclusive(t *testing.T, n *testNode, topic string) (*cons, *prod) {
	t.Helper()
	sh := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: servingpb.SubscriptionType_SHARED})
	sh.flow(10)
	p := mustProducer(t, n, topic, "")
	p.mustSend(msg(1))
	p.mustSend(delayedMsg(2, time.Now().Add(time.Hour)))
	p.mustSend(msg(3))
	got := sh.receive(2)
	if got[0].GetSequenceId() != 1 || got[1].GetSequenceId() != 3 {
		t.Fatalf("shared got %d, %d; want 1, 3", got[0].GetSequenceId(), got[1].GetSequenceId())
	}
	sh.ack(got[0].GetId())
	eventually(t, "ack applied", func() error { return unackedIs(t, n, topic, 1) })
	sh.cancel()
	eventually(t, "shared consumer gone", func() error { return unackedIs(t, n, topic, 0) })
	return mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s"}), p
}

// A shared subscription whose consumers left may become exclusive: the
// entries it held back are then delivered at once, not lost, and nothing
// pending is delivered twice (in no promised order between the two).
func TestHeldBackEntriesAreDeliveredWhenTheSubscriptionStopsBeingShared(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "delayed-type"
	ex, p := heldBackThenExclusive(t, n, topic)
	ex.flow(10)
	// 3 was given back when the shared consumer left; 2 is read again.
	again := ex.receive(2)
	seen := map[uint64]int{}
	for _, m := range again {
		seen[m.GetSequenceId()]++
	}
	if seen[2] != 1 || seen[3] != 1 {
		t.Fatalf("exclusive got %v, want 2 and 3 once each", seen)
	}
	p.mustSend(msg(4))
	if m := ex.receive(1)[0]; m.GetSequenceId() != 4 {
		t.Fatalf("then seq %d, want 4 (nothing twice)", m.GetSequenceId())
	}
}

// Held-back entries that expire (TTL) are dropped: they stop counting as
// delayed and are never delivered.
func TestExpiredDelayedEntriesAreDropped(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.TrimInterval = 50 * time.Millisecond })
	const topic = "public/ttl-delay/t"
	sh := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "sh", Type: servingpb.SubscriptionType_SHARED})
	sh.flow(10)
	p := mustProducer(t, n, topic, "")
	p.mustSend(delayedMsg(1, time.Now().Add(time.Hour)))
	eventually(t, "one entry held back", func() error { return delayedIs(t, n, topic, "sh", 1) })
	if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/ttl-delay",
		Policy: &servingpb.NamespacePolicy{TtlMs: 1, RetentionMs: -1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the held entry expired", func() error {
		if err := backlogIs(t, n, topic, 0); err != nil {
			return err
		}
		return delayedIs(t, n, topic, "sh", 0)
	})
}

// A key_shared subscription holds a delayed entry back too, and delivers it
// when due to its key's consumer; undelayed messages of the same key pass
// it meanwhile, as in Pulsar.
func TestKeySharedSubscriptionHoldsADelayedEntryUntilItsTime(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.CacheBytes = 1 }) // read back from the bookies when due
	const topic = "delayed-key-shared"
	cs := mustSubscribe(t, n, keySharedSub(topic, "a"))
	cs.flow(10)
	p := mustProducer(t, n, topic, "")
	at := time.Now().Add(1500 * time.Millisecond)
	p.mustSend(delayedMsg(1, at))
	p.mustSend(msg(2))
	if m := cs.receive(1)[0]; m.GetSequenceId() != 2 {
		t.Fatalf("got seq %d first, want 2 (1 is delayed)", m.GetSequenceId())
	}
	eventually(t, "one entry held back", func() error { return delayedIs(t, n, topic, "ks", 1) })
	m := cs.receive(1)[0]
	if early := time.Until(at); m.GetSequenceId() != 1 || early > 0 {
		t.Fatalf("got seq %d %v before its time", m.GetSequenceId(), early)
	}
}
