package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/strata-mq/strata/internal/hrtimer"
)

// sendErrorPause is how long a producer waits after a send was refused
// before its next send.
const sendErrorPause = 10 * time.Millisecond

// errSequence marks a bug: a producer broke its own gap-free sequence.
var errSequence = errors.New("loadtest: sequence bug")

// loadProducer is one workload producer: one driver producer per partition
// of its topic, one gap-free sequence per partition.
type loadProducer struct {
	id    uint32
	topic int
	parts []Producer
	next  []uint64 // next sequence number per partition
	rng   *rand.Rand
}

func (r *run) openProducers(ctx context.Context, topics []string) error {
	for t, topic := range topics {
		for i := range r.w.ProducersPerTopic {
			id := uint32(t*r.w.ProducersPerTopic + i)
			p := &loadProducer{
				id:    id,
				topic: t,
				next:  make([]uint64, r.w.Partitions),
				rng:   rand.New(rand.NewPCG(uint64(r.w.Seed), uint64(id))),
			}
			r.producers = append(r.producers, p)
			r.verifier.AddProducer(id, t)
			for part := range r.w.Partitions {
				dp, err := r.d.NewProducer(ctx, topic, part)
				if err != nil {
					return fmt.Errorf("loadtest: %s producer on %s partition %d: %w", r.d.Name(), topic, part, err)
				}
				p.parts = append(p.parts, dp)
			}
		}
	}
	return nil
}

// pacing returns the time between two sends of one producer (0 = max).
func (r *run) pacing() time.Duration {
	if r.w.Rate == 0 || len(r.producers) == 0 {
		return 0
	}
	return time.Duration(float64(time.Second) * float64(len(r.producers)) / r.w.Rate)
}

// runProducer sends until ctx ends or the producer's message budget is
// spent. Sends are scheduled at fixed intended times from start, so a slow
// broker is not hidden by the producer waiting (coordinated omission): a
// producer that falls behind sends at once until it has caught up.
func (r *run) runProducer(ctx context.Context, p *loadProducer, start time.Time) {
	every := r.pacing()
	var pace *pacer
	if every > 0 {
		pace = newPacer()
		defer pace.close()
	}
	for n := int64(0); r.w.MaxMessagesPerProducer == 0 || n < r.w.MaxMessagesPerProducer; n++ {
		if every > 0 {
			due := start.Add(time.Duration(n) * every)
			if err := pace.sleepUntil(ctx, due); err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err := r.sendOne(ctx, p, n); err != nil {
			if ctx.Err() != nil || errors.Is(err, errSequence) {
				return
			}
			// The broker refused at once: pace the retries of a failing
			// broker instead of spinning.
			if sleepUntil(ctx, time.Now().Add(sendErrorPause)) != nil {
				return
			}
		}
	}
}

// pacer keeps a producer to its schedule. On an hrtimer (Linux), which
// wakes within tens of microseconds, it sleeps whenever the next send is
// pacerStep or more ahead, so a producer at 150,000 msg/s sends about 30
// messages at a time. On the runtime's timers, which wake a busy process
// up to a millisecond late (internal/hrtimer), it only sleeps a millisecond
// or more, and the producer sends a millisecond's worth at a time: bursts
// that a producer's linger then holds almost whole.
type pacer struct {
	hr      *hrtimer.Timer // nil: the runtime's timers
	minWait time.Duration
}

// pacerStep is the shortest sleep on an hrtimer: at 5,000 wake-ups a second
// it costs the load generator little.
const pacerStep = 200 * time.Microsecond

func newPacer() *pacer {
	if hr, err := hrtimer.New(); err == nil {
		return &pacer{hr: hr, minWait: pacerStep}
	}
	return &pacer{minWait: time.Millisecond}
}

func (p *pacer) close() {
	if p.hr != nil {
		_ = p.hr.Close()
	}
}

// sleepUntil waits until t or ctx ends; a wait shorter than the pacer's
// shortest sleep is skipped.
func (p *pacer) sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d < p.minWait {
		return ctx.Err()
	}
	if p.hr == nil {
		return sleepUntil(ctx, t)
	}
	p.hr.Reset(d)
	// Registered after the Reset: a cancel ends this wait whenever it comes.
	stop := context.AfterFunc(ctx, func() { p.hr.Reset(0) })
	err := p.hr.Wait()
	stop()
	if err != nil {
		return err
	}
	return ctx.Err()
}

// sleepUntil waits until t (skipping waits under a millisecond, which
// timers cannot honour anyway) or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d < time.Millisecond {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (r *run) keyFor(p *loadProducer, n int64) string {
	switch r.w.KeyDistribution {
	case KeyRoundRobin:
		return r.keys[n%int64(len(r.keys))]
	case KeyRandom:
		return r.keys[p.rng.IntN(len(r.keys))]
	}
	return ""
}

// sendOne stamps and sends the producer's n-th message.
func (r *run) sendOne(ctx context.Context, p *loadProducer, n int64) error {
	key := r.keyFor(p, n)
	part := partitionFor(key, n, r.w.Partitions)
	payload := make([]byte, r.w.MessageSize)
	off := p.rng.IntN(len(r.filler) - r.w.MessageSize + 1)
	copy(payload, r.filler[off:])
	sent := time.Now()
	h := Header{Producer: p.id, Partition: uint32(part), Seq: p.next[part], SendUnixNano: sent.UnixNano()}
	h.Encode(payload)
	if err := r.verifier.Sent(h); err != nil {
		return fmt.Errorf("%w: %w", errSequence, err)
	}
	p.next[part]++
	size := len(payload)
	err := p.parts[part].SendAsync(ctx, key, payload, func(err error) {
		if err != nil {
			r.verifier.Failed(h)
			r.rec.Failed()
			r.log.Debug("loadtest: send failed", "producer", h.Producer, "partition", h.Partition, "seq", h.Seq, "err", err)
			return
		}
		r.verifier.Acked(h)
		r.rec.Acked(sent, time.Since(sent), size)
	})
	if err != nil {
		// Never handed to the broker (done will not be called): take the
		// sequence number back so the sequence stays gap-free.
		if uerr := r.verifier.Unsent(h); uerr != nil {
			return fmt.Errorf("%w: %w", errSequence, uerr)
		}
		p.next[part]--
	}
	return err
}
