package serving_test

import (
	"fmt"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
	"github.com/strata-mq/strata/serving/servingtest"
)

func TestTakeoverAfterTheOwnerLosesItsLeaseLosesNothingAcknowledged(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", func(cfg *serving.Config) { cfg.MaxLedgerEntries = 8 })
	aSession := c.mem.Sessions()[0]
	b := c.start("b", nil)
	const topic = "public/default/failover"
	p := mustProducer(t, a, topic, "p1")
	for i := uint64(1); i <= 20; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	got := cs.receive(10)
	for _, m := range got {
		cs.ack(m.GetId())
	}
	eventually(t, "cursor flushed", func() error {
		cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			return err
		}
		if cur.MarkDelete != (ids.Position{Ledger: ids.LedgerID(got[9].GetId().GetLedger()), Entry: ids.EntryID(got[9].GetId().GetEntry())}) {
			return fmt.Errorf("mark-delete %v", cur.MarkDelete)
		}
		return nil
	})

	aSession.Expire() // the lease of a is lost: it must drop the topic at once
	if _, err := p.send(msg(21)); !errcode.IsRetriable(err) {
		t.Fatalf("old owner's producer: got %v, want a retriable error", err)
	}
	// The client reconnects through b, which takes the topic over.
	var p2 *prod
	eventually(t, "b takes over", func() error {
		var err error
		p2, err = openProducer(t, b, topic, "p1")
		return err
	})
	if p2.opened.GetLastSequenceId() != 20 {
		t.Fatalf("dedup state after takeover: last sequence id %d, want 20", p2.opened.GetLastSequenceId())
	}
	if r := p2.mustSend(msg(20)); !r.GetDuplicate() {
		t.Fatalf("resend after takeover was written again: %v", r)
	}
	for i := uint64(21); i <= 30; i++ {
		p2.mustSend(msg(i))
	}
	// a now redirects to b.
	if _, err := openProducer(t, a, topic, "p9"); errcode.CodeOf(err) != errcode.NotOwner {
		t.Fatalf("old owner: got %v, want NOT_OWNER", err)
	}
	cs2 := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs2.flow(100)
	checkInOrder(t, cs2.receive(20), 11, 30)
}

func TestAnOldOwnerWhoseLedgerWasFencedCannotAppend(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	const topic = "fenced"
	p := mustProducer(t, a, topic, "p1")
	r := p.mustSend(msg(1))
	// A new owner fences the ledger (as its recovery would).
	c.memL.Fence(ids.LedgerID(r.GetLedger()))
	_, err := p.send(msg(2))
	if errcode.CodeOf(err) != errcode.TopicFenced {
		t.Fatalf("append to a fenced ledger: got %v, want TOPIC_FENCED", err)
	}
	// The topic was dropped and released: the next producer loads it again
	// (recovering the fenced ledger), and message 2 was never written.
	var p2 *prod
	eventually(t, "reload", func() error {
		var err error
		p2, err = openProducer(t, a, topic, "p1")
		return err
	})
	if p2.opened.GetLastSequenceId() != 1 {
		t.Fatalf("last sequence id: got %d, want 1", p2.opened.GetLastSequenceId())
	}
	p2.mustSend(msg(2))
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(2), 1, 2)
}

func expired(s *servingtest.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func TestAKilledOwnersTopicsMoveOnceItsLeaseExpires(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	aSession := c.mem.Sessions()[0]
	b := c.start("b", nil)
	p := mustProducer(t, a, "killed", "p1")
	for i := uint64(1); i <= 5; i++ {
		p.mustSend(msg(i))
	}
	a.srv.Stop()
	a.Kill()
	if !expired(aSession) {
		t.Fatal("the killed node's session is still live")
	}
	var p2 *prod
	eventually(t, "b takes over", func() error {
		var err error
		p2, err = openProducer(t, b, "killed", "p1")
		return err
	})
	p2.mustSend(msg(6))
	cs := mustSubscribe(t, b, &servingpb.Subscribe{Topic: "killed", Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	checkInOrder(t, cs.receive(6), 1, 6)
}

func TestAGracefullyClosedOwnerHandsOverAtOnceWithItsCursor(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	b := c.start("b", nil)
	const topic = "handover"
	p := mustProducer(t, a, topic, "p1")
	for i := uint64(1); i <= 6; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(3)
	for _, m := range cs.receive(3) {
		cs.ack(m.GetId())
	}
	eventually(t, "acks applied", func() error {
		st, err := a.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
		if err != nil {
			return err
		}
		if b := st.GetSubscriptions()[0].GetBacklog(); b != 3 {
			return fmt.Errorf("backlog %d", b)
		}
		return nil
	})
	if err := a.Close(); err != nil { // unload: flush cursors, close ledgers, release ownership
		t.Fatal(err)
	}
	if _, err := c.mem.GetOwnership(ctxT(t), "public/default/"+topic); err == nil {
		t.Fatal("ownership still held after a graceful close")
	}
	p2 := mustProducer(t, b, topic, "p1")
	if p2.opened.GetLastSequenceId() != 6 {
		t.Fatalf("last sequence id %d, want 6", p2.opened.GetLastSequenceId())
	}
	cs2 := mustSubscribe(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs2.flow(10)
	checkInOrder(t, cs2.receive(3), 4, 6)
}

func TestLookupAgreesOnOneOwnerFromEveryNode(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", nil)
	b := c.start("b", nil)
	nodes := map[string]*testNode{a.addr: a, b.addr: b}
	owners := map[string]int{}
	for i := 0; i < 8; i++ {
		topic := fmt.Sprintf("lookup-%d", i)
		la, err := a.client.Lookup(ctxT(t), &servingpb.LookupRequest{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		// The chosen node takes the topic on the first request.
		mustProducer(t, nodes[la.GetOwner()], topic, "p").mustSend(msg(1))
		lb, err := b.client.Lookup(ctxT(t), &servingpb.LookupRequest{Topic: topic})
		if err != nil || lb.GetOwner() != la.GetOwner() {
			t.Fatalf("lookup of %s: a says %v, b says %v (%v)", topic, la, lb, err)
		}
		owners[la.GetOwner()]++
	}
	if len(owners) != 2 {
		t.Fatalf("8 topics all went to one node: %v", owners)
	}
}
