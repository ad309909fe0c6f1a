package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/serving/servingpb"
)

// Publish rates (Pulsar's publish rate, Kafka's producer quotas): a topic
// (each partition) takes at most its policy's PublishRateMsgs messages and
// PublishRateBytes bytes a second from its producers. Each batch read is
// charged to the topic's pacer (dispatchrate.go) before it is published,
// and the stream waits until the pacer's clock has caught up, so gRPC's
// flow control holds the producers back: their sends wait rather than
// fail, and a second's worth may go through at once after a lull. While
// it waits, the node tells the producer so (Throttled) at least every
// second, so that the SDK does not take the wait for a frozen node; and it
// looks at the policy again, so a rate raised or lifted applies at once.

// maxThrottleSlice bounds one sleep of a throttled stream.
const maxThrottleSlice = time.Second

// pacePublish charges send, the stream's batch number batch, to the
// topic's publish rate and waits as long as that asks; false when ctx ended
// meanwhile. Runs on a producer's receive goroutine, before the batch is
// published.
func (t *topic) pacePublish(ctx context.Context, p *producer, send *servingpb.SendBatch, batch uint64) bool {
	pol := t.pol()
	msgRate, byteRate := pol.PublishRateMsgs, pol.PublishRateBytes
	if msgRate <= 0 && byteRate <= 0 {
		return true
	}
	msgs, bytes := batchCost(send)
	t.publishPace.Lock()
	if t.publishPace.msgRate != msgRate || t.publishPace.byteRate != byteRate {
		t.publishPace.p, t.publishPace.msgRate, t.publishPace.byteRate = pacer{}, msgRate, byteRate
	}
	wait := t.publishPace.p.charge(time.Now(), msgs, bytes, msgRate, byteRate)
	t.publishPace.Unlock()
	if wait <= 0 {
		return true
	}
	t.n.m.publishThrottled.WithLabelValues(t.name).Add(wait.Seconds())
	tm := time.NewTimer(0)
	defer tm.Stop()
	<-tm.C
	for until := time.Now().Add(wait); ; {
		left := time.Until(until)
		if left <= 0 {
			return true
		}
		if now := t.pol(); now.PublishRateMsgs != msgRate || now.PublishRateBytes != byteRate {
			return true // the next batch is charged at the new rate
		}
		p.notify(&servingpb.ProduceResponse{Kind: &servingpb.ProduceResponse_Throttled{
			Throttled: &servingpb.Throttled{WaitMs: left.Milliseconds(), Batch: batch}}})
		tm.Reset(min(left, maxThrottleSlice))
		select {
		case <-tm.C:
		case <-ctx.Done():
			return false
		}
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
