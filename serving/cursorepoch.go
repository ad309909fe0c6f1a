package serving

import (
	"time"

	"github.com/strata-mq/strata/serving/servingpb"
)

// Cursor epochs. A client keeps the acks its application makes while a
// partition reconnects, and those sent just before a stream ended, and
// sends them on the next stream (the Go SDK's ackQueue); a node keeps
// acks of messages it has not read yet (earlyacks.go). An ack made before
// a seek or a reset and applied after it acknowledges a message the move
// is to deliver again: the replay silently skips it. Ending the streams
// of the subscription's consumers with CursorMoved (disconnectLocked)
// tells only the consumers that have one; a consumer that is reconnecting
// then, or whose topic moves or whose node restarts between the move and
// its next subscribe, hears nothing.
//
// So a subscription's cursor carries an epoch, as Pulsar's consumer_epoch:
// every move that such acks must not undo (a seek, an executed reset)
// stores the next one with the moved cursor before it is applied and
// answered (storeMovedCursor), so that the node that loads the topic next
// (a takeover, a restart) knows it; flushes store it too. A stream is told
// the epoch when it starts (Subscribed) and after its own seek (SeekDone);
// the client sends with each ack the epoch of the stream that delivered
// the message, and an ack whose epoch is set and is not the
// subscription's is dropped (counted in strata_acks_stale_epoch_total),
// whether it would apply at once or be kept as an early ack. An ack with
// epoch 0 (a client without epochs) is applied, as before.
//
// Epoch 0 means "unknown" on the wire, so a subscription's epoch is never
// 0. A new one starts at the clock's nanoseconds (newEpoch), not at a
// constant: one deleted and created again under its name while a
// consumer reconnects would otherwise be at the very epoch of that
// consumer's kept acks, and they would acknowledge its messages anew. A
// record stored before epochs (Epoch 0) loads as firstEpoch on every node
// alike. A TTL expiry or a
// backlog quota eviction moves the cursor forward over messages no one
// is to receive again: acks of them change nothing, and the epoch stays.
// A non-durable subscription (a Reader) keeps its epoch in memory only:
// it has no cursor to load.

// firstEpoch is the epoch of a cursor stored without one.
const firstEpoch uint64 = 1

// newEpoch is the epoch of a subscription created now. Epochs are only
// compared for equality, and a subscription is moved far fewer times than
// nanoseconds pass before it could be created again.
func newEpoch() uint64 { return max(uint64(time.Now().UnixNano()), firstEpoch) }

// loadedEpoch is the epoch of a subscription whose stored cursor records
// stored (0: written before epochs).
func loadedEpoch(stored uint64) uint64 { return max(stored, firstEpoch) }

// nextEpoch is the epoch after e, skipping 0 (which the wire reads as
// unknown) should e ever wrap.
func nextEpoch(e uint64) uint64 {
	if e+1 == 0 {
		return firstEpoch
	}
	return e + 1
}

// staleAckLocked reports whether a, from c, was made before the last move
// of c's subscription's cursor (its epoch is set and is not the
// subscription's), and counts its ids if so.
func (t *topic) staleAckLocked(c *consumer, a *servingpb.Ack) bool {
	e := a.GetCursorEpoch()
	if e == 0 || e == c.s.epoch {
		return false
	}
	t.n.m.staleAcks.Add(float64(len(a.GetIds())))
	return true
}
