package segment

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Index is the self-description of one segment object, kept as JSON under
// the schema metadata key "strata.index" and returned by the writer so the
// caller can put it in the ledger's metadata.
type Index struct {
	Version    int          `json:"version"`
	Ledger     ids.LedgerID `json:"ledger"`
	FirstEntry ids.EntryID  `json:"first_entry"`
	LastEntry  ids.EntryID  `json:"last_entry"`
	Rows       int64        `json:"rows"`
	// Batches in file order, which is entry order.
	Batches []metadata.BatchIndex `json:"batches"`
}

// numWidth is the fixed width of every number in the encoded index: an
// int64 or uint64 in decimal fits in 20 characters.
const numWidth = 20

// encode writes the index as JSON whose every number is left-justified and
// space-padded to numWidth characters, so the encoding's length depends
// only on the number of batches. That lets the writer put a placeholder of
// the same length in the file first and patch the real index in after the
// batch offsets are known.
func (x *Index) encode() string {
	var b strings.Builder
	num := func(name string, v any) { fmt.Fprintf(&b, "%q:%-*d", name, numWidth, v) }
	b.WriteString("{")
	num("version", x.Version)
	b.WriteString(",")
	num("ledger", uint64(x.Ledger))
	b.WriteString(",")
	num("first_entry", int64(x.FirstEntry))
	b.WriteString(",")
	num("last_entry", int64(x.LastEntry))
	b.WriteString(",")
	num("rows", x.Rows)
	b.WriteString(`,"batches":[`)
	for i, bi := range x.Batches {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("{")
		num("first_entry", int64(bi.FirstEntry))
		b.WriteString(",")
		num("last_entry", int64(bi.LastEntry))
		b.WriteString(",")
		num("first_publish_time", bi.FirstPublishTime)
		b.WriteString(",")
		num("last_publish_time", bi.LastPublishTime)
		b.WriteString(",")
		num("offset", bi.Offset)
		b.WriteString(",")
		num("length", bi.Length)
		b.WriteString(",")
		num("rows", bi.Rows)
		b.WriteString(",")
		num("crc32c", bi.CRC32C)
		b.WriteString("}")
	}
	b.WriteString("]}")
	return b.String()
}

func decodeIndex(s string) (*Index, error) {
	var x Index
	if err := json.Unmarshal([]byte(s), &x); err != nil {
		return nil, corrupt("index: %v", err)
	}
	if err := x.check(); err != nil {
		return nil, err
	}
	return &x, nil
}

// check validates the index's internal consistency.
func (x *Index) check() error {
	if x.Version != 1 {
		return corrupt("index version %d", x.Version)
	}
	if len(x.Batches) == 0 || x.FirstEntry < 0 || x.LastEntry < x.FirstEntry {
		return corrupt("index: %d batches, entries [%d,%d]", len(x.Batches), x.FirstEntry, x.LastEntry)
	}
	next, rows := x.FirstEntry, int64(0)
	var end int64
	for i, b := range x.Batches {
		if b.FirstEntry != next || b.LastEntry < b.FirstEntry || b.Rows <= 0 ||
			b.Offset < end || b.Length <= 0 || b.Length > math.MaxInt64-b.Offset ||
			b.FirstPublishTime > b.LastPublishTime {
			return corrupt("index: batch %d inconsistent: %+v", i, b)
		}
		next, end, rows = b.LastEntry+1, b.Offset+b.Length, rows+b.Rows
	}
	if next != x.LastEntry+1 || rows != x.Rows {
		return corrupt("index: batches cover [%d,%d) with %d rows, header says [%d,%d] with %d",
			x.FirstEntry, next, rows, x.FirstEntry, x.LastEntry, x.Rows)
	}
	return nil
}
