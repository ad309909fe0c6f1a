package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/serving/servingpb"
)

// Publish rates (Pulsar's publish rate, Kafka's producer quotas): a topic
// (each partition) takes at most its policy's PublishRateMsgs messages and
// PublishRateBytes bytes a second from its producers. Every batch read is
// charged to the topic's pacer (dispatchrate.go), and the producer's
// stream is not read again until the pacer's clock has caught up, so
// gRPC's flow control holds the producers back: their sends wait rather
// than fail, and a second's worth may go through at once after a lull.

// pacePublish charges send to the topic's publish rate and waits as long
// as that asks; false when ctx ended meanwhile. Runs on a producer's
// receive goroutine.
func (t *topic) pacePublish(ctx context.Context, send *servingpb.SendBatch) bool {
	pol := t.pol()
	if pol.PublishRateMsgs <= 0 && pol.PublishRateBytes <= 0 {
		return true
	}
	msgs, bytes := batchCost(send)
	t.publishPace.Lock()
	wait := t.publishPace.p.charge(time.Now(), msgs, bytes, pol.PublishRateMsgs, pol.PublishRateBytes)
	t.publishPace.Unlock()
	if wait <= 0 {
		return true
	}
	t.n.m.publishThrottled.WithLabelValues(t.name).Add(wait.Seconds())
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// batchCost answers a batch's messages and bytes as the rate counts them.
func batchCost(send *servingpb.SendBatch) (msgs, bytes int64) {
	if n := send.GetCount(); n > 0 {
		return int64(n), int64(len(send.GetEncoded()))
	}
	for _, m := range send.GetMessages() {
		bytes += int64(len(m.GetPayload()))
	}
	return int64(len(send.GetMessages())), bytes
}
