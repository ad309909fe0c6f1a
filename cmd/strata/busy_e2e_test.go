package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestATakenSubscriptionOrProducerNameFailsTheFirstOpenAtOnce: on a real
// standalone, a second consumer of an exclusive subscription gets
// ErrConsumerBusy, and a second producer of a name in use ErrProducerBusy,
// while its context is still live, as Pulsar's clients do; they used to be
// retried until the operation timeout (30 s by default), so the error came
// only when the call's time was up.
func TestATakenSubscriptionOrProducerNameFailsTheFirstOpenAtOnce(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client(client.OperationTimeout(10 * time.Minute))
	first, err := c.Subscribe(ctx, "busy", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	p, err := c.NewProducer(ctx, "busy", client.ProducerName("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for what, open := range map[string]func(context.Context) error{
		"consumer": func(ctx context.Context) error {
			_, err := c.Subscribe(ctx, "busy", "s")
			if err == nil || !errors.Is(err, client.ErrConsumerBusy) {
				return errors.Join(errors.New("want ErrConsumerBusy"), err)
			}
			return nil
		},
		"producer": func(ctx context.Context) error {
			_, err := c.NewProducer(ctx, "busy", client.ProducerName("p"))
			if err == nil || !errors.Is(err, client.ErrProducerBusy) {
				return errors.Join(errors.New("want ErrProducerBusy"), err)
			}
			return nil
		},
	} {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := open(octx)
		live := octx.Err() == nil
		cancel()
		if err != nil {
			t.Errorf("second %s: %v", what, err)
		}
		if !live {
			t.Errorf("second %s: answered only when its context ended: the busy error was retried", what)
		}
	}
}
