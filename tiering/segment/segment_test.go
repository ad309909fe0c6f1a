package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// genEntries makes n entries of ledger l starting at first, with 1..maxMsgs
// messages each and varied keys, properties, event times and payloads.
func genEntries(seed uint64, l ids.LedgerID, first ids.EntryID, n, maxMsgs, maxPayload int) [][]Row {
	r := rand.New(rand.NewPCG(seed, 7))
	t := int64(1_700_000_000_000_000_000)
	out := make([][]Row, n)
	for e := range out {
		t += r.Int64N(1000)
		rows := make([]Row, 1+r.IntN(maxMsgs))
		for i := range rows {
			row := Row{
				Ledger: l, Entry: first + ids.EntryID(e), BatchIndex: int32(i), PublishTime: t,
				Producer: fmt.Sprintf("p-%d", e%3), SequenceID: uint64(e*100 + i),
				Payload: make([]byte, r.IntN(maxPayload+1)),
			}
			for j := range row.Payload {
				row.Payload[j] = byte(r.Uint32())
			}
			if r.IntN(2) == 0 {
				row.Key = fmt.Sprintf("k%d", r.IntN(10))
			}
			if r.IntN(3) == 0 {
				row.Properties = map[string]string{"b": "2", "a": fmt.Sprint(i), "": "empty"}
			}
			if r.IntN(2) == 0 {
				row.EventTime = t - r.Int64N(5000) - 1
			}
			rows[i] = row
		}
		out[e] = rows
	}
	return out
}

func build(t testing.TB, entries [][]Row, cfg Config) *Segment {
	t.Helper()
	w, err := NewWriter(entries[0][0].Ledger, entries[0][0].Entry, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range entries {
		if err := w.Add(rows); err != nil {
			t.Fatal(err)
		}
	}
	seg, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

func flatten(entries [][]Row) []Row {
	var out []Row
	for _, e := range entries {
		out = append(out, e...)
	}
	return out
}

func normalize(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		if len(r.Properties) == 0 {
			r.Properties = nil
		}
		if r.Payload == nil {
			r.Payload = []byte{}
		}
		out[i] = r
	}
	return out
}

func TestStockArrowFileReaderReadsEveryRowAndTheIndex(t *testing.T) {
	entries := genEntries(1, 42, 0, 300, 5, 300)
	seg := build(t, entries, Config{MaxBatchBytes: 16 << 10})
	fr, err := ipc.NewFileReader(bytes.NewReader(seg.Data))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	if fr.NumRecords() != len(seg.Index.Batches) || fr.NumRecords() < 5 {
		t.Fatalf("%d records in footer, %d in index", fr.NumRecords(), len(seg.Index.Batches))
	}
	var got []Row
	for i := 0; i < fr.NumRecords(); i++ {
		rec, err := fr.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := recordRows(rec)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rows...)
	}
	if want := normalize(flatten(entries)); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows differ after a stock reader round trip")
	}
	s, _ := fr.Schema().Metadata().GetValue("strata.index")
	var x Index
	if err := json.Unmarshal([]byte(s), &x); err != nil || !reflect.DeepEqual(&x, seg.Index) {
		t.Fatalf("footer index %v differs from returned index: %+v", err, x)
	}
	// The event_time column is null where the producer set none.
	rec, _ := fr.Record(0)
	evt := rec.Column(colEventTime).(*array.Timestamp)
	all := flatten(entries)
	nulls := 0
	for i := 0; i < evt.Len(); i++ {
		if evt.IsNull(i) != (all[i].EventTime == 0) {
			t.Fatalf("row %d: event_time null=%v, event time %d", i, evt.IsNull(i), all[i].EventTime)
		}
		if evt.IsNull(i) {
			nulls++
		}
	}
	if nulls == 0 || nulls == evt.Len() {
		t.Fatalf("test data should mix set and unset event times (%d nulls)", nulls)
	}
}

func TestEachBatchDecodesAloneFromItsIndexedByteRange(t *testing.T) {
	entries := genEntries(2, 7, 100, 500, 4, 500)
	seg := build(t, entries, Config{MaxBatchBytes: 32 << 10, MaxBatchRows: 200})
	all := normalize(flatten(entries))
	pos := 0
	for i, b := range seg.Index.Batches {
		rows, err := DecodeBatch(seg.Data[b.Offset:b.Offset+b.Length], b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !reflect.DeepEqual(rows, all[pos:pos+len(rows)]) {
			t.Fatalf("batch %d rows differ", i)
		}
		pos += len(rows)
	}
	if pos != len(all) {
		t.Fatalf("batches hold %d rows, want %d", pos, len(all))
	}
}

func TestBatchesHoldWholeEntriesWithinBounds(t *testing.T) {
	entries := genEntries(3, 1, 0, 400, 6, 2000)
	cfg := Config{MaxBatchBytes: 20 << 10, MaxBatchRows: 50}
	seg := build(t, entries, cfg)
	next := ids.EntryID(0)
	for i, b := range seg.Index.Batches {
		if b.FirstEntry != next {
			t.Fatalf("batch %d starts at entry %d, want %d", i, b.FirstEntry, next)
		}
		var n, bytes int
		for e := b.FirstEntry; e <= b.LastEntry; e++ {
			n += len(entries[e])
			bytes += entryBytes(entries[e])
		}
		single := b.FirstEntry == b.LastEntry
		if int64(n) != b.Rows || (!single && (n > cfg.MaxBatchRows || bytes > cfg.MaxBatchBytes)) {
			t.Fatalf("batch %d: %d rows %d bytes over bounds", i, n, bytes)
		}
		next = b.LastEntry + 1
	}
	if next != 400 || seg.Index.FirstEntry != 0 || seg.Index.LastEntry != 399 {
		t.Fatalf("index covers up to %d: %+v", next, seg.Index)
	}
}

func TestBatchPublishTimeRangeIsMinAndMaxOfRows(t *testing.T) {
	entries := genEntries(4, 1, 0, 100, 3, 10)
	entries[5][0].PublishTime = 1 // out of order: an earlier clock
	for i := range entries[5] {
		entries[5][i].PublishTime = 1
	}
	seg := build(t, entries, Config{MaxBatchRows: 30})
	for _, b := range seg.Index.Batches {
		lo, hi := int64(1<<62), int64(0)
		for e := b.FirstEntry; e <= b.LastEntry; e++ {
			for _, r := range entries[e] {
				lo, hi = min(lo, r.PublishTime), max(hi, r.PublishTime)
			}
		}
		if b.FirstPublishTime != lo || b.LastPublishTime != hi {
			t.Fatalf("batch %+v, want [%d,%d]", b, lo, hi)
		}
	}
}

func TestEveryFlippedByteOfABatchIsCorruption(t *testing.T) {
	seg := build(t, genEntries(5, 1, 0, 20, 3, 50), Config{})
	b := seg.Index.Batches[0]
	for off := b.Offset; off < b.Offset+b.Length; off++ {
		data := bytes.Clone(seg.Data[b.Offset : b.Offset+b.Length])
		data[off-b.Offset] ^= 0x40
		_, err := DecodeBatch(data, b)
		if !errors.Is(err, ErrCorruption) || errcode.CodeOf(err) != errcode.Corruption {
			t.Fatalf("flip at %d: %v", off, err)
		}
	}
	if _, err := DecodeBatch(seg.Data[b.Offset:b.Offset+b.Length-1], b); !errors.Is(err, ErrCorruption) {
		t.Fatalf("truncated batch: %v", err)
	}
}

func TestVerifyAcceptsTheSegmentAndRejectsAnyDamagedBatch(t *testing.T) {
	seg := build(t, genEntries(6, 9, 0, 200, 3, 100), Config{MaxBatchRows: 100})
	x, err := Verify(seg.Data)
	if err != nil || !reflect.DeepEqual(x, seg.Index) {
		t.Fatalf("verify: %v", err)
	}
	for _, b := range seg.Index.Batches {
		data := bytes.Clone(seg.Data)
		data[b.Offset+b.Length-1] ^= 1
		if _, err := Verify(data); !errors.Is(err, ErrCorruption) {
			t.Fatalf("damaged batch at %d: %v", b.Offset, err)
		}
	}
	if _, err := Verify(seg.Data[:len(seg.Data)-3]); !errors.Is(err, ErrCorruption) {
		t.Fatalf("truncated file: %v", err)
	}
}

type memObjects map[string][]byte

func (m memObjects) Get(_ context.Context, key string, off, n int64) ([]byte, error) {
	return m[key][off : off+n], nil
}

// countingObjects counts range reads.
type countingObjects struct {
	memObjects
	gets int
}

func (c *countingObjects) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.gets++
	return c.memObjects.Get(ctx, key, off, n)
}

func TestReadIndexFromFooterEqualsWriterIndexInTwoReads(t *testing.T) {
	seg := build(t, genEntries(7, 3, 10, 50, 2, 100), Config{MaxBatchRows: 10})
	objs := memObjects{"k": seg.Data}
	counted := &countingObjects{memObjects: objs}
	x, err := ReadIndex(context.Background(), counted, "k", int64(len(seg.Data)))
	if err != nil || !reflect.DeepEqual(x, seg.Index) {
		t.Fatalf("read index: %v %+v", err, x)
	}
	if counted.gets != 2 { // the trailer, then the footer
		t.Fatalf("ReadIndex made %d range reads, want 2", counted.gets)
	}
	b := x.Batches[2]
	rows, err := ReadBatch(context.Background(), objs, "k", b)
	if err != nil || rows[0].Entry != b.FirstEntry {
		t.Fatalf("read batch: %v", err)
	}
}

func TestAddRejectsRowsThatDoNotContinueTheSegment(t *testing.T) {
	w, err := NewWriter(5, 0, Config{})
	if err != nil {
		t.Fatal(err)
	}
	good := []Row{{Ledger: 5, Entry: 0, BatchIndex: 0}}
	for name, rows := range map[string][]Row{
		"empty":        nil,
		"other ledger": {{Ledger: 6, Entry: 0}},
		"skip entry":   {{Ledger: 5, Entry: 1}},
		"bad index":    {{Ledger: 5, Entry: 0, BatchIndex: 1}},
	} {
		if err := w.Add(rows); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := w.Add(good); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(good); !errors.Is(err, ErrInput) {
		t.Fatalf("repeated entry: %v", err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	w2, _ := NewWriter(5, 0, Config{})
	if _, err := w2.Finish(); !errors.Is(err, ErrInput) {
		t.Fatalf("empty segment: %v", err)
	}
}

func TestSegmentBytesAreDeterministic(t *testing.T) {
	entries := genEntries(8, 1, 0, 100, 3, 100)
	a := build(t, entries, Config{})
	b := build(t, entries, Config{})
	if !bytes.Equal(a.Data, b.Data) {
		t.Fatal("same rows gave different bytes")
	}
}

// FuzzDecodeBatch feeds arbitrary bytes with a matching checksum to the
// batch decoder: it must return rows or ErrCorruption, never panic.
func FuzzDecodeBatch(f *testing.F) {
	seg := build(f, genEntries(9, 1, 0, 5, 2, 20), Config{})
	b := seg.Index.Batches[0]
	f.Add(seg.Data[b.Offset : b.Offset+b.Length])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		idx := metadata.BatchIndex{Length: int64(len(data)), CRC32C: crc32.Checksum(data, castagnoli), Rows: 1}
		if len(data) >= 8 {
			idx.Rows = int64(binary.LittleEndian.Uint16(data[4:]))
		}
		if _, err := DecodeBatch(data, idx); err != nil && !errors.Is(err, ErrCorruption) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func TestForgedMetadataLengthIsRejectedWithoutAllocatingIt(t *testing.T) {
	seg := build(t, genEntries(9, 1, 0, 5, 2, 20), Config{})
	b := seg.Index.Batches[0]
	good := seg.Data[b.Offset : b.Offset+b.Length]
	for name, data := range map[string][]byte{
		"legacy framing, 2 GiB": []byte("\xff\xff\xff\x7f\x00\xff\xff\x7f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"length past the end":   append(append([]byte{}, good[:4]...), 0xff, 0xff, 0xff, 0x7f, 1, 2, 3),
		"negative length":       append(append([]byte{}, good[:4]...), 0, 0, 0, 0x80, 1, 2, 3),
	} {
		idx := metadata.BatchIndex{Length: int64(len(data)), CRC32C: crc32.Checksum(data, castagnoli), Rows: 1}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := DecodeBatch(data, idx)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrCorruption) {
			t.Fatalf("%s: err = %v, want ErrCorruption", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Fatalf("%s: decoding allocated %d bytes", name, n)
		}
	}
	if _, err := DecodeBatch(good, b); err != nil {
		t.Fatalf("a good batch no longer decodes: %v", err)
	}
}

// TestVerifyRejectsAnIndexWhoseBatchEndOverflows forges, in the object's
// own footer, a batch whose offset plus length wraps past the largest
// int64: Verify must call that corruption, not slice with it and panic.
func TestVerifyRejectsAnIndexWhoseBatchEndOverflows(t *testing.T) {
	seg := build(t, genEntries(11, 1, 0, 1, 2, 20), Config{})
	orig := seg.Index.encode()
	forged := *seg.Index
	forged.Batches = append([]metadata.BatchIndex(nil), seg.Index.Batches...)
	forged.Batches[0].Offset, forged.Batches[0].Length = 1<<62, 1<<62
	enc := forged.encode()
	if len(enc) != len(orig) {
		t.Fatalf("forged index is %d bytes, original %d", len(enc), len(orig))
	}
	data := bytes.ReplaceAll(seg.Data, []byte(orig), []byte(enc)) // the schema at the start and in the footer
	if bytes.Equal(data, seg.Data) {
		t.Fatal("index not found in the object")
	}
	if _, err := Verify(data); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Verify = %v, want ErrCorruption", err)
	}
}

// FuzzVerify feeds arbitrary objects to Verify, which reads the footer, the
// index in it and every batch: it must return an index or ErrCorruption,
// never panic or allocate what the bytes do not hold.
func FuzzVerify(f *testing.F) {
	f.Add(build(f, genEntries(12, 1, 0, 3, 2, 20), Config{}).Data)
	f.Add(build(f, genEntries(13, 1, 0, 1, 1, 0), Config{}).Data)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Verify(data); err != nil && !errors.Is(err, ErrCorruption) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// TestFooterDeclaringBillionsOfFieldsIsRefusedBeforeArrowReadsIt sets the
// length of the footer's field vector to 2^32-1: Arrow would size a slice
// from it and the process would run out of memory; openFile must call it
// corruption first.
func TestFooterDeclaringBillionsOfFieldsIsRefusedBeforeArrowReadsIt(t *testing.T) {
	seg := build(t, genEntries(14, 1, 0, 2, 2, 20), Config{})
	data := bytes.Clone(seg.Data)
	n := int(binary.LittleEndian.Uint32(data[len(data)-trailerBytes:]))
	footerStart := len(data) - trailerBytes - n
	fb := flatbuf{b: data[footerStart : len(data)-trailerBytes]}
	root, err := fb.root()
	if err != nil {
		t.Fatal(err)
	}
	schema, _, err := fb.table(root, footerSchema)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := fb.vector(schema, schemaFields, 4)
	if err != nil || fields.n != numCols {
		t.Fatalf("fields %+v, %v", fields, err)
	}
	binary.LittleEndian.PutUint32(data[footerStart+fields.start-4:], math.MaxUint32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Verify(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorruption) {
		t.Fatalf("Verify = %v, want ErrCorruption", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("refusing the footer allocated %d bytes", grew)
	}
}
