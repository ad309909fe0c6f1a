package serving

import (
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Backlog quotas, as Pulsar's: a namespace policy bounds the bytes one
// durable subscription's backlog may hold (estimated as the stats'
// backlog_bytes), so that a subscription nobody drains cannot fill the
// bookies. Every BacklogQuotaCheckInterval each topic compares:
//
//   - producer_exception: while some subscription is over the quota, new
//     batches fail with BACKLOG_QUOTA_EXCEEDED (a resend of a batch already
//     written still gets its receipt). An error never overtakes the receipt
//     of an earlier batch of its producer: while one is in flight, the
//     error waits for it (dedupState.rejects), and the producer's next
//     batches are refused too (the other per-batch errors wait likewise,
//     without refusing what follows);
//   - consumer_backlog_eviction: each subscription over the quota is moved
//     forward, as a TTL expiry moves it, to where its backlog fits: its
//     oldest messages are skipped, unacknowledged.

// rejected is a batch refused while an earlier batch of its producer was
// in flight: its error is sent once the batches pushed before it are
// durable (after is the producer's pushed sequence id then), right after
// the last one's receipt and before the receipts of batches after it.
type rejected struct {
	p           *producer
	first, last uint64
	err         error
	after       int64
	quota       bool // a backlog quota refusal, which refuses what follows too
}

// checkBacklogQuota applies the namespace's backlog quota (see above).
func (t *topic) checkBacklogQuota() {
	pol := t.pol()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.state != topicServing {
		return
	}
	over := false
	if quota := pol.BacklogQuotaBytes; quota > 0 {
		for _, s := range t.mu.subs {
			if !s.durable {
				continue
			}
			b := t.backlogBytesLocked(s.acks)
			if b <= uint64(quota) {
				continue
			}
			if pol.BacklogQuotaPolicy != metadata.QuotaConsumerBacklogEviction {
				over = true
				continue
			}
			target := t.evictionTargetLocked(s.acks, uint64(quota))
			t.log.Warn("backlog quota exceeded: skipping the subscription's oldest messages",
				"subscription", s.name, "backlog_bytes", b, "quota", quota, "to", target)
			s.expireLocked(target)
			t.n.m.quotaEvictions.Inc()
		}
	}
	if over != t.mu.overQuota {
		t.log.Warn("backlog quota", "exceeded", over, "quota", pol.BacklogQuotaBytes)
	}
	t.mu.overQuota = over
}

// evictionTargetLocked answers the mark-delete position after which a's
// backlog fits in quota bytes, estimated as backlogBytesLocked does: whole
// ledgers from the newest back, then the last entries of one ledger at its
// mean entry size, rounded up.
func (t *topic) evictionTargetLocked(a *ackState, quota uint64) ids.Position {
	ls := t.mu.ml.Ledgers
	md := t.orderLocked().index(a.markDelete.Ledger)
	var kept uint64
	for i := len(ls) - 1; i >= 0 && i >= md; i-- {
		e, b := t.entriesLocked(i), t.bytesLocked(i)
		if e == 0 {
			continue
		}
		if kept+b <= quota {
			kept += b
			continue
		}
		per := (b + uint64(e) - 1) / uint64(e)
		k := int64((quota - kept) / max(per, 1))
		return ids.Position{Ledger: ls[i].ID, Entry: ids.EntryID(e - k - 1)}
	}
	return a.markDelete
}

// rejectForQuotaLocked refuses batch first..last of p when the topic is
// over its backlog quota, or when an earlier batch of p's was refused and
// its error still waits (so that p's answers stay in order). It answers
// whether the batch was refused; p.pending was counted for it.
func (t *topic) rejectForQuotaLocked(d *dedupState, p *producer, first, last uint64) bool {
	if !t.mu.overQuota && !slices.ContainsFunc(d.rejects, func(r rejected) bool { return r.quota }) {
		return false
	}
	p.pending.Add(-1)
	err := errcode.New(errcode.BacklogQuotaExceeded, "a subscription of %s holds more backlog than the quota of %d bytes", t.name, t.pol().BacklogQuotaBytes)
	rejectInOrderLocked(d, rejected{p: p, first: first, last: last, err: err, quota: true})
	return true
}

// rejectInOrder refuses batch first..last of p with err, after the receipts
// of p's batches in flight.
func (t *topic) rejectInOrder(p *producer, first, last uint64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rejectInOrderLocked(dedupFor(t.mu.dedup, p.name), rejected{p: p, first: first, last: last, err: err})
}

func rejectInOrderLocked(d *dedupState, r rejected) {
	if d.persisted >= d.pushed && len(d.rejects) == 0 {
		r.p.sendError(r.first, r.last, r.err) // nothing of p's in flight: in order now
		return
	}
	r.after = d.pushed
	d.rejects = append(d.rejects, r)
}

// releaseRejectsLocked sends, in order, the waiting errors of d's producer
// whose earlier batches are all durable.
func releaseRejectsLocked(d *dedupState) {
	n := 0
	for _, r := range d.rejects {
		if r.after > d.persisted {
			break
		}
		r.p.sendError(r.first, r.last, r.err)
		n++
	}
	d.rejects = d.rejects[n:]
	if len(d.rejects) == 0 {
		d.rejects = nil
	}
}
