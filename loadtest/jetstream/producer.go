package jetstream

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// producer publishes asynchronously to one subject with at most window
// acknowledgements pending. One goroutine (started by newProducer, ended by
// Close) completes the sends in order.
type producer struct {
	js      jetstream.JetStream
	subject string
	slots   chan struct{} // one token per pending send
	pending chan pendingSend
	closed  chan struct{}
	once    sync.Once
	done    sync.WaitGroup
}

type pendingSend struct {
	paf  jetstream.PubAckFuture
	done func(error)
}

func newProducer(js jetstream.JetStream, subject string, window int) *producer {
	p := &producer{
		js:      js,
		subject: subject,
		slots:   make(chan struct{}, window),
		pending: make(chan pendingSend, window),
		closed:  make(chan struct{}),
	}
	p.done.Go(p.complete)
	return p
}

func (p *producer) SendAsync(ctx context.Context, _ string, payload []byte, done func(error)) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return ErrClosed
	}
	paf, err := p.js.PublishAsync(p.subject, payload)
	if err != nil {
		<-p.slots
		return err
	}
	// Cannot block: pending has room for every slot.
	p.pending <- pendingSend{paf: paf, done: done}
	return nil
}

// complete waits for each pending acknowledgement in send order.
func (p *producer) complete() {
	for {
		select {
		case s := <-p.pending:
			p.settle(s)
		case <-p.closed:
			p.failRemaining()
			return
		}
	}
}

func (p *producer) settle(s pendingSend) {
	select {
	case <-s.paf.Ok():
		s.done(nil)
	case err := <-s.paf.Err():
		s.done(err)
	case <-p.closed:
		s.done(ErrClosed)
	}
	<-p.slots
}

func (p *producer) failRemaining() {
	for {
		select {
		case s := <-p.pending:
			s.done(ErrClosed)
			<-p.slots
		default:
			return
		}
	}
}

// Flush takes every slot, which it can only do once no send is pending,
// then gives them back.
func (p *producer) Flush(ctx context.Context) error {
	taken := 0
	defer func() {
		for range taken {
			<-p.slots
		}
	}()
	for taken < cap(p.slots) {
		select {
		case p.slots <- struct{}{}:
			taken++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close fails what is still pending and stops the completion goroutine.
func (p *producer) Close() error {
	p.once.Do(func() { close(p.closed) })
	p.done.Wait()
	return nil
}
