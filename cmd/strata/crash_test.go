package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestStandaloneSIGKILLMidProduceKeepsEveryAckedMessageOnce kills a
// standalone broker with SIGKILL while a producer streams, restarts it on the
// same data directory, and checks that every acknowledged message is
// consumed, byte-identical, exactly once: the producer's resends after the
// crash carry their sequence ids and are deduplicated.
func TestStandaloneSIGKILLMidProduceKeepsEveryAckedMessageOnce(t *testing.T) {
	for _, killAfter := range []int{300, 2000} {
		t.Run(fmt.Sprintf("kill-after-%d-acks", killAfter), func(t *testing.T) {
			crashMidProduce(t, killAfter)
		})
	}
}

func crashMidProduce(t *testing.T, killAfter int) {
	const total = 4000
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 3*time.Minute)

	c := s.client(client.OperationTimeout(20*time.Second), client.ReconnectBackoff(20*time.Millisecond, 500*time.Millisecond))
	p, err := c.NewProducer(ctx, "crash", client.ProducerLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	var sendErrs []error
	killed := make(chan struct{})
	var killOnce sync.Once
	for i := range total {
		payload := fmt.Sprintf("msg-%06d", i)
		p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte(payload)}, func(_ client.MessageID, _ *client.ProducerMessage, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				sendErrs = append(sendErrs, err)
				return
			}
			acked[payload] = true
			if len(acked) == killAfter {
				killOnce.Do(func() { close(killed) })
			}
		})
		if i == total/2 {
			// Let the broker die while the second half is still being sent.
			select {
			case <-killed:
			case <-ctx.Done():
				t.Fatal("no acks before the deadline")
			}
			s.kill()
			s.start() // the sends in flight at the kill are resent after this

		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush after restart: %v", err)
	}
	p.Close()
	mu.Lock()
	nAcked, errs := len(acked), sendErrs
	mu.Unlock()
	if len(errs) > 0 {
		t.Logf("%d sends failed (they are not counted as acknowledged): first %v", len(errs), errs[0])
	}
	if nAcked == 0 {
		t.Fatal("nothing acknowledged")
	}

	cons, err := c.Subscribe(ctx, "crash", "verify", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	for len(seen) < nAcked {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		m, err := cons.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("received %d distinct of %d acknowledged: %v", len(seen), nAcked, err)
		}
		seen[string(m.Payload)]++
		cons.Ack(m)
	}
	for payload := range acked {
		if seen[payload] == 0 {
			t.Errorf("acknowledged message %s lost", payload)
		}
	}
	for payload, n := range seen {
		if n > 1 {
			t.Errorf("message %s consumed %d times", payload, n)
		}
	}
}
