package serving_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// cursorGate is a Meta that, once armed, holds the first cursor write
// moving the mark-delete position before before until release closes.
type cursorGate struct {
	serving.Meta
	mu      sync.Mutex
	before  ids.Position
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (m *cursorGate) arm(before ids.Position) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.before, m.armed = before, true
	m.entered, m.release = make(chan struct{}), make(chan struct{})
}

func (m *cursorGate) PutCursor(ctx context.Context, c *metadata.Cursor) error {
	m.mu.Lock()
	hold := m.armed && c.MarkDelete.Ledger == m.before.Ledger && c.MarkDelete.Entry < m.before.Entry
	entered, release := m.entered, m.release
	if hold {
		m.armed = false
	}
	m.mu.Unlock()
	if hold {
		close(entered)
		<-release
	}
	return m.Meta.PutCursor(ctx, c)
}

// TestAnExecutedResetAnsweredWithAnErrorLeavesTheCursorAsItWas: a reset
// whose cursor write is under way when an unload begins must either be
// answered as done or leave the stored cursor as it was. It was answered
// TOPIC_FENCED while the write it had made stayed, so the next owner
// redelivered every acknowledged message (or, had an ack made the cursor
// dirty, the unload's flush stored the old cursor over it): a reset the
// caller was told had failed happened anyway.
func TestAnExecutedResetAnsweredWithAnErrorLeavesTheCursorAsItWas(t *testing.T) {
	c := newRealCluster(t, 3)
	store := metatestStore(t, c)
	meta := &cursorGate{Meta: serving.StoreMeta(store)}
	a := c.startNode("a", meta, store)
	const topic = "public/default/reset-during-unload"
	p := mustProducer(t, a, topic, "p1")
	var last *servingpb.SendReceipt
	for i := uint64(1); i <= 10; i++ {
		last = p.mustSend(msg(i))
	}
	cs := mustSubscribe(t, a, &servingpb.Subscribe{Topic: topic, Subscription: "s", InitialPosition: servingpb.InitialPosition_EARLIEST})
	cs.flow(10)
	for _, m := range cs.receive(10) {
		cs.ack(m.GetId())
	}
	acked := ids.Position{Ledger: ids.LedgerID(last.GetLedger()), Entry: ids.EntryID(last.GetEntry())}
	eventually(t, "the acks stored", func() error {
		cur, err := store.GetCursor(ctxT(t), topic, "s")
		if err != nil {
			return err
		}
		if cur.MarkDelete != acked {
			return errors.New("cursor at " + cur.MarkDelete.String())
		}
		return nil
	})
	cs.cancel()

	meta.arm(acked)
	reset := make(chan error, 1)
	go func() {
		_, err := a.client.ResetCursor(ctxT(t), &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s", Execute: true,
			To: &servingpb.ResetCursorRequest_Edge{Edge: servingpb.InitialPosition_EARLIEST}})
		reset <- err
	}()
	<-meta.entered
	unloaded := unloadAsync(t, a, topic)
	eventually(t, "the unload begun", func() error {
		if a.Serves(topic) {
			return errors.New("still served")
		}
		return nil
	})
	close(meta.release)
	resetErr := <-reset
	if err := <-unloaded; err != nil {
		t.Fatal(err)
	}
	cur, err := store.GetCursor(ctxT(t), topic, "s")
	if err != nil {
		t.Fatal(err)
	}
	if resetErr != nil && cur.MarkDelete != acked {
		t.Fatalf("the reset was answered %v, yet the cursor stored moved from %v to %v", resetErr, acked, cur.MarkDelete)
	}
	if resetErr == nil && cur.MarkDelete == acked {
		t.Fatalf("the reset was answered as done, yet the cursor stored is still at %v", acked)
	}
}
