package client_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/strata-mq/strata/client"
)

type recordingInterceptor struct {
	mu                  sync.Mutex
	sent, acked, nacked []client.MessageID
	consumed            []string
	sendErrs            int
}

func (r *recordingInterceptor) BeforeSend(msg *client.ProducerMessage) {
	if msg.Properties == nil {
		msg.Properties = map[string]string{}
	}
	msg.Properties["traceparent"] = "00-trace-" + string(msg.Payload)
}

func (r *recordingInterceptor) OnSendAcknowledgement(_ *client.ProducerMessage, id client.MessageID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.sendErrs++
		return
	}
	r.sent = append(r.sent, id)
}

func (r *recordingInterceptor) BeforeConsume(msg *client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consumed = append(r.consumed, msg.Properties["traceparent"])
}

func (r *recordingInterceptor) OnAcknowledge(id client.MessageID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.acked = append(r.acked, id)
	}
}

func (r *recordingInterceptor) OnNegativeAcknowledge(id client.MessageID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.nacked = append(r.nacked, id)
	}
}

func TestInterceptorsSeeEverySendConsumeAckAndNack(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	var r recordingInterceptor
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest), client.ConsumerInterceptors(&r))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "t", client.ProducerInterceptors(&r))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("m1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, nil); err == nil {
		t.Fatal("a nil message was sent")
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: make([]byte, 6<<20)}); !errors.Is(err, client.ErrMessageTooLarge) {
		t.Fatalf("an oversize message: %v", err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Nack(m); err != nil {
		t.Fatal(err)
	}
	if err := cons.Ack(m); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) != 1 || r.sent[0] != id || r.sendErrs != 1 {
		t.Fatalf("sends seen: %v, %d errors; want %v and the oversize one's error", r.sent, r.sendErrs, id)
	}
	if len(r.consumed) != 1 || r.consumed[0] != "00-trace-m1" {
		t.Fatalf("consumed %v: want the property BeforeSend set", r.consumed)
	}
	if len(r.nacked) != 1 || r.nacked[0] != m.ID || len(r.acked) != 1 || r.acked[0] != m.ID {
		t.Fatalf("nacked %v, acked %v; want %v each", r.nacked, r.acked, m.ID)
	}
}
