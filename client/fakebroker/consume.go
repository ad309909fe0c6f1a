package fakebroker

import (
	"google.golang.org/grpc"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

type consumeServer = grpc.BidiStreamingServer[servingpb.ConsumeRequest, servingpb.ConsumeResponse]

// Consume serves a consumer stream: one consumer per stream, dispatching
// within its permits from the subscription's first unacknowledged message.
func (b *Broker) Consume(s consumeServer) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	sub := first.GetSubscribe()
	if sub == nil {
		return errcode.New(errcode.InvalidArgument, "first request must be subscribe")
	}
	b.mu.Lock()
	b.mu.subscribes = append(b.mu.subscribes, sub)
	b.mu.consumes++
	n := b.mu.consumes
	b.mu.Unlock()
	b.logConsume(n, first)
	if held := b.gateOf(&b.mu.subscribeGate); held != nil {
		select {
		case <-held:
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
	if sub.GetSubscription() == "" {
		return errcode.New(errcode.InvalidSubscription, "empty subscription name")
	}
	if err := b.checkOwner(sub.GetTopic()); err != nil {
		return err
	}
	state, next, err := b.cl.subscribe(sub)
	if err != nil {
		return err
	}
	if err := s.Send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Subscribed{Subscribed: &servingpb.Subscribed{ConsumerName: "fake-consumer"}}}); err != nil {
		return err
	}
	st := b.register(sub.GetTopic())
	defer b.unregister(st)
	reqs, errc := recvAll(s.Context(), s.Recv)
	permits := 0
	for {
		b.cl.mu.Lock()
		changed := b.cl.changed
		b.cl.mu.Unlock()
		if permits > 0 {
			var msgs []*servingpb.ReceivedMessage
			msgs, next = b.cl.read(sub.GetTopic(), state, next, permits)
			if len(msgs) > 0 {
				permits -= len(msgs)
				if err := s.Send(&servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_Messages{Messages: &servingpb.Messages{Messages: msgs}}}); err != nil {
					return err
				}
				continue
			}
		}
		select {
		case err := <-st.kill:
			return err
		case err := <-errc:
			return endOf(err)
		case <-changed:
		case r := <-reqs:
			b.logConsume(n, r)
			var err error
			permits, next, err = b.onConsumeRequest(s, sub.GetTopic(), state, r, permits, next)
			if err != nil {
				return err
			}
		}
	}
}

func (b *Broker) onConsumeRequest(s consumeServer, topicName string, state *subState, r *servingpb.ConsumeRequest, permits, next int) (int, int, error) {
	switch k := r.GetKind().(type) {
	case *servingpb.ConsumeRequest_Flow:
		b.mu.Lock()
		b.mu.flows = append(b.mu.flows, k.Flow.GetPermits())
		b.mu.Unlock()
		return permits + int(k.Flow.GetPermits()), next, nil
	case *servingpb.ConsumeRequest_Ack:
		b.mu.Lock()
		b.mu.acks = append(b.mu.acks, k.Ack.GetIds()...)
		b.mu.Unlock()
		b.cl.ack(topicName, state, k.Ack.GetIds(), k.Ack.GetCumulative())
	case *servingpb.ConsumeRequest_Nack:
		return permits, min(next, b.cl.firstUnacked(topicName, state)), nil
	case *servingpb.ConsumeRequest_Seek:
		i, pos := b.cl.seek(topicName, state, k.Seek)
		done := &servingpb.ConsumeResponse{Kind: &servingpb.ConsumeResponse_SeekDone{SeekDone: &servingpb.SeekDone{Position: pos}}}
		return permits, i, s.Send(done)
	default:
		return permits, next, errcode.New(errcode.InvalidArgument, "unexpected request %T", k)
	}
	return permits, next, nil
}

func (c *Cluster) firstUnacked(topicName string, s *subState) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil {
		return 0
	}
	return firstUnackedLocked(t, s)
}
