package serving

import (
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
//     error waits for it (dedupState.rejects), and so do the errors of the
//     producer's next batches;
//   - consumer_backlog_eviction: each subscription over the quota is moved
//     forward, as a TTL expiry moves it, to where its backlog fits: its
//     oldest messages are skipped, unacknowledged.

// rejected is a batch refused while an earlier batch of its producer was
// in flight: its error is sent after that batch's receipt.
type rejected struct {
	p           *producer
	first, last uint64
	err         error
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
	if !t.mu.overQuota && len(d.rejects) == 0 {
		return false
	}
	p.pending.Add(-1)
	err := errcode.New(errcode.BacklogQuotaExceeded, "a subscription of %s holds more backlog than the quota of %d bytes", t.name, t.pol().BacklogQuotaBytes)
	if d.persisted >= d.pushed && len(d.rejects) == 0 {
		p.sendError(first, last, err) // nothing of p's in flight: in order now
		return true
	}
	d.rejects = append(d.rejects, rejected{p: p, first: first, last: last, err: err})
	return true
}

// releaseRejectsLocked sends the waiting errors of d's producer once none
// of its batches is in flight.
func releaseRejectsLocked(d *dedupState) {
	if d.persisted < d.pushed {
		return
	}
	for _, r := range d.rejects {
		r.p.sendError(r.first, r.last, r.err)
	}
	d.rejects = nil
}
