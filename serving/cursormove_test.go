package serving_test

import (
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// A seek or an executed reset that was answered survives the owner's
// crash, as in Pulsar (whose reset persists the cursor before it
// completes): the cursor is in the metadata when the answer comes, not at
// the next periodic flush, so a node that dies right after it does not
// take the move with it and the next owner delivers from the new position.
// The periodic flush is an hour here, so only the move itself can have
// written the cursor.
func TestASeekIsPersistedBeforeItIsAnsweredAndSurvivesATakeover(t *testing.T) {
	c := newCluster(t)
	slowFlush := func(cfg *serving.Config) { cfg.CursorFlushInterval = time.Hour }
	a := c.start("a", slowFlush)
	aSession := c.mem.Sessions()[0]
	b := c.start("b", slowFlush)
	const topic = "public/default/seek-persisted"
	p := mustProducer(t, a, topic, "p1")
	for i := uint64(1); i <= 20; i++ {
		p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(20)
	got := cs.receive(20)
	for _, m := range got {
		cs.ack(m.GetId())
	}
	// Back to message 6 (one message per entry here).
	to := got[5].GetId()
	cs.seek(&servingpb.Seek{To: &servingpb.Seek_MessageId{MessageId: to}})
	want := ids.Position{Ledger: ids.LedgerID(to.GetLedger()), Entry: ids.EntryID(to.GetEntry()) - 1}
	cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
	if err != nil {
		t.Fatal(err)
	}
	if cur.MarkDelete != want || len(cur.AckedRanges) != 0 {
		t.Fatalf("cursor stored once the seek was answered: mark-delete %v, %d bytes of acked ranges; want %v and none", cur.MarkDelete, len(cur.AckedRanges), want)
	}

	// The owner dies before any flush: the next one delivers from message 6.
	aSession.Expire()
	cs.cancel()
	cs2 := subscribeWhenServed(t, b, &servingpb.Subscribe{Topic: topic, Subscription: "s"})
	cs2.flow(100)
	checkInOrder(t, cs2.receive(15), 6, 20)
}

// TestAnExecutedResetIsPersistedBeforeItIsAnswered: the admin reset (strata
// subscriptions reset --execute, clear-backlog) likewise.
func TestAnExecutedResetIsPersistedBeforeItIsAnswered(t *testing.T) {
	c := newCluster(t)
	a := c.start("a", func(cfg *serving.Config) { cfg.CursorFlushInterval = time.Hour })
	const topic = "public/default/reset-persisted"
	p := mustProducer(t, a, topic, "p1")
	var last *servingpb.SendReceipt
	for i := uint64(1); i <= 10; i++ {
		last = p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.cancel()
	for _, tc := range []struct {
		name string
		req  *servingpb.ResetCursorRequest
		want ids.Position
	}{
		{"latest", &servingpb.ResetCursorRequest{To: &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_LATEST}},
			ids.Position{Ledger: ids.LedgerID(last.GetLedger()), Entry: ids.EntryID(last.GetEntry())}},
		{"message id", &servingpb.ResetCursorRequest{To: &servingpb.ResetCursorRequest_MessageId{MessageId: &servingpb.MessageId{Ledger: last.GetLedger(), Entry: 3}}},
			ids.Position{Ledger: ids.LedgerID(last.GetLedger()), Entry: 2}},
	} {
		tc.req.Topic, tc.req.Subscription, tc.req.Execute = topic, "s", true
		if _, err := a.client.ResetCursor(ctxT(t), tc.req); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cur, err := c.mem.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			t.Fatal(err)
		}
		if cur.MarkDelete != tc.want {
			t.Fatalf("%s: cursor stored once the reset was answered: mark-delete %v, want %v", tc.name, cur.MarkDelete, tc.want)
		}
	}
	// A dry run writes nothing.
	before, err := c.mem.GetCursor(ctxT(t), topic, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.ResetCursor(ctxT(t), &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s",
		To: &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_EARLIEST}}); err != nil {
		t.Fatal(err)
	}
	after, err := c.mem.GetCursor(ctxT(t), topic, "s")
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version {
		t.Fatalf("a dry run wrote the cursor: %v -> %v", before.MarkDelete, after.MarkDelete)
	}
}
