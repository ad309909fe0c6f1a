package serving

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
)

// TestQuotaRefusalWaitsForTheReceiptOfAnEarlierBatch: a batch refused for
// the backlog quota while an earlier batch of its producer is in flight is
// answered only after that batch's receipt, and so is every later batch of
// the producer while that answer waits, even once the quota clears: the
// producer's answers stay in sequence order.
func TestQuotaRefusalWaitsForTheReceiptOfAnEarlierBatch(t *testing.T) {
	n := &Node{cfg: Config{}.withDefaults(), m: newMetrics(prometheus.NewRegistry())}
	tp := &topic{n: n, name: "public/default/t", ctx: context.Background()}
	pol := metadata.NamespacePolicy{BacklogQuotaBytes: 1}
	tp.policy.Store(&pol)
	p := newProducer(tp, "p", 10)
	d := &dedupState{pushed: 5, persisted: 3} // batches up to 5 in flight
	answers := func() []uint32 {
		var codes []uint32
		for len(p.out) > 0 {
			codes = append(codes, (<-p.out).GetError().GetCode())
		}
		return codes
	}

	tp.mu.overQuota = true
	p.pending.Add(1)
	if !tp.rejectForQuotaLocked(d, p, 6, 6) {
		t.Fatal("batch 6 was not refused over the quota")
	}
	tp.mu.overQuota = false
	p.pending.Add(1)
	if !tp.rejectForQuotaLocked(d, p, 7, 7) {
		t.Fatal("batch 7 went ahead of batch 6's waiting refusal")
	}
	if got := answers(); len(got) != 0 {
		t.Fatalf("answered %v before batch 5's receipt", got)
	}
	d.persist(receipt{first: 4, last: 5})
	releaseRejectsLocked(d)
	got := answers()
	if len(got) != 2 || errcode.Code(got[0]) != errcode.BacklogQuotaExceeded || errcode.Code(got[1]) != errcode.BacklogQuotaExceeded {
		t.Fatalf("after batch 5's receipt: answers %v, want two BACKLOG_QUOTA_EXCEEDED", got)
	}
	if p.pending.Load() != 0 {
		t.Fatalf("%d batches still counted pending", p.pending.Load())
	}
	p.pending.Add(1)
	if tp.rejectForQuotaLocked(d, p, 8, 8) {
		t.Fatal("batch 8 refused under the quota with nothing waiting")
	}
}

// TestBatchErrorWaitsForTheReceiptsBeforeItButNotAfterIt: a batch refused
// (here, over the size limit) while earlier batches of its producer are in
// flight is answered right after their receipts, and batches sent after it
// go ahead and are not refused.
func TestBatchErrorWaitsForTheReceiptsBeforeItButNotAfterIt(t *testing.T) {
	n := &Node{cfg: Config{}.withDefaults(), m: newMetrics(prometheus.NewRegistry())}
	tp := &topic{n: n, name: "public/default/t", ctx: context.Background()}
	tp.mu.dedup = map[string]*dedupState{}
	p := newProducer(tp, "p", 10)
	d := dedupFor(tp.mu.dedup, "p")
	d.pushed, d.persisted = 5, 3 // batches 4 and 5 in flight
	tp.rejectInOrder(p, 6, 6, errcode.New(errcode.MessageTooLarge, "too large"))
	if len(p.out) != 0 {
		t.Fatal("the refusal of batch 6 overtook the receipts of batches 4 and 5")
	}
	tp.mu.overQuota = false
	p.pending.Add(1)
	if tp.rejectForQuotaLocked(d, p, 7, 7) {
		t.Fatal("batch 7 was refused because batch 6 was")
	}
	d.pushed = 7 // batch 7 in flight
	d.persist(receipt{first: 4, last: 4})
	releaseRejectsLocked(d)
	if len(p.out) != 0 {
		t.Fatal("answered before batch 5's receipt")
	}
	d.persist(receipt{first: 5, last: 5})
	releaseRejectsLocked(d)
	if len(p.out) != 1 || errcode.Code((<-p.out).GetError().GetCode()) != errcode.MessageTooLarge || len(d.rejects) != 0 {
		t.Fatalf("after batch 5's receipt: %d answers, %d waiting; want batch 6's refusal alone", len(p.out)+1, len(d.rejects))
	}
}
