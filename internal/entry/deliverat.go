package entry

import "strconv"

// DeliverAtProperty is the message property holding a delayed message's
// delivery time, unix nanoseconds in decimal. The SDK sets it
// (ProducerMessage.DeliverAt) and batches such a message only with others
// of the same time, so that a whole entry is due at once; shared and
// key_shared subscriptions hold the entry back until then. Serving nodes
// strip it from what they deliver.
const DeliverAtProperty = "__strata_deliver_at"

// DeliverAt answers when b may be delivered, in unix nanoseconds: the
// latest delivery time of its messages, 0 when none has one (or it does not
// parse: a message is never held back for a malformed time).
func DeliverAt(b *Batch) int64 {
	var at int64
	for i := range b.Messages {
		if v, ok := b.Messages[i].Properties[DeliverAtProperty]; ok {
			if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > at {
				at = t
			}
		}
	}
	return at
}
