package serving_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestTopicsMoveToANodeThatJoinsAsThePlacementSaysAndNoOthers: topics
// loaded on the only node stay there until a second node joins; then the
// first unloads exactly those that the placement gives the newcomer,
// keeps the others (their ownership untouched), lookups send clients to
// the newcomer, and the moved topics keep their messages.
func TestTopicsMoveToANodeThatJoinsAsThePlacementSaysAndNoOthers(t *testing.T) {
	c := newCluster(t)
	fast := func(cfg *serving.Config) { cfg.RebalanceInterval = 50 * time.Millisecond }
	a := c.start("a", fast)
	var topics []string
	for i := range 16 {
		topic := fmt.Sprintf("public/default/spread-%d", i)
		topics = append(topics, topic)
		p := mustProducer(t, a, topic, "p")
		p.mustSend(msg(1))
		p.close()
	}
	stay := map[string]metadata.Ownership{}
	var moving []string
	for _, topic := range topics {
		if serving.Placement(topic, []string{"a", "b"}) == "a" {
			o, err := c.meta.GetOwnership(ctxT(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			stay[topic] = o
		} else {
			moving = append(moving, topic)
		}
	}
	if len(moving) == 0 || len(stay) == 0 {
		t.Fatalf("the placement gives b %d topics of 16: pick other names", len(moving))
	}

	b := c.start("b", fast)
	eventually(t, "the topics placed on b left a", func() error {
		for _, topic := range moving {
			if o, err := c.meta.GetOwnership(ctxT(t), topic); err == nil && o.NodeID == "a" {
				return fmt.Errorf("%s still owned by a", topic)
			} else if err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	for _, topic := range moving {
		r, err := a.client.Lookup(ctxT(t), &servingpb.LookupRequest{Topic: topic})
		if err != nil || r.GetNodeId() != "b" {
			t.Fatalf("lookup of %s at a: %v %v, want b", topic, r, err)
		}
		sub := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
		sub.flow(10)
		if got := sub.receive(1); string(got[0].GetPayload()) != string(payloadOf(1)) {
			t.Fatalf("%s on b: %q", topic, got[0].GetPayload())
		}
		sub.cancel()
	}
	for topic, before := range stay {
		if o, err := c.meta.GetOwnership(ctxT(t), topic); err != nil || o != before {
			t.Fatalf("%s, placed on a, moved: %+v %v (was %+v)", topic, o, err, before)
		}
	}
}

// TestUnloadTopicReleasesItAndTheNextLookupLoadsItAgain: an unload by the
// admin call releases the topic's ownership once its ledger is closed; the
// next client loads it again with every message kept.
func TestUnloadTopicReleasesItAndTheNextLookupLoadsItAgain(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "public/default/unloaded"
	p := mustProducer(t, n, topic, "p")
	p.mustSend(msg(1))
	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.meta.GetOwnership(ctxT(t), topic); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("ownership after the unload: %v, want none", err)
	}
	ml, err := c.meta.GetManagedLedger(ctxT(t), topic)
	if err != nil || len(ml.Ledgers) != 1 {
		t.Fatalf("managed ledger after the unload: %+v %v", ml, err)
	}
	if l, err := c.meta.GetLedger(ctxT(t), ml.Ledgers[0].ID); err != nil || l.State != metadata.LedgerClosed || l.LastEntry != 0 {
		t.Fatalf("ledger after the unload: %+v %v, want it closed after its one entry", l, err)
	}
	if _, err := p.send(msg(2)); err == nil {
		t.Fatal("the unloaded topic's producer could still send")
	}
	if _, err := n.client.UnloadTopic(ctxT(t), &servingpb.UnloadTopicRequest{Topic: topic}); err != nil {
		t.Fatalf("unloading a topic nobody serves: %v", err)
	}
	p2 := mustProducer(t, n, topic, "p")
	p2.mustSend(msg(2))
	sub := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	sub.flow(10)
	if got := sub.receive(2); got[0].GetSequenceId() != 1 || got[1].GetSequenceId() != 2 {
		t.Fatalf("after the reload: %v", got)
	}
}

// TestARebalanceRoundUnloadsAtMostItsBound: one round unloads at most
// RebalanceMaxUnloads topics, so their clients reconnect a few at a time;
// the next round goes on with the rest.
func TestARebalanceRoundUnloadsAtMostItsBound(t *testing.T) {
	c := newCluster(t)
	slow := func(cfg *serving.Config) { cfg.RebalanceInterval, cfg.RebalanceMaxUnloads = time.Hour, 2 }
	a := c.start("a", slow)
	moving := 0
	for i := range 16 {
		topic := fmt.Sprintf("public/default/bounded-%d", i)
		mustProducer(t, a, topic, "p").close()
		if serving.Placement(topic, []string{"a", "b"}) == "b" {
			moving++
		}
	}
	if moving < 3 {
		t.Fatalf("the placement gives b %d topics of 16: pick other names", moving)
	}
	c.start("b", slow)
	later := time.Now().Add(3 * time.Hour) // past the settle time of b and of every topic
	if n := a.Rebalance(later); n != 2 {
		t.Fatalf("the first round unloaded %d topics, want 2", n)
	}
	// The topics being unloaded are not counted again.
	if n := a.Rebalance(later); n != min(2, moving-2) {
		t.Fatalf("the next round unloaded %d topics, want %d", n, min(2, moving-2))
	}
}

// TestATopicJustMovedByARebalanceIsRedirectedNotLoadedBack: a client
// arriving at the old owner right after a rebalance moved its topic (the
// new node sent it back while the old one's release was under way) is
// redirected to the new node; the old one loaded the topic back, and the
// next round moved it again.
func TestATopicJustMovedByARebalanceIsRedirectedNotLoadedBack(t *testing.T) {
	c := newCluster(t)
	slow := func(cfg *serving.Config) { cfg.RebalanceInterval = time.Hour }
	a := c.start("a", slow)
	var topic string
	for i := range 16 {
		if name := fmt.Sprintf("public/default/moved-%d", i); serving.Placement(name, []string{"a", "b"}) == "b" {
			topic = name
			break
		}
	}
	if topic == "" {
		t.Fatal("the placement gives b none of 16 topics: pick other names")
	}
	mustProducer(t, a, topic, "p").close()
	b := c.start("b", slow)
	if n := a.Rebalance(time.Now().Add(3 * time.Hour)); n != 1 {
		t.Fatalf("the round moved %d topics, want 1", n)
	}
	eventually(t, "a released the topic", func() error {
		if o, err := c.meta.GetOwnership(ctxT(t), topic); err == nil {
			return fmt.Errorf("still owned by %s", o.NodeID)
		} else if !errors.Is(err, metadata.ErrNotFound) {
			return err
		}
		return nil
	})
	_, err := openProducer(t, a, topic, "p")
	var e *errcode.Error
	if !errors.As(err, &e) || e.Code != errcode.NotOwner || e.Redirect != b.addr {
		t.Fatalf("open at the old owner: %v; want NOT_OWNER to %s", err, b.addr)
	}
	mustProducer(t, b, topic, "p").close()
}

// releaseWatch records, at each release of a topic that node owner held,
// whether owner was still among the registered nodes.
type releaseWatch struct {
	serving.Meta
	owner string
	mu    sync.Mutex
	// listed has an entry per release of owner's topics: whether owner
	// was still registered then.
	listed []bool
}

func (w *releaseWatch) ReleaseOwnership(ctx context.Context, o metadata.Ownership) error {
	if o.NodeID == w.owner {
		nodes, err := w.Meta.ListNodes(ctx)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.listed = append(w.listed, slices.ContainsFunc(nodes, func(n metadata.NodeInfo) bool { return n.ID == w.owner }))
		w.mu.Unlock()
	}
	return w.Meta.ReleaseOwnership(ctx, o)
}

// A node shutting down leaves the placement before it hands its topics
// over: lookups made meanwhile (its clients', once their streams end) send
// them to the nodes that stay. While it was still registered, a lookup
// could place a topic back on it, where the client waited for the unload
// and was sent on again.
func TestAClosingNodeLeavesThePlacementBeforeItReleasesItsTopics(t *testing.T) {
	c := newCluster(t)
	w := &releaseWatch{Meta: c.meta, owner: "a"}
	c.meta = w
	a := c.start("a", nil)
	c.start("b", nil)
	var topics []string
	for i := 0; len(topics) < 3; i++ {
		if topic := fmt.Sprintf("public/default/closing-%d", i); serving.Placement(topic, []string{"a", "b"}) == "a" {
			topics = append(topics, topic)
		}
	}
	for _, topic := range topics {
		p := mustProducer(t, a, topic, "p")
		p.mustSend(msg(1))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.listed) != len(topics) {
		t.Fatalf("%d releases of a's topics, want %d", len(w.listed), len(topics))
	}
	for i, listed := range w.listed {
		if listed {
			t.Fatalf("release %d of a's topics while a was still registered: lookups could place the topic back on it", i+1)
		}
	}
}
