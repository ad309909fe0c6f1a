package serving

import (
	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/ids"
)

// cachedEntry is one decoded entry with its position and encoded size.
type cachedEntry struct {
	pos   ids.Position
	batch *entry.Batch
	size  int
	// deliverAt caches entry.DeliverAt(batch) once deliverAtKnown (delay.go;
	// guarded by the topic's mu).
	deliverAt      int64
	deliverAtKnown bool
}

// entryCache keeps the most recent entries of a topic, bounded in bytes, so
// that tailing consumers never go to the bookies. Not safe for concurrent use:
// the topic's mutex guards it.
type entryCache struct {
	maxBytes int64
	bytes    int64
	byPos    map[ids.Position]*cachedEntry
	order    []ids.Position // insertion (= log) order; evicted from the front
}

func newEntryCache(maxBytes int64) *entryCache {
	return &entryCache{maxBytes: maxBytes, byPos: make(map[ids.Position]*cachedEntry)}
}

func (c *entryCache) get(p ids.Position) *cachedEntry { return c.byPos[p] }

// add caches e and evicts the oldest entries beyond the byte bound.
func (c *entryCache) add(e *cachedEntry) {
	if c.maxBytes == 0 {
		return
	}
	c.byPos[e.pos] = e
	c.order = append(c.order, e.pos)
	c.bytes += int64(e.size)
	for c.bytes > c.maxBytes && len(c.order) > 1 {
		old := c.byPos[c.order[0]]
		delete(c.byPos, c.order[0])
		c.order = c.order[1:]
		if old != nil {
			c.bytes -= int64(old.size)
		}
	}
	if len(c.order) > 0 && cap(c.order) > 4*len(c.order)+64 {
		c.order = append([]ids.Position(nil), c.order...)
	}
}
