package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
)

func TestMetricsCountEverySendFailureAndReconnect(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 1); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := client.New(b.URL(), client.Metrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := c.NewProducer(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	b.FailNextSend(errcode.New(errcode.MessageTooLarge, "injected"))
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("x")}); err == nil {
		t.Fatal("the injected failure did not reach the sender")
	}
	// A broken stream: the producer reconnects and sends on.
	b.BreakStreams(errcode.New(errcode.Unavailable, "injected"))
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	if got["strata_client_producer_reconnects_total"] != 1 {
		t.Errorf("reconnects %v, want 1", got["strata_client_producer_reconnects_total"])
	}
	if got["strata_client_send_latency_seconds"] != n+1 {
		t.Errorf("send latency observations %v, want %d (one per acknowledged message)", got["strata_client_send_latency_seconds"], n+1)
	}
	if got["strata_client_batch_messages_sum"] != n+2 {
		t.Errorf("messages over all batches %v, want %d", got["strata_client_batch_messages_sum"], n+2)
	}
	if rt := got["strata_client_batch_round_trip_seconds"]; rt < 1 || rt > n+1 {
		t.Errorf("round trips observed %v, want one per acknowledged batch", rt)
	}
	if got["strata_client_send_errors_total"] != 1 {
		t.Errorf("send errors %v, want 1", got["strata_client_send_errors_total"])
	}
	if _, err := client.New(b.URL(), client.Metrics(reg)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("a second client on the same registry: %v, want an invalid-argument error", err)
	}
}

// gather returns each histogram's sample count (and sum as NAME_sum) and
// each counter's total over its labels.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				out[f.GetName()] += float64(h.GetSampleCount())
				out[f.GetName()+"_sum"] += h.GetSampleSum()
			}
			if c := m.GetCounter(); c != nil {
				out[f.GetName()] += c.GetValue()
			}
		}
	}
	return out
}
