package journal

// Damage is a region of durable data that failed to decode: a Corruption.
type Damage struct {
	Off, Len int
	// Claimed holds the header fields of the damaged record when they are
	// plausible (kind, ledger and a length that reaches exactly the next valid
	// record), so the index can answer reads of that entry with a Corruption
	// error instead of "not found". Claimed.Payload is nil.
	Claimed *Record
}

// ScanResult is what Scan found in one segment.
type ScanResult struct {
	// End is the offset just past the last valid record: the segment's
	// append point, and its truncation point when Torn is set.
	End int
	// Torn reports a torn tail at End: non-zero bytes, never acknowledged,
	// in the rest of the page that holds End, or a valid record of this
	// segment past it. What lies past that page is not looked at (nor that
	// page when End is on a page boundary): in a recycled segment it is
	// the file's earlier use. It only decides whether the caller warns;
	// the newest segment is truncated at End either way.
	Torn bool
	// Damaged lists damaged regions in the middle of durable data.
	Damaged []Damage
}

// Scan decodes the records of data (the whole of the segment whose seed is
// seed) from offset start and calls fn for each valid one, in order.
// newest says whether this is the segment that was being written (the only
// one that may have a torn tail). See the package doc for the rules.
func Scan(data []byte, start int, newest bool, seed Seed, fn func(off, n int, r Record)) ScanResult {
	var res ScanResult
	off := start
	for off < len(data) {
		r, n, err := Decode(data[off:], seed)
		if err == nil {
			fn(off, n, r)
			off += n
			continue
		}
		next := findValid(data, off+1, seed)
		if next < 0 || (newest && !provesDurable(data, next, off, seed)) {
			res.End = off
			pageEnd := min(len(data), (off+pageSize-1)&^(pageSize-1))
			res.Torn = next >= 0 || (off%pageSize != 0 && (err != ErrEnd || !allZero(data[off:pageEnd])))
			return res
		}
		res.Damaged = append(res.Damaged, damageAt(data, off, next))
		off = next
	}
	res.End = off
	return res
}

// provesDurable reports whether a valid record from offset from on carries a
// sync mark past p, which proves p was fsync'd before that record's group.
func provesDurable(data []byte, from, p int, seed Seed) bool {
	for off := from; off >= 0 && off < len(data); {
		r, n, err := Decode(data[off:], seed)
		if err != nil {
			off = findValid(data, off+1, seed)
			continue
		}
		if int(r.SyncMark) > p {
			return true
		}
		off += n
	}
	return false
}

// findValid returns the offset of the first valid record at or after from,
// or -1.
func findValid(data []byte, from int, seed Seed) int {
	for i := from; i+HeaderSize <= len(data); i++ {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 0 && data[i+3] == 0 {
			continue
		}
		if _, _, err := decodeHeader(data[i:]); err != nil {
			continue
		}
		if _, _, err := Decode(data[i:], seed); err == nil {
			return i
		}
	}
	return -1
}

func damageAt(data []byte, off, next int) Damage {
	d := Damage{Off: off, Len: next - off}
	if r, n, err := decodeHeader(data[off:]); err == nil && n == next-off && r.Kind == KindEntry {
		d.Claimed = &r
	}
	return d
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
