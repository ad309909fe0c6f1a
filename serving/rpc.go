package serving

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
	"google.golang.org/grpc"
)

func nowNanos() int64 { return time.Now().UnixNano() }

// Produce serves one producer stream. The first request opens the producer;
// each later one is a batch, answered in order by a receipt or a SendError.
// The stream ends with a retriable error when the topic leaves this node.
func (n *Node) Produce(stream grpc.BidiStreamingServer[servingpb.ProduceRequest, servingpb.ProduceResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	open := req.GetOpen()
	if open == nil {
		return errcode.New(errcode.InvalidArgument, "the first produce request must open the producer")
	}
	t, err := n.topicFor(stream.Context(), open.GetTopic(), true)
	if err != nil {
		return err
	}
	version, err := n.producerSchema(stream.Context(), t.name, open.GetSchema(), t.pol(), false)
	if err != nil {
		return err
	}
	p, last, err := t.addProducerWaiting(stream.Context(), open.GetProducerName(), open.GetAccessMode())
	if err != nil {
		return err
	}
	defer t.removeProducer(p)
	if version != nil {
		p.schemaVersion = strconv.FormatUint(*version, 10)
	}
	opened := &servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Opened{Opened: &servingpb.ProducerOpened{
		ProducerName: p.name, LastSequenceId: last, MaxMessageBytes: t.maxMessageBytes(), SchemaVersion: version}}}
	if err := stream.Send(opened); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- n.producerRecv(stream, t, p) }()
	send := func(r *servingpb.ProduceResponse) error {
		if err := stream.Send(r); err != nil {
			return err
		}
		if r.GetReceipt() != nil {
			p.pending.Add(-1)
		}
		return nil
	}
	for {
		select {
		case r := <-p.out:
			if err := send(r); err != nil {
				return err
			}
		case <-p.done:
			// What was queued before the producer was ended goes first:
			// a graceful unload ends it right after the receipts of its
			// last batches, which it would otherwise resend to the next
			// owner.
			for len(p.out) > 0 {
				if err := send(<-p.out); err != nil {
					return err
				}
			}
			return p.err
		case err := <-recvErr:
			return err
		}
	}
}

// producerRecv reads batches until the stream ends; it exits when the
// handler returns (gRPC then cancels the stream).
func (n *Node) producerRecv(stream grpc.BidiStreamingServer[servingpb.ProduceRequest, servingpb.ProduceResponse], t *topic, p *producer) error {
	var batches uint64 // read on this stream, for Throttled
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		batches++
		send := req.GetSend()
		if send == nil {
			return errcode.New(errcode.InvalidArgument, "producer already open")
		}
		if !t.pacePublish(stream.Context(), p, send, batches) {
			return stream.Context().Err()
		}
		if err := t.publish(p, send); err != nil {
			return err
		}
	}
}

// addProducerWaiting is addProducer, which for ACCESS_WAIT_FOR_EXCLUSIVE
// waits in line until the topic has no producer, ctx ends, or the topic
// leaves this node.
func (t *topic) addProducerWaiting(ctx context.Context, name string, mode servingpb.ProducerAccessMode) (*producer, int64, error) {
	if name == "" {
		name = fmt.Sprintf("%s-%s", t.n.cfg.NodeID, uuid.NewString())
	}
	var w *exclusiveWaiter
	for {
		p, last, err := t.addProducer(name, mode, &w)
		if w == nil {
			return p, last, err
		}
		select {
		case <-w.ready:
		case <-ctx.Done():
			t.leaveLine(w)
			return nil, 0, errcode.New(errcode.Timeout, "producer %s stopped waiting for %s", name, t.name)
		case <-t.ctx.Done():
			t.leaveLine(w)
			if err := t.servingErr(); err != nil {
				return nil, 0, err
			}
			return nil, 0, errcode.New(errcode.Unavailable, "topic %s was unloaded", t.name)
		}
	}
}

// exclusiveWaiter is a producer in line for a topic to itself.
type exclusiveWaiter struct {
	ready chan struct{} // closed when the producer is first in line and the topic is free
	woken bool
}

// addProducer registers a producer name on the topic; answers the highest
// persisted sequence id of that name (-1 if none). An exclusive producer
// needs the topic to itself, and keeps every other producer out while it
// is connected (Pulsar's ProducerAccessMode Exclusive). A producer that
// waits for that (WaitForExclusive) and cannot have it yet gets *w, its
// place in line, instead; it calls again with it when w.ready closes, and
// *w is nil once it is done waiting.
func (t *topic) addProducer(name string, mode servingpb.ProducerAccessMode, w **exclusiveWaiter) (*producer, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.servingErrLocked(); err != nil {
		t.leaveLineLocked(*w)
		*w = nil
		return nil, 0, err
	}
	if t.terminatedLocked() {
		t.leaveLineLocked(*w)
		*w = nil
		return nil, 0, t.terminatedErr()
	}
	if mode == servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE_WITH_FENCING {
		t.fenceProducersLocked(name)
	}
	if _, busy := t.mu.prods[name]; busy {
		t.leaveLineLocked(*w)
		*w = nil
		return nil, 0, errcode.New(errcode.ProducerBusy, "producer %s is already connected to %s", name, t.name)
	}
	free := t.mu.exclusive == "" && len(t.mu.prods) == 0
	switch {
	case mode == servingpb.ProducerAccessMode_ACCESS_WAIT_FOR_EXCLUSIVE:
		// Behind others in line (not woken as the first), or the topic
		// is taken: wait.
		if !free || (*w == nil && len(t.mu.waiters) > 0) {
			if *w == nil {
				*w = &exclusiveWaiter{ready: make(chan struct{})}
				t.mu.waiters = append(t.mu.waiters, *w)
			} else if (*w).woken {
				(*w).ready, (*w).woken = make(chan struct{}), false
			}
			return nil, 0, nil
		}
		t.leaveLineLocked(*w)
		*w = nil
	case mode != servingpb.ProducerAccessMode_ACCESS_SHARED && mode != servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE &&
		mode != servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE_WITH_FENCING:
		return nil, 0, errcode.New(errcode.InvalidArgument, "unknown producer access mode %d", mode)
	case t.mu.exclusive != "":
		return nil, 0, errcode.New(errcode.ProducerFenced, "%s has an exclusive producer, %s", t.name, t.mu.exclusive)
	case mode == servingpb.ProducerAccessMode_ACCESS_EXCLUSIVE && len(t.mu.prods) > 0:
		return nil, 0, errcode.New(errcode.ProducerFenced, "an exclusive producer needs %s to itself; %d producers are connected", t.name, len(t.mu.prods))
	}
	if _, known := t.mu.dedup[name]; !known && len(t.mu.dedup) >= t.n.cfg.MaxDedupProducers {
		t.evictDedupLocked()
	}
	p := newProducer(t, name, t.n.cfg.MaxPendingPerProducer)
	t.mu.prods[name] = p
	if mode != servingpb.ProducerAccessMode_ACCESS_SHARED {
		t.mu.exclusive = name
	}
	return p, dedupFor(t.mu.dedup, name).persisted, nil
}

// fenceProducersLocked closes every producer connected, for one opening
// with ACCESS_EXCLUSIVE_WITH_FENCING: each is unregistered at once, so
// that publish refuses whatever batch of it comes later (under the same
// mu), and its stream ends with PRODUCER_FENCED.
func (t *topic) fenceProducersLocked(by string) {
	for name, p := range t.mu.prods {
		p.fail(errcode.New(errcode.ProducerFenced, "producer %s of %s fenced by the exclusive producer %s", name, t.name, by))
		delete(t.mu.prods, name)
	}
	t.mu.exclusive = ""
}

// leaveLine takes w out of the line of exclusive producers.
func (t *topic) leaveLine(w *exclusiveWaiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leaveLineLocked(w)
}

func (t *topic) leaveLineLocked(w *exclusiveWaiter) {
	if w == nil {
		return
	}
	if i := slices.Index(t.mu.waiters, w); i >= 0 {
		t.mu.waiters = slices.Delete(t.mu.waiters, i, i+1)
	}
	t.wakeLineLocked()
}

// wakeLineLocked wakes the first in line when the topic has no producer.
func (t *topic) wakeLineLocked() {
	if len(t.mu.waiters) == 0 || t.mu.exclusive != "" || len(t.mu.prods) > 0 {
		return
	}
	if w := t.mu.waiters[0]; !w.woken {
		w.woken = true
		close(w.ready)
	}
}

// evictDedupLocked forgets the dedup state of the producer name that
// disconnected longest ago (or, never connected here, was loaded longest
// ago). Not any disconnected one: a producer that just lost its stream is
// about to resend, and without its state the resend would be written
// twice.
func (t *topic) evictDedupLocked() {
	var (
		victim string
		oldest *dedupState
	)
	for name, d := range t.mu.dedup {
		// Batches still being written (pushed past persisted), or resends
		// waiting for them, are what a reconnecting producer sends again
		// next: without the name's state that resend is written twice.
		if _, connected := t.mu.prods[name]; connected || len(d.waiters) > 0 || d.pushed > d.persisted {
			continue
		}
		if oldest == nil || d.left.Before(oldest.left) {
			victim, oldest = name, d
		}
	}
	if oldest != nil {
		delete(t.mu.dedup, victim)
	}
}

func (t *topic) removeProducer(p *producer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.prods[p.name] == p {
		delete(t.mu.prods, p.name)
		if d := t.mu.dedup[p.name]; d != nil {
			d.left = time.Now()
		}
		if t.mu.exclusive == p.name {
			t.mu.exclusive = ""
		}
		t.wakeLineLocked()
	}
}

// Consume serves one consumer stream: subscribe first, then flow permits,
// acks, nacks and seeks; messages are pushed within the permits.
func (n *Node) Consume(stream grpc.BidiStreamingServer[servingpb.ConsumeRequest, servingpb.ConsumeResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	sub := req.GetSubscribe()
	if sub == nil {
		return errcode.New(errcode.InvalidArgument, "the first consume request must subscribe")
	}
	if err := checkSubscribe(sub); err != nil {
		return err
	}
	t, err := n.topicFor(stream.Context(), sub.GetTopic(), true)
	if err != nil {
		return err
	}
	if err := n.consumerSchema(stream.Context(), t.name, sub.GetSchema(), t.pol()); err != nil {
		return err
	}
	c, err := t.subscribe(stream.Context(), sub)
	if err != nil {
		return err
	}
	defer t.detach(c)
	if err := stream.Send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Subscribed{
		Subscribed: &servingpb.Subscribed{ConsumerName: c.name, CursorEpoch: c.epoch}}}); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- n.consumerRecv(stream, t, c) }()
	for {
		select {
		case r := <-c.out:
			if err := stream.Send(r); err != nil {
				return err
			}
			if u := r.GetUnsubscribed(); u != nil && u.GetErrorCode() == 0 {
				return nil // the subscription is gone: end the stream cleanly
			}
			if c.queueFull.Swap(false) {
				t.queueDrained(c)
			}
			c.s.signal()
		case <-c.done:
			return c.err
		case err := <-recvErr:
			return err
		}
	}
}

func (n *Node) consumerRecv(stream grpc.BidiStreamingServer[servingpb.ConsumeRequest, servingpb.ConsumeResponse], t *topic, c *consumer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		switch k := req.GetKind().(type) {
		case *servingpb.ConsumeRequest_Flow:
			t.flow(c, k.Flow.GetPermits())
		case *servingpb.ConsumeRequest_Ack:
			if err := t.ack(c, k.Ack); err != nil {
				return err
			}
		case *servingpb.ConsumeRequest_Nack:
			t.nack(c, k.Nack)
		case *servingpb.ConsumeRequest_Seek:
			if err := t.seek(stream.Context(), c, k.Seek); err != nil { // it answers SeekDone
				return err
			}
		case *servingpb.ConsumeRequest_HasMessagesAfter:
			yes := t.hasEntryAfter(c, k.HasMessagesAfter.GetAfter())
			c.send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_HasMessagesAfterResult{
				HasMessagesAfterResult: &servingpb.HasMessagesAfterResult{Yes: yes}}})
		case *servingpb.ConsumeRequest_Unsubscribe:
			err := n.removeSubscription(stream.Context(), t, c.s.name, c)
			u := &servingpb.Unsubscribed{}
			if err != nil {
				u.ErrorCode, u.ErrorMessage = uint32(errcode.CodeOf(err)), err.Error()
				if ce := (*errcode.Error)(nil); errors.As(err, &ce) {
					u.ErrorMessage = ce.Message
				}
			}
			c.send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Unsubscribed{Unsubscribed: u}})
			if err == nil {
				// Read nothing more; Consume ends the stream once the
				// answer is sent (returning here could end it first).
				<-stream.Context().Done()
				return nil
			}
		default:
			return errcode.New(errcode.InvalidArgument, "unexpected consume request")
		}
		if err := t.servingErr(); err != nil {
			return err
		}
	}
}
