package serving

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestKeySharedMessageNeverOvertakesAnEarlierWaitingOneOfItsKey: a message
// waits because its key's consumer had a full response queue; the sender
// drains that queue (which the dispatcher does not see until its next
// rescan), and a later message of the same key is read from the log. It
// must wait behind the earlier one, not go first; the rescan then delivers
// both, in order. White-box, because the window (a queue drained between
// two entries of one dispatch pass) cannot be timed from outside.
func TestKeySharedMessageNeverOvertakesAnEarlierWaitingOneOfItsKey(t *testing.T) {
	n := &Node{cfg: Config{MaxUnackedPerConsumer: 1000}.withDefaults(), m: newMetrics(prometheus.NewRegistry())}
	tp := &topic{n: n, name: "public/default/t", ctx: context.Background()}
	tp.mu.ml = &metadata.ManagedLedger{Ledgers: []metadata.LedgerInfo{{ID: 1}}}
	s := newSubscription(tp, "s", servingpb.SubscriptionType_KEY_SHARED, false, ids.Position{Ledger: 1, Entry: -1})
	b := &consumer{name: "b", s: s, out: make(chan *servingpb.ConsumeResponse, 4), permits: 100}
	s.consumers = []*consumer{b}
	s.ks.ring = newHashRing(s.consumers)

	pending := func(e int64, seq uint64) *pendingEntry {
		ce := &cachedEntry{pos: ids.Position{Ledger: 1, Entry: ids.EntryID(e)},
			batch: &entry.Batch{Messages: []entry.Message{{SequenceID: seq, Key: "k"}}}}
		pe := &pendingEntry{e: ce, acked: make([]bool, 1)}
		pe.keyed = newKeyedEntry(ce)
		s.pending[ce.pos] = pe
		return pe
	}
	for len(b.out) < cap(b.out)-1 { // full: hasRoomLocked refuses
		b.out <- &servingpb.ConsumeResponse{}
	}
	first := pending(0, 1)
	if !s.offerKeyedLocked(first, true, nil) {
		t.Fatal("the first message was delivered to a full queue")
	}
	s.queueKeyedLocked(first.e.pos, first)
	for len(b.out) > 0 { // the sender drains the queue
		<-b.out
	}
	second := pending(1, 2)
	if !s.offerKeyedLocked(second, true, nil) {
		t.Fatal("the second message of the key went before the first, which still waits")
	}
	s.queueKeyedLocked(second.e.pos, second)
	if len(b.out) != 0 {
		t.Fatalf("%d responses sent while the key's first message waits", len(b.out))
	}
	s.rescanKeyedLocked()
	var got []uint64
	for len(b.out) > 0 {
		for _, m := range (<-b.out).GetMessages().GetMessages() {
			got = append(got, m.GetSequenceId())
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("after the rescan the consumer got %v, want [1 2]", got)
	}
}
