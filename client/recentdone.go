package client

import "math"

// recentDoneCap bounds the messages a consumer remembers it acknowledged
// or nacked, to drop stale copies of them (redelivery.heldLocked). A copy
// comes in the receive queue behind what was queued when it arrived, so
// the bound is a few queues' worth: past it, a late copy is handed out
// again (at-least-once), never lost.
const recentDoneCap = 8192

// ackedAll marks an acknowledged message: every copy of it is stale.
const ackedAll = math.MaxUint32

// recentDone maps the latest messages acknowledged or nacked to the
// highest redelivery count a stale copy of them may carry, the oldest
// forgotten first.
type recentDone struct {
	set  map[MessageID]uint32
	ring []MessageID // insertion order; next is the slot to overwrite
	next int
}

func newRecentDone(n int) recentDone {
	return recentDone{set: make(map[MessageID]uint32, n), ring: make([]MessageID, 0, n)}
}

// stale reports whether a copy of id with redelivery count is stale.
func (a *recentDone) stale(id MessageID, count uint32) bool {
	v, ok := a.set[id]
	return ok && count <= v
}

// add records that copies of id up to count are stale.
func (a *recentDone) add(id MessageID, count uint32) {
	if v, ok := a.set[id]; ok {
		a.set[id] = max(v, count)
		return
	}
	if len(a.ring) < cap(a.ring) {
		a.ring = append(a.ring, id)
	} else {
		delete(a.set, a.ring[a.next])
		a.ring[a.next] = id
		a.next = (a.next + 1) % len(a.ring)
	}
	a.set[id] = count
}

// forget drops the ids of partition.
func (a *recentDone) forget(partition int32) {
	kept := make([]MessageID, 0, cap(a.ring))
	for i := range a.ring {
		id := a.ring[(a.next+i)%len(a.ring)]
		if id.Partition == partition {
			delete(a.set, id)
		} else {
			kept = append(kept, id)
		}
	}
	a.ring, a.next = kept, 0
}
