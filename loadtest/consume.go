package loadtest

import (
	"context"
	"fmt"
	"time"
)

// loadConsumer is one driver consumer: one partition of one subscription,
// on behalf of workload consumer `consumer`.
type loadConsumer struct {
	sub      int // subscription index, unique in the run
	consumer int // workload consumer index, unique in the run
	c        Consumer
}

func (r *run) openConsumers(ctx context.Context, topics []string) error {
	consumer := 0
	for t, topic := range topics {
		for j := range r.w.SubscriptionsPerTopic {
			sub := t*r.w.SubscriptionsPerTopic + j
			r.verifier.AddSubscription(sub, t)
			for range r.w.ConsumersPerSubscription {
				for part := range r.w.Partitions {
					c, err := r.d.NewConsumer(ctx, topic, part, SubscriptionName(j), r.w.SubscriptionType)
					if err != nil {
						return fmt.Errorf("loadtest: %s consumer on %s partition %d: %w", r.d.Name(), topic, part, err)
					}
					r.consumers = append(r.consumers, &loadConsumer{sub: sub, consumer: consumer, c: c})
				}
				consumer++
			}
		}
	}
	return nil
}

// consume receives until ctx ends, verifying and acknowledging each
// message. Receive errors other than ctx's are counted and retried after a
// short pause.
func (r *run) consume(ctx context.Context, lc *loadConsumer) {
	const retryPause = 50 * time.Millisecond
	for ctx.Err() == nil {
		m, err := lc.c.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.receiveErrors.Add(1)
			r.log.Debug("loadtest: receive", "err", err)
			_ = sleepUntil(ctx, time.Now().Add(retryPause))
			continue
		}
		r.handle(ctx, lc, m)
	}
}

func (r *run) handle(ctx context.Context, lc *loadConsumer, m Message) {
	now := time.Now()
	h, err := DecodeHeader(m.Payload)
	if err != nil {
		r.verifier.Garbled()
	} else {
		switch r.verifier.Received(lc.sub, lc.consumer, h, m.Key) {
		case InOrder, OutOfOrder:
			sent := time.Unix(0, h.SendUnixNano)
			r.rec.Received(sent, now.Sub(sent), len(m.Payload))
		}
	}
	if m.Ack == nil {
		return
	}
	if err := m.Ack(ctx); err != nil && ctx.Err() == nil {
		r.ackErrors.Add(1)
		r.log.Debug("loadtest: ack", "err", err)
	}
}
