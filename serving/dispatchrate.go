package serving

import (
	"time"
)

// pacer spaces a subscription's deliveries to its namespace's dispatch
// rate (Pulsar's subscription dispatch rate): each entry sent costs
// max(messages / msg rate, bytes / byte rate) seconds of a virtual clock,
// and the dispatcher waits while that clock is ahead of the real one. The
// clock may fall at most one second behind, so an idle subscription may
// send a second's worth at once and no more. Whole entries go out, so a
// batch larger than a second's worth is sent and then paid for.
type pacer struct {
	next time.Time
}

// maxBurst is how far the virtual clock may fall behind: the burst an
// idle subscription may send at once.
const maxBurst = time.Second

// charge adds the cost of what was sent at now and answers how long to
// wait before sending more.
func (p *pacer) charge(now time.Time, msgs, bytes, msgRate, byteRate int64) time.Duration {
	var cost time.Duration
	if msgRate > 0 {
		cost = time.Duration(float64(msgs) / float64(msgRate) * float64(time.Second))
	}
	if byteRate > 0 {
		cost = max(cost, time.Duration(float64(bytes)/float64(byteRate)*float64(time.Second)))
	}
	if floor := now.Add(-maxBurst); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(cost)
	return max(0, p.next.Sub(now))
}

// pace charges what the dispatcher sent since it last paced against the
// namespace's dispatch rate and waits as long as that asks; false when the
// subscription stopped meanwhile. Runs on the dispatcher only.
func (s *subscription) pace() bool {
	msgs, bytes := s.sentMsgs.Swap(0), s.sentBytes.Swap(0)
	if msgs == 0 {
		return true
	}
	pol := s.t.pol()
	if pol.DispatchRateMsgs <= 0 && pol.DispatchRateBytes <= 0 {
		s.pacer = pacer{}
		return true
	}
	wait := s.pacer.charge(time.Now(), msgs, bytes, pol.DispatchRateMsgs, pol.DispatchRateBytes)
	if wait <= 0 {
		return true
	}
	s.t.n.m.dispatchThrottled.WithLabelValues(s.t.name).Add(wait.Seconds())
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
