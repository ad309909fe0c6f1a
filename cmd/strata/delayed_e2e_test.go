package main

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestDelayedMessageSurvivesARestartAndComesAtItsTime sends a message with
// DeliverAfter through the SDK to a real standalone, kills the standalone
// with SIGKILL before the message is due and starts it again: a Shared
// consumer receives the message after the restart, at its time and not
// before; an undelayed message sent after it, still before its time,
// arrives first.
func TestDelayedMessageSurvivesARestartAndComesAtItsTime(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "reminders", "s", client.ConsumerType(client.Shared), client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "reminders")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 8 * time.Second
	sent := time.Now()
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("later"), Properties: map[string]string{"k": "v"}, DeliverAfter: delay}); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	p.Close()
	s.kill()
	s.start()
	c = s.client()
	p, err = c.NewProducer(ctx, "reminders")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cons, err = c.Subscribe(ctx, "reminders", "s", client.ConsumerType(client.Shared))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("now")}); err != nil {
		t.Fatal(err)
	}
	// On a slow machine the restart may outlast the delay; then the two
	// may come in either order, and only the delay's lower bound is checked.
	// The undelayed one must come first only when sent well before the
	// delayed one was due.
	early := time.Since(sent) < delay-3*time.Second
	var m *client.Message
	for m == nil {
		got, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cons.Ack(got)
		if string(got.Payload) == "now" {
			early = false
			continue
		}
		if early {
			t.Fatalf("the delayed message came before the undelayed one sent before its time")
		}
		m = got
	}
	if string(m.Payload) != "later" || m.Properties["k"] != "v" || len(m.Properties) != 1 {
		t.Fatalf("got %q with properties %v", m.Payload, m.Properties)
	}
	if waited := time.Since(sent); waited < delay {
		t.Fatalf("the delayed message came %v after it was sent, before its %v delay", waited, delay)
	}
}

// TestProduceDeliverAfterDelaysTheMessageForASharedConsumer runs `strata
// produce --deliver-after` and `strata consume --type shared` against a
// real standalone: the message arrives, and not before its delay.
func TestProduceDeliverAfterDelaysTheMessageForASharedConsumer(t *testing.T) {
	s := newStandalone(t)
	s.start()
	if _, _, err := run(t, "", "produce", "--url", s.url(), "--topic", "cli-delay", "--deliver-after", "-1s"); err == nil {
		t.Fatal("a negative --deliver-after was accepted")
	}
	sent := time.Now()
	if _, stderr, err := run(t, "ping\n", "produce", "--url", s.url(), "--topic", "cli-delay", "--deliver-after", "2s"); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	out, stderr, err := run(t, "", "consume", "--url", s.url(), "--topic", "cli-delay", "--subscription", "s", "--type", "shared",
		"--position", "earliest", "--count", "1", "--timeout", "30s")
	if err != nil || !strings.Contains(out, "ping") {
		t.Fatalf("consume: %q %v (%s)", out, err, stderr)
	}
	if waited := time.Since(sent); waited < 2*time.Second {
		t.Fatalf("the message came %v after it was sent, before its 2s delay", waited)
	}
}
