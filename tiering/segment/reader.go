package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// ErrCorruption is returned for segment bytes that fail their checksum, do
// not decode, or disagree with their index.
var ErrCorruption = errcode.New(errcode.Corruption, "segment: corrupt")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruption}, args...)...)
}

// RangeReader reads a byte range of an object; tiering.Store is one.
type RangeReader interface {
	Get(ctx context.Context, key string, offset, length int64) ([]byte, error)
}

// ReadBatch fetches one record batch of the object key with a single range
// read, verifies its CRC32C and decodes its rows.
func ReadBatch(ctx context.Context, r RangeReader, key string, b metadata.BatchIndex) ([]Row, error) {
	data, err := r.Get(ctx, key, b.Offset, b.Length)
	if err != nil {
		return nil, err
	}
	rows, err := DecodeBatch(data, b)
	if err != nil {
		return nil, fmt.Errorf("%s batch at %d: %w", key, b.Offset, err)
	}
	return rows, nil
}

// DecodeBatch verifies data (the bytes of one record batch message, as the
// index locates them) against b's CRC32C, decodes it and checks that its
// rows match b's entry range and row count.
func DecodeBatch(data []byte, b metadata.BatchIndex) ([]Row, error) {
	if int64(len(data)) != b.Length || crc32.Checksum(data, castagnoli) != b.CRC32C {
		return nil, corrupt("batch checksum mismatch")
	}
	rec, err := decodeMessage(data)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	rows, err := recordRows(rec)
	if err != nil {
		return nil, err
	}
	if int64(len(rows)) != b.Rows || rows[0].Entry != b.FirstEntry || rows[len(rows)-1].Entry != b.LastEntry {
		return nil, corrupt("batch rows disagree with index: %d rows [%d,%d], index %+v",
			len(rows), rows[0].Entry, rows[len(rows)-1].Entry, b)
	}
	return rows, nil
}

// checkBatch is DecodeBatch without building rows: checksum, decode, row
// count and entry range.
func checkBatch(data []byte, b metadata.BatchIndex) error {
	if int64(len(data)) != b.Length || crc32.Checksum(data, castagnoli) != b.CRC32C {
		return corrupt("batch checksum mismatch")
	}
	rec, err := decodeMessage(data)
	if err != nil {
		return err
	}
	defer rec.Release()
	if !rec.Schema().Equal(Schema()) || rec.NumRows() != b.Rows || rec.NumRows() == 0 {
		return corrupt("batch has %d rows, index says %d", rec.NumRows(), b.Rows)
	}
	entry := rec.Column(colEntry).(*array.Int64)
	if first, last := entry.Value(0), entry.Value(entry.Len()-1); first != int64(b.FirstEntry) || last != int64(b.LastEntry) {
		return corrupt("batch holds entries [%d,%d], index says [%d,%d]", first, last, b.FirstEntry, b.LastEntry)
	}
	return nil
}

// schemaMessage is the encapsulated IPC message of Schema(), built once
// per decode: a one-batch stream is this, the batch message, and the
// end-of-stream marker.
func schemaMessage() ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(Schema()))
	if err := w.Close(); err != nil {
		return nil, internal("encode schema: %v", err)
	}
	return buf.Bytes()[:buf.Len()-8], nil // drop the end-of-stream marker
}

// cachedSchemaMessage is schemaMessage computed once: an immutable value
// derived from the constant schema.
var cachedSchemaMessage = sync.OnceValues(schemaMessage)

func decodeMessage(data []byte) (arrow.Record, error) {
	// Arrow's message reader allocates the metadata length a message
	// declares before reading it (make, outside any allocator): a forged
	// length asked for 2 GiB per call, which the fuzzer's worker did not
	// survive. Our writer frames every batch as continuation marker, length,
	// metadata, body; check the length against the bytes we have first.
	if len(data) < 8 || binary.LittleEndian.Uint32(data) != continuation {
		return nil, corrupt("batch does not start with an IPC message")
	}
	if n := int32(binary.LittleEndian.Uint32(data[4:])); n <= 0 || int(n) > len(data)-8 {
		return nil, corrupt("batch message declares %d bytes of metadata in %d", n, len(data))
	}
	schema, err := cachedSchemaMessage()
	if err != nil {
		return nil, err
	}
	stream := make([]byte, 0, len(schema)+len(data)+8)
	stream = append(stream, schema...)
	stream = append(stream, data...)
	stream = binary.LittleEndian.AppendUint32(stream, continuation)
	stream = binary.LittleEndian.AppendUint32(stream, 0)
	// Arrow allocates each buffer at the length the batch's metadata
	// declares; forged lengths would ask for any amount of memory. A batch's
	// body and buffers together never exceed twice its bytes (segments are
	// not compressed), so a larger request is corruption.
	alloc := &boundedAllocator{Allocator: memory.DefaultAllocator, left: 2*len(data) + 64<<10}
	rd, err := ipc.NewReader(bytes.NewReader(stream), ipc.WithSchema(Schema()), ipc.WithAllocator(alloc))
	if err != nil {
		return nil, corrupt("open batch: %v", err)
	}
	defer rd.Release()
	rec, err := nextRecord(rd)
	if err != nil {
		return nil, err
	}
	// Every row holds at least its 8-byte ledger id in the batch, so a
	// larger declared row count is forged, and would make the callers
	// allocate rows by the billion.
	if n := rec.NumRows(); n < 0 || n > int64(len(data)/8) {
		rec.Release()
		return nil, corrupt("batch declares %d rows in %d bytes", n, len(data))
	}
	return rec, nil
}

// boundedAllocator refuses to hand out more than left bytes in all. Arrow's
// Allocator cannot return an error, so it panics, and nextRecord turns the
// panic into a corruption error instead of the process running out of
// memory.
type boundedAllocator struct {
	memory.Allocator
	left int
}

func (a *boundedAllocator) Allocate(size int) []byte {
	a.take(size)
	return a.Allocator.Allocate(size)
}

func (a *boundedAllocator) Reallocate(size int, b []byte) []byte {
	if size > len(b) {
		a.take(size - len(b))
	}
	return a.Allocator.Reallocate(size, b)
}

func (a *boundedAllocator) take(n int) {
	if n < 0 || n > a.left {
		panic(fmt.Sprintf("batch declares a buffer of %d bytes, more than the batch holds", n))
	}
	a.left -= n
}

// nextRecord reads the single record of a one-batch stream. The arrow
// decoder can panic on hostile bytes that pass a checksum only by design
// (a forged checksum); treat a panic as corruption.
func nextRecord(rd *ipc.Reader) (rec arrow.Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			rec, err = nil, corrupt("decode batch: %v", p)
		}
	}()
	if !rd.Next() {
		if rd.Err() != nil {
			return nil, corrupt("decode batch: %v", rd.Err())
		}
		return nil, corrupt("decode batch: no record")
	}
	rec = rd.Record()
	rec.Retain()
	return rec, nil
}

// recordRows converts a record of the segment schema to rows. Payload,
// key and property bytes are copied, so rows outlive the record.
func recordRows(rec arrow.Record) (rows []Row, err error) {
	if !rec.Schema().Equal(Schema()) {
		return nil, corrupt("batch schema differs: %v", rec.Schema())
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil, corrupt("empty batch")
	}
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, corrupt("decode rows: %v", p)
		}
	}()
	c := rec.Columns()
	ledger, entry := c[colLedger].(*array.Uint64), c[colEntry].(*array.Int64)
	bidx, pub, evt := c[colBatchIndex].(*array.Int32), c[colPublishTime].(*array.Timestamp), c[colEventTime].(*array.Timestamp)
	prod, seq, key := c[colProducer].(*array.String), c[colSequenceID].(*array.Uint64), c[colKey].(*array.String)
	props, payload := c[colProperties].(*array.Map), c[colPayload].(*array.Binary)
	rows = make([]Row, n)
	for i := range rows {
		rows[i] = Row{
			Ledger: ids.LedgerID(ledger.Value(i)), Entry: ids.EntryID(entry.Value(i)),
			BatchIndex: bidx.Value(i), PublishTime: int64(pub.Value(i)),
			Producer: prod.Value(i), SequenceID: seq.Value(i), Key: key.Value(i),
			Payload: bytes.Clone(payload.Value(i)),
		}
		if rows[i].Properties, err = mapAt(props, i); err != nil {
			return nil, err
		}
		if !evt.IsNull(i) {
			rows[i].EventTime = int64(evt.Value(i))
		}
		if rows[i].Payload == nil {
			rows[i].Payload = []byte{}
		}
	}
	return rows, nil
}

// mapAt returns row i of a properties column. Arrow does not check a map's
// offsets against its entries when it decodes, and the map is sized from
// them: forged offsets would ask for billions of slots.
func mapAt(m *array.Map, i int) (map[string]string, error) {
	start, end := m.ValueOffsets(i)
	if start == end {
		return nil, nil
	}
	keys, items := m.Keys().(*array.String), m.Items().(*array.String)
	if start < 0 || end < start || end > int64(keys.Len()) || end > int64(items.Len()) {
		return nil, corrupt("row %d has properties [%d,%d) of %d", i, start, end, keys.Len())
	}
	out := make(map[string]string, end-start)
	for j := int(start); j < int(end); j++ {
		out[keys.Value(j)] = items.Value(j)
	}
	return out, nil
}

// ReadIndex reads a segment object's index from its footer with two range
// reads (the 10-byte trailer, then the footer), without the ledger's
// metadata: what a repair or garbage-collection pass needs.
func ReadIndex(ctx context.Context, r RangeReader, key string, size int64) (*Index, error) {
	ra := &rangeReaderAt{ctx: ctx, r: r, key: key, size: size}
	fr, err := openFile(ra)
	if err != nil {
		if ra.err != nil {
			return nil, ra.err
		}
		return nil, err
	}
	defer fr.Close()
	return indexOf(fr)
}

// Verify checks a whole segment object: it is an Arrow IPC file of the
// segment schema, its footer lists exactly the batches of its index, and
// every batch passes DecodeBatch. It returns the index.
func Verify(data []byte) (*Index, error) {
	fr, err := openFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer fr.Close()
	x, err := indexOf(fr)
	if err != nil {
		return nil, err
	}
	if fr.NumRecords() != len(x.Batches) {
		return nil, corrupt("footer lists %d batches, index %d", fr.NumRecords(), len(x.Batches))
	}
	for i, b := range x.Batches {
		if b.Offset+b.Length > int64(len(data)) {
			return nil, corrupt("batch %d beyond the object", i)
		}
		if err := checkBatch(data[b.Offset:b.Offset+b.Length], b); err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
	}
	return x, nil
}

func indexOf(fr *ipc.FileReader) (*Index, error) {
	md := fr.Schema().Metadata()
	if v, _ := md.GetValue(metaFormatKey); v != formatVersion {
		return nil, corrupt("format %q, want %q", v, formatVersion)
	}
	s, ok := md.GetValue(metaIndexKey)
	if !ok {
		return nil, corrupt("no index in the schema metadata")
	}
	return decodeIndex(s)
}

// rangeReaderAt adapts a RangeReader to the io.ReaderAt + io.Seeker the
// arrow file reader wants; every ReadAt is one range read.
type rangeReaderAt struct {
	ctx  context.Context
	r    RangeReader
	key  string
	size int64
	pos  int64
	err  error // the first store error, returned instead of arrow's wrapping
}

func (a *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= a.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), a.size-off)
	data, err := a.r.Get(a.ctx, a.key, off, n)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return 0, err
	}
	copy(p, data)
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (a *rangeReaderAt) Read(p []byte) (int, error) {
	n, err := a.ReadAt(p, a.pos)
	a.pos += int64(n)
	return n, err
}

func (a *rangeReaderAt) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		a.pos = off
	case io.SeekCurrent:
		a.pos += off
	case io.SeekEnd:
		a.pos = a.size + off
	}
	if a.pos < 0 {
		return 0, errors.New("segment: seek before start")
	}
	return a.pos, nil
}

// FindTime reads one record batch with a single range read, verifies its
// CRC32C, and returns the message id of its first row whose publish time
// is at or after t, scanning only the publish_time column. found is false
// when every row is older than t.
func FindTime(ctx context.Context, r RangeReader, key string, b metadata.BatchIndex, t int64) (id ids.MessageID, found bool, err error) {
	data, err := r.Get(ctx, key, b.Offset, b.Length)
	if err != nil {
		return id, false, err
	}
	if int64(len(data)) != b.Length || crc32.Checksum(data, castagnoli) != b.CRC32C {
		return id, false, corrupt("%s batch at %d: checksum mismatch", key, b.Offset)
	}
	rec, err := decodeMessage(data)
	if err != nil {
		return id, false, err
	}
	defer rec.Release()
	if !rec.Schema().Equal(Schema()) || rec.NumRows() != b.Rows {
		return id, false, corrupt("%s batch at %d: %d rows, index says %d", key, b.Offset, rec.NumRows(), b.Rows)
	}
	pub := rec.Column(colPublishTime).(*array.Timestamp)
	for i := 0; i < pub.Len(); i++ {
		if int64(pub.Value(i)) >= t {
			return ids.MessageID{
				Ledger: ids.LedgerID(rec.Column(colLedger).(*array.Uint64).Value(i)),
				Entry:  ids.EntryID(rec.Column(colEntry).(*array.Int64).Value(i)),
				Batch:  rec.Column(colBatchIndex).(*array.Int32).Value(i),
			}, true, nil
		}
	}
	return id, false, nil
}
