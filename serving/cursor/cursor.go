package cursor

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// DefaultMaxRanges bounds the encoded state (Pulsar's default for
// managedLedgerMaxUnackedRangesToPersist).
const DefaultMaxRanges = 10_000

// ErrCorrupt is returned by Decode for bytes that do not parse.
var ErrCorrupt = errcode.New(errcode.Corruption, "cursor: corrupt encoding")

// Successor returns the position that follows p in the managed ledger, and
// false when p is the last position known (nothing follows yet).
type Successor func(p ids.Position) (ids.Position, bool)

// Cursor is the acknowledgement state of one subscription. It is not safe for
// concurrent use.
type Cursor struct {
	markDelete ids.Position
	// acked holds fully acknowledged entries past markDelete, per ledger.
	acked map[ids.LedgerID][]span
	// partial holds entries with some but not all messages acknowledged.
	partial   map[ids.Position]*bits
	maxRanges int
}

// span is an inclusive range of entry ids.
type span struct{ first, last ids.EntryID }

type bits struct {
	size int
	set  []byte
	n    int // bits set
}

// New returns a cursor whose mark-delete position is markDelete.
func New(markDelete ids.Position) *Cursor {
	return &Cursor{
		markDelete: markDelete,
		acked:      map[ids.LedgerID][]span{},
		partial:    map[ids.Position]*bits{},
		maxRanges:  DefaultMaxRanges,
	}
}

// SetMaxRanges changes the bound on encoded ranges (n ≤ 0 keeps the default).
func (c *Cursor) SetMaxRanges(n int) {
	if n > 0 {
		c.maxRanges = n
	}
}

// MarkDelete returns the position at and before which everything is acked.
func (c *Cursor) MarkDelete() ids.Position { return c.markDelete }

// Reset moves the cursor to markDelete and forgets every acknowledgement (a
// seek).
func (c *Cursor) Reset(markDelete ids.Position) {
	c.markDelete = markDelete
	clear(c.acked)
	clear(c.partial)
}

// IsEntryAcked reports whether every message of the entry at p is acked.
func (c *Cursor) IsEntryAcked(p ids.Position) bool {
	return !c.markDelete.Less(p) || c.inSpans(p)
}

// inSpans reports whether p is in the acked spans of its ledger.
func (c *Cursor) inSpans(p ids.Position) bool {
	_, found := slices.BinarySearchFunc(c.acked[p.Ledger], p.Entry, func(s span, e ids.EntryID) int {
		switch {
		case s.last < e:
			return -1
		case s.first > e:
			return 1
		}
		return 0
	})
	return found
}

// IsAcked reports whether message id is acknowledged.
func (c *Cursor) IsAcked(id ids.MessageID) bool {
	p := id.Position()
	if c.IsEntryAcked(p) {
		return true
	}
	b := c.partial[p]
	return b != nil && b.has(int(id.Batch))
}

// AckEntry acknowledges every message of the entry at p.
func (c *Cursor) AckEntry(p ids.Position) {
	if !c.markDelete.Less(p) {
		return
	}
	delete(c.partial, p)
	c.acked[p.Ledger] = insert(c.acked[p.Ledger], p.Entry)
}

// AckMessage acknowledges one message of an entry holding batchSize messages,
// and reports whether the whole entry is now acknowledged.
func (c *Cursor) AckMessage(id ids.MessageID, batchSize int) bool {
	p := id.Position()
	if c.IsEntryAcked(p) {
		return true
	}
	if batchSize <= 1 {
		c.AckEntry(p)
		return true
	}
	b := c.partial[p]
	if b == nil {
		b = &bits{size: batchSize, set: make([]byte, (batchSize+7)/8)}
		c.partial[p] = b
	}
	b.add(int(id.Batch))
	if b.n >= b.size {
		c.AckEntry(p)
		return true
	}
	return false
}

// AckCumulative acknowledges every message up to and including id. Entries
// before id's entry are acknowledged whole; in id's entry, messages 0..Batch.
// The caller then calls Advance, which moves MarkDelete up to id's entry only
// over entries that are acknowledged.
func (c *Cursor) AckCumulative(id ids.MessageID, batchSize int, next Successor) {
	target := id.Position()
	for p, ok := next(c.markDelete); ok && p.Less(target); p, ok = next(p) {
		c.AckEntry(p)
	}
	for i := 0; i <= int(id.Batch); i++ {
		c.AckMessage(ids.MessageID{Ledger: id.Ledger, Entry: id.Entry, Batch: int32(i)}, batchSize)
	}
	c.Advance(next)
}

// Advance moves MarkDelete over the run of acknowledged entries that follows
// it, and reports whether it moved.
func (c *Cursor) Advance(next Successor) bool {
	moved := false
	for {
		p, ok := next(c.markDelete)
		if !ok || !c.inSpans(p) {
			break
		}
		c.markDelete = p
		moved = true
	}
	if moved {
		c.dropBefore(c.markDelete)
	}
	return moved
}

// dropBefore forgets acknowledgements at or before md.
func (c *Cursor) dropBefore(md ids.Position) {
	for l, spans := range c.acked {
		if l > md.Ledger {
			continue
		}
		if l < md.Ledger {
			delete(c.acked, l)
			continue
		}
		kept := spans[:0]
		for _, s := range spans {
			if s.last <= md.Entry {
				continue
			}
			if s.first <= md.Entry {
				s.first = md.Entry + 1
			}
			kept = append(kept, s)
		}
		if len(kept) == 0 {
			delete(c.acked, l)
		} else {
			c.acked[l] = kept
		}
	}
	for p := range c.partial {
		if !md.Less(p) {
			delete(c.partial, p)
		}
	}
}

// Ranges returns how many ranges and partial entries the state holds.
func (c *Cursor) Ranges() int {
	n := len(c.partial)
	for _, s := range c.acked {
		n += len(s)
	}
	return n
}

// insert adds e to sorted, merged spans.
func insert(spans []span, e ids.EntryID) []span {
	i, _ := slices.BinarySearchFunc(spans, e, func(s span, e ids.EntryID) int {
		if s.last < e {
			return -1
		}
		if s.first > e {
			return 1
		}
		return 0
	})
	if i < len(spans) && spans[i].first <= e && e <= spans[i].last {
		return spans
	}
	joinLeft := i > 0 && spans[i-1].last == e-1
	joinRight := i < len(spans) && spans[i].first == e+1
	switch {
	case joinLeft && joinRight:
		spans[i-1].last = spans[i].last
		return slices.Delete(spans, i, i+1)
	case joinLeft:
		spans[i-1].last = e
	case joinRight:
		spans[i].first = e
	default:
		spans = slices.Insert(spans, i, span{e, e})
	}
	return spans
}

func (b *bits) has(i int) bool {
	return i >= 0 && i < b.size && b.set[i/8]&(1<<(i%8)) != 0
}

func (b *bits) add(i int) {
	if i < 0 || i >= b.size || b.has(i) {
		return
	}
	b.set[i/8] |= 1 << (i % 8)
	b.n++
}

// Encode returns the acknowledgements past MarkDelete (MarkDelete itself is
// stored beside it), bounded by the cursor's max ranges, and whether some
// were left out.
func (c *Cursor) Encode() (data []byte, truncated bool) {
	budget := c.maxRanges
	ledgers := sortedKeys(c.acked)
	out := []byte{1}
	var body []byte
	n := 0
	for _, l := range ledgers {
		spans := c.acked[l]
		if budget <= 0 {
			truncated = true
			break
		}
		if len(spans) > budget {
			spans, truncated = spans[:budget], true
		}
		budget -= len(spans)
		body = binary.AppendUvarint(body, uint64(l))
		body = binary.AppendUvarint(body, uint64(len(spans)))
		for _, s := range spans {
			body = binary.AppendVarint(body, int64(s.first))
			body = binary.AppendUvarint(body, uint64(s.last-s.first))
		}
		n++
	}
	out = binary.AppendUvarint(out, uint64(n))
	out = append(out, body...)
	parts := make([]ids.Position, 0, len(c.partial))
	for p := range c.partial {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b ids.Position) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	if len(parts) > budget {
		parts, truncated = parts[:max(budget, 0)], true
	}
	out = binary.AppendUvarint(out, uint64(len(parts)))
	for _, p := range parts {
		b := c.partial[p]
		out = binary.AppendUvarint(out, uint64(p.Ledger))
		out = binary.AppendVarint(out, int64(p.Entry))
		out = binary.AppendUvarint(out, uint64(b.size))
		out = binary.AppendUvarint(out, uint64(len(b.set)))
		out = append(out, b.set...)
	}
	return out, truncated
}

// Decode rebuilds a cursor from its mark-delete position and Encode's bytes
// (nil or empty data means no acknowledgements past markDelete).
func Decode(markDelete ids.Position, data []byte) (*Cursor, error) {
	c := New(markDelete)
	if len(data) == 0 {
		return c, nil
	}
	if data[0] != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, data[0])
	}
	d := reader{buf: data[1:]}
	for i, nl := uint64(0), d.count(2); i < nl && d.err == nil; i++ {
		l := ids.LedgerID(d.uvarint())
		var spans []span
		for j, ns := uint64(0), d.count(2); j < ns && d.err == nil; j++ {
			first := ids.EntryID(d.varint())
			length := d.uvarint()
			s := span{first, first + ids.EntryID(length)}
			if length > 1<<40 || s.first < 0 || (len(spans) > 0 && s.first <= spans[len(spans)-1].last+1) {
				d.fail("ranges out of order")
			}
			spans = append(spans, s)
		}
		if d.err == nil && len(spans) > 0 {
			c.acked[l] = spans
		}
	}
	for i, np := uint64(0), d.count(4); i < np && d.err == nil; i++ {
		p := ids.Position{Ledger: ids.LedgerID(d.uvarint()), Entry: ids.EntryID(d.varint())}
		size := d.uvarint()
		set := d.bytes()
		if d.err == nil && (size == 0 || uint64(len(set)) != (size+7)/8) {
			d.fail("bitset size")
		}
		if d.err != nil {
			break
		}
		for k := 0; k < int(size); k++ {
			if set[k/8]&(1<<(k%8)) != 0 {
				c.AckMessage(ids.MessageID{Ledger: p.Ledger, Entry: p.Entry, Batch: int32(k)}, int(size))
			}
		}
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	c.dropBefore(markDelete)
	return c, nil
}

type reader struct {
	buf []byte
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, why)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a count whose items take at least minBytes each, so a hostile
// count cannot make the loops run long.
func (r *reader) count(minBytes int) uint64 {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.buf)/minBytes)+1 {
		r.fail("count out of range")
		return 0
	}
	return n
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.buf)) {
		r.fail("length out of range")
	}
	if r.err != nil {
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func sortedKeys(m map[ids.LedgerID][]span) []ids.LedgerID {
	keys := make([]ids.LedgerID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
