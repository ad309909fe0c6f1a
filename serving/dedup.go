package serving

import (
	"time"

	"github.com/strata-mq/strata/internal/ids"
)

// maxRecentReceipts bounds the receipts each producer name remembers to
// answer a resend with the batch's original position. It covers the
// batches one producer may have in flight (Config.MaxPendingPerProducer,
// default 1000; the SDK sends at most 512), every one of which a
// reconnecting producer resends: with fewer, the oldest resends were
// answered as duplicates at position 0:0. At most 40 KiB per name.
const maxRecentReceipts = 1024

// receipt is where a batch was persisted.
type receipt struct {
	first, last uint64
	pos         ids.Position
	publishTime int64
}

// dedupState is one producer name's deduplication state: the highest
// sequence id sent to the ledger (pushed) and made durable (persisted), both
// -1 when none. A batch whose last sequence id is at or below pushed is a
// resend and is never written again.
type dedupState struct {
	pushed, persisted int64
	// recent is a ring of the last receipts: once it holds
	// maxRecentReceipts, oldest is where the next one goes.
	recent []receipt
	oldest int
	// left is when the name's producer last disconnected, or when this
	// node first knew the name (a takeover restores names whose producers
	// are about to reconnect): eviction takes the name gone longest.
	left time.Time
	// waiters are resends of batches still in flight, answered once those
	// are durable.
	waiters []*pendingBatch
	// rejects are batches refused while earlier ones were in flight,
	// answered after those (quota.go).
	rejects []rejected
}

func dedupFor(m map[string]*dedupState, name string) *dedupState {
	d := m[name]
	if d == nil {
		d = &dedupState{pushed: -1, persisted: -1, left: time.Now()}
		m[name] = d
	}
	return d
}

func (d *dedupState) persist(r receipt) {
	d.persisted = max(d.persisted, int64(r.last))
	d.pushed = max(d.pushed, d.persisted)
	if len(d.recent) < maxRecentReceipts {
		d.recent = append(d.recent, r)
		return
	}
	d.recent[d.oldest] = r
	d.oldest = (d.oldest + 1) % maxRecentReceipts
}

// prepend puts rs (oldest first, all older than what recent holds) before
// the receipts recent holds, as many of the newest as fit. Only a ring that
// is not full takes them: it has not wrapped, so recent[0] is its oldest.
func (d *dedupState) prepend(rs []receipt) {
	room := maxRecentReceipts - len(d.recent)
	if room <= 0 {
		return
	}
	rs = rs[len(rs)-min(room, len(rs)):]
	d.recent = append(append(make([]receipt, 0, len(rs)+len(d.recent)), rs...), d.recent...)
}

// find answers the receipt of the batch holding sequence id seq, when it is
// still remembered.
func (d *dedupState) find(seq uint64) (receipt, bool) {
	for i := range d.recent { // newest first
		j := (d.oldest - 1 - i + 2*len(d.recent)) % len(d.recent)
		if r := d.recent[j]; r.first <= seq && seq <= r.last {
			return r, true
		}
	}
	return receipt{}, false
}

// persistedSeqs is the snapshot stored in the managed ledger at each roll.
func persistedSeqs(m map[string]*dedupState) map[string]int64 {
	out := make(map[string]int64, len(m))
	for name, d := range m {
		if d.persisted >= 0 {
			out[name] = d.persisted
		}
	}
	return out
}
