package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// receiveLoop receives on cons until ctx ends, calling handle for each
// message, and reports each on the channel returned.
func receiveLoop(ctx context.Context, cons *client.Consumer, handle func(*client.Message)) chan *client.Message {
	got := make(chan *client.Message, 100)
	go func() {
		for {
			m, err := cons.Receive(ctx)
			if err != nil {
				return
			}
			handle(m)
			got <- m
		}
	}()
	return got
}

func next(ctx context.Context, t *testing.T, got chan *client.Message, what string) *client.Message {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
		return nil
	}
}

// oneMessage starts a standalone, subscribes with opts (from the earliest
// message), sends one message and receives it. The consumer closes with
// the test.
func oneMessage(t *testing.T, opts ...client.ConsumerOption) (context.Context, *client.Consumer, *client.Message) {
	t.Helper()
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "one", "s", append([]client.ConsumerOption{client.ConsumerInitialPosition(client.Earliest)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })
	p, err := c.NewProducer(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cons, m
}

// TestDeadLetterPolicyMovesAPoisonMessageAside: a message the application
// nacks every time is handed out MaxDeliveries times, then published to the
// subscription's dead-letter topic, with its key, payload, properties and
// origin, and acknowledged, so that the subscription's backlog drains; the
// messages around it are delivered as usual.
func TestDeadLetterPolicyMovesAPoisonMessageAside(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "orders", "billing", client.ConsumerType(client.Shared), client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{MaxDeliveries: 3}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.NewProducer(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	poisonID, err := p.Send(ctx, &client.ProducerMessage{Key: "k", Payload: []byte("poison"), Properties: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("good")}); err != nil {
		t.Fatal(err)
	}
	got := receiveLoop(ctx, cons, func(m *client.Message) {
		if string(m.Payload) == "poison" {
			cons.Nack(m)
		} else {
			cons.Ack(m)
		}
	})
	var poison []uint32
	for good := false; !good || len(poison) < 3; {
		m := next(ctx, t, got, "three deliveries of the poison message and the good one")
		if string(m.Payload) == "good" {
			good = true
		} else {
			poison = append(poison, m.RedeliveryCount)
		}
	}
	dlq, err := c.Subscribe(ctx, "orders-billing-DLQ", "ops", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	d, err := dlq.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Payload) != "poison" || d.Key != "k" || d.Properties["a"] != "b" ||
		d.Properties[client.PropertyRealTopic] != "public/default/orders" || d.Properties[client.PropertyOriginMessageID] != poisonID.String() {
		t.Fatalf("dead letter: key %q payload %q properties %v", d.Key, d.Payload, d.Properties)
	}
	waitFor(t, 20*time.Second, "the subscription's backlog to drain", func() bool {
		st, err := c.Admin().TopicStats(ctx, "orders")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
	if len(poison) != 3 || poison[0] != 0 || poison[1] != 1 || poison[2] != 2 {
		t.Fatalf("the poison message was handed out with redelivery counts %v, want [0 1 2]", poison)
	}
}

// TestAckTimeoutRedeliversThenDeadLettersAHungConsumersMessage: a message
// the application takes and never acknowledges comes back after the ack
// timeout, and once it has been handed out MaxDeliveries times it goes to
// the dead-letter topic, so a consumer that hangs on a message cannot hold
// the subscription for ever.
func TestAckTimeoutRedeliversThenDeadLettersAHungConsumersMessage(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "jobs", "workers", client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerAckTimeout(time.Second),
		client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{MaxDeliveries: 2, Topic: "jobs-dead"}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.NewProducer(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("stuck")}); err != nil {
		t.Fatal(err)
	}
	got := receiveLoop(ctx, cons, func(*client.Message) {}) // never acknowledges
	for want := uint32(0); want < 2; want++ {
		if m := next(ctx, t, got, "a delivery"); m.RedeliveryCount != want {
			t.Fatalf("delivery with redelivery count %d, want %d", m.RedeliveryCount, want)
		}
	}
	dlq, err := c.Subscribe(ctx, "jobs-dead", "ops", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	if d, err := dlq.Receive(ctx); err != nil || string(d.Payload) != "stuck" {
		t.Fatalf("dead letter: %v %v", d, err)
	}
	waitFor(t, 20*time.Second, "the subscription's backlog to drain", func() bool {
		st, err := c.Admin().TopicStats(ctx, "jobs")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
}

// TestNackRedeliveryDelayHoldsANackedMessageBack: with a nack redelivery
// delay, a nacked message does not come back before the delay has passed
// (it may come later on a slow machine; it must not come sooner).
func TestNackRedeliveryDelayHoldsANackedMessageBack(t *testing.T) {
	const delay = 1500 * time.Millisecond
	ctx, cons, m := oneMessage(t, client.ConsumerNackRedeliveryDelay(delay))
	nacked := time.Now()
	if err := cons.Nack(m); err != nil {
		t.Fatal(err)
	}
	again, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(nacked); waited < delay || again.RedeliveryCount != 1 {
		t.Fatalf("redelivered after %v with count %d, want no sooner than %v, count 1", waited, again.RedeliveryCount, delay)
	}
}

// TestRedeliveryOptionsRejectBadValues: impossible settings are refused
// with ErrInvalidArgument before anything is subscribed.
func TestRedeliveryOptionsRejectBadValues(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	for name, opt := range map[string]client.ConsumerOption{
		"no deliveries":      client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{}),
		"bad topic":          client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{MaxDeliveries: 1, Topic: "a/b/c/d"}),
		"short ack timeout":  client.ConsumerAckTimeout(500 * time.Millisecond),
		"negative nack wait": client.ConsumerNackRedeliveryDelay(-time.Second),
		"backoff from zero":  client.ConsumerNackBackoff(0, time.Second),
		"backoff max < min":  client.ConsumerNackBackoff(time.Second, time.Millisecond),
	} {
		if _, err := c.Subscribe(ctx, "opts", "s", opt); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	// A subscription name no cursor can hold is refused before anything
	// else, the default dead-letter topic it would name included.
	if _, err := c.Subscribe(ctx, "opts", "a/b", client.ConsumerDeadLetterPolicy(client.DeadLetterPolicy{MaxDeliveries: 1})); !errors.Is(err, client.ErrInvalidSubscription) {
		t.Errorf("default topic from subscription a/b: got %v, want ErrInvalidSubscription", err)
	}
	if st, err := c.Admin().TopicStats(ctx, "opts"); err == nil && len(st.Subscriptions) != 0 {
		t.Errorf("a refused consumer left subscriptions %+v", st.Subscriptions)
	}
}

// TestNackBackoffDoublesTheDelayWithEachRedelivery: with a nack backoff, a
// message nacked again waits twice as long as the time before (lower
// bounds only: a slow machine may add, never subtract).
func TestNackBackoffDoublesTheDelayWithEachRedelivery(t *testing.T) {
	const first = 300 * time.Millisecond
	ctx, cons, m := oneMessage(t, client.ConsumerNackBackoff(first, 10*time.Second))
	var err error
	for round, want := range []time.Duration{first, 2 * first, 4 * first} {
		nacked := time.Now()
		if err := cons.Nack(m); err != nil {
			t.Fatal(err)
		}
		if m, err = cons.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(nacked); waited < want || m.RedeliveryCount != uint32(round+1) {
			t.Fatalf("nack %d: redelivered after %v with count %d, want no sooner than %v, count %d", round+1, waited, m.RedeliveryCount, want, round+1)
		}
	}
}

// TestReconsumeLaterRetriesThroughTheRetryTopicThenDeadLetters: a message
// handed back with ReconsumeLater comes back no sooner than its delay,
// through the retry-letter topic, even to a consumer opened after the first
// one closed; each retry counts in RECONSUMETIMES and keeps where the
// message first came from; past MaxReconsumes it goes to the dead-letter
// topic; and every copy acknowledged leaves no backlog behind.
func TestReconsumeLaterRetriesThroughTheRetryTopicThenDeadLetters(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	opts := []client.ConsumerOption{client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerRetryLetter(client.RetryLetterPolicy{MaxReconsumes: 2})}
	cons, err := c.Subscribe(ctx, "jobs", "work", opts...)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := c.Subscribe(ctx, "jobs-work-DLQ", "inspect", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if err := dead.ReconsumeLater(ctx, &client.Message{}, time.Second); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("ReconsumeLater without a retry-letter policy: %v", err)
	}
	p, err := c.NewProducer(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &client.ProducerMessage{Key: "k", Payload: []byte("job"), Properties: map[string]string{"p": "v"}}); err != nil {
		t.Fatal(err)
	}
	first, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const delay = 300 * time.Millisecond
	handedBack := time.Now()
	if err := cons.ReconsumeLater(ctx, first, delay); err != nil {
		t.Fatal(err)
	}
	// The delay is the broker's to keep: a consumer opened after this one
	// closed gets the retry.
	cons.Close()
	cons, err = c.Subscribe(ctx, "jobs", "work", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	check := func(m *client.Message, times string) {
		t.Helper()
		want := map[string]string{"p": "v", client.PropertyReconsumeTimes: times,
			client.PropertyRealTopic: "public/default/jobs", client.PropertyOriginMessageID: first.ID.String()}
		for k, v := range want {
			if m.Properties[k] != v {
				t.Fatalf("retry %s: property %s = %q, want %q (all: %v)", times, k, m.Properties[k], v, m.Properties)
			}
		}
		if m.Key != "k" || string(m.Payload) != "job" {
			t.Fatalf("retry %s: key %q payload %q", times, m.Key, m.Payload)
		}
	}
	again, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(handedBack); waited < delay {
		t.Fatalf("the retry came back after %v, before its delay of %v", waited, delay)
	}
	check(again, "1")
	if again.Properties[client.PropertyDelayTime] != "300" || again.Topic != "public/default/jobs-work-RETRY" {
		t.Fatalf("first retry: delay %q, topic %q", again.Properties[client.PropertyDelayTime], again.Topic)
	}
	if err := cons.ReconsumeLater(ctx, again, 0); err != nil {
		t.Fatal(err)
	}
	last, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(last, "2")
	if err := cons.ReconsumeLater(ctx, last, 0); err != nil { // the third: past MaxReconsumes
		t.Fatal(err)
	}
	letter, err := dead.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(letter, "3")
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := cons.Receive(short); err == nil {
		t.Fatalf("a dead-lettered message came back: %v", m.Properties)
	}
	a := c.Admin()
	for _, topicName := range []string{"jobs", "jobs-work-RETRY"} {
		waitFor(t, 30*time.Second, "no backlog on "+topicName, func() bool {
			st, err := a.TopicStats(ctx, topicName)
			if err != nil || len(st.Subscriptions) == 0 {
				return false
			}
			for _, sub := range st.Subscriptions {
				if sub.Name == "work" && sub.Backlog != 0 {
					return false
				}
			}
			return true
		})
	}
}

// TestRetryTopicMessagesAreNackedSoughtAndAckedOnTheirOwnTopic: with a
// retry-letter topic of the user's naming, a message that came back
// through it is redelivered from it when nacked, delivered again when the
// consumer seeks to it, and acknowledged there, leaving no backlog on
// either topic; the default retry topic is never made.
func TestRetryTopicMessagesAreNackedSoughtAndAckedOnTheirOwnTopic(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	cons, err := c.Subscribe(ctx, "orders", "w", client.ConsumerInitialPosition(client.Earliest),
		client.ConsumerNackRedeliveryDelay(10*time.Millisecond),
		client.ConsumerRetryLetter(client.RetryLetterPolicy{Topic: "orders-retries"}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.NewProducer(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("o1")}); err != nil {
		t.Fatal(err)
	}
	first, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.ReconsumeLater(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	receiveRetry := func(what string) *client.Message {
		t.Helper()
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if m.Topic != "public/default/orders-retries" || string(m.Payload) != "o1" || m.Properties[client.PropertyReconsumeTimes] != "1" {
			t.Fatalf("%s: topic %q payload %q properties %v", what, m.Topic, m.Payload, m.Properties)
		}
		return m
	}
	retried := receiveRetry("the retry")
	if err := cons.Nack(retried); err != nil {
		t.Fatal(err)
	}
	if again := receiveRetry("after the nack"); again.ID != retried.ID || again.RedeliveryCount == 0 {
		t.Fatalf("after the nack: id %v count %d, want %v redelivered", again.ID, again.RedeliveryCount, retried.ID)
	}
	if err := cons.Seek(ctx, retried.ID); err != nil {
		t.Fatal(err)
	}
	sought := receiveRetry("after the seek")
	if sought.ID != retried.ID {
		t.Fatalf("after the seek: id %v, want %v", sought.ID, retried.ID)
	}
	if err := cons.Ack(sought); err != nil {
		t.Fatal(err)
	}
	a := c.Admin()
	for _, topicName := range []string{"orders", "orders-retries"} {
		waitFor(t, 30*time.Second, "no backlog on "+topicName, func() bool {
			st, err := a.TopicStats(ctx, topicName)
			if err != nil {
				return false
			}
			for _, sub := range st.Subscriptions {
				if sub.Name == "w" {
					return sub.Backlog == 0
				}
			}
			return false
		})
	}
	topics, err := a.ListTopics(ctx, "public/default")
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range topics {
		if strings.HasSuffix(ti.Topic, "-RETRY") {
			t.Fatalf("the default retry topic was made: %s", ti.Topic)
		}
	}
}
