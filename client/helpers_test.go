package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
)

const testTopic = "public/default/t"

func newClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, client.ReconnectBackoff(5*time.Millisecond, 50*time.Millisecond), client.OperationTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// setup starts one fake broker with topic testTopic (partitions partitions).
func setup(t *testing.T, partitions int) (*fakebroker.Cluster, *fakebroker.Broker, *client.Client) {
	t.Helper()
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, partitions); err != nil {
		t.Fatal(err)
	}
	return cl, b, newClient(t, b.URL())
}

// setupB is setup for benchmarks (a non-partitioned topic).
func setupB(tb testing.TB) (*fakebroker.Cluster, *fakebroker.Broker, *client.Client) {
	tb.Helper()
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(tb, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		tb.Fatal(err)
	}
	c, err := client.New(b.URL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return cl, b, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receipts collects SendAsync results in callback order.
type receipts struct {
	mu   sync.Mutex
	ids  []client.MessageID
	msgs []string
	errs []error
}

func (r *receipts) cb(id client.MessageID, m *client.ProducerMessage, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	r.msgs = append(r.msgs, string(m.Payload))
	r.errs = append(r.errs, err)
}

func (r *receipts) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func payload(i int) *client.ProducerMessage {
	return &client.ProducerMessage{Payload: fmt.Appendf(nil, "m%03d", i)}
}

func batchSizes(bs []fakebroker.Batch) []int {
	var out []int
	for _, b := range bs {
		out = append(out, len(b.Seqs))
	}
	return out
}
