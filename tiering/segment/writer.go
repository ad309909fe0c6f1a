package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Config bounds the record batches of a segment.
type Config struct {
	// MaxBatchBytes closes a record batch once its rows' payload, key,
	// producer and property bytes reach this. Default 1 MiB. A batch always
	// holds whole entries, so one entry larger than this is a batch alone.
	MaxBatchBytes int
	// MaxBatchRows closes a record batch at this many rows. Default 8192.
	MaxBatchRows int
}

// Defaults.
const (
	DefaultMaxBatchBytes = 1 << 20
	DefaultMaxBatchRows  = 8192
)

func (c Config) withDefaults() Config {
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = DefaultMaxBatchRows
	}
	return c
}

// Validate checks the config after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxBatchBytes < 0 || c.MaxBatchRows < 0 {
		return errcode.New(errcode.InvalidArgument, "segment: negative batch bound %+v", c)
	}
	return nil
}

// ErrInput is returned by Writer.Add for rows that do not continue the
// segment: another ledger, an entry out of order, an entry with no rows.
var ErrInput = errcode.New(errcode.InvalidArgument, "segment: bad input rows")

// Writer builds one segment in memory: Add entries in order, then Finish.
// A Writer is not safe for concurrent use.
type Writer struct {
	cfg    Config
	ledger ids.LedgerID
	mem    memory.Allocator

	b       *array.RecordBuilder
	recs    []arrow.Record
	batches []metadata.BatchIndex // Offset, Length, CRC32C set by Finish
	cur     metadata.BatchIndex   // the batch being built
	curSize int
	size    int64 // approximate bytes of all rows added
	first   ids.EntryID
	next    ids.EntryID
}

// NewWriter starts a segment of ledger whose first entry will be first.
func NewWriter(ledger ids.LedgerID, first ids.EntryID, cfg Config) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mem := memory.DefaultAllocator
	return &Writer{
		cfg: cfg.withDefaults(), ledger: ledger, mem: mem,
		b: array.NewRecordBuilder(mem, Schema()), first: first, next: first,
	}, nil
}

// Size returns the approximate encoded size of what was added so far.
func (w *Writer) Size() int64 { return w.size }

// Entries returns how many entries were added.
func (w *Writer) Entries() int64 { return int64(w.next - w.first) }

// Add appends the rows of one entry, the one after the last added. Every
// row must carry the writer's ledger, that entry, and batch indexes
// 0, 1, 2, ... in order. Bad input returns ErrInput and adds nothing.
func (w *Writer) Add(rows []Row) error {
	if err := w.checkEntry(rows); err != nil {
		return err
	}
	n := entryBytes(rows)
	if w.cur.Rows > 0 && (w.curSize+n > w.cfg.MaxBatchBytes || int(w.cur.Rows)+len(rows) > w.cfg.MaxBatchRows) {
		w.closeBatch()
	}
	if w.cur.Rows == 0 {
		w.cur = metadata.BatchIndex{FirstEntry: w.next, FirstPublishTime: rows[0].PublishTime, LastPublishTime: rows[0].PublishTime}
	}
	for i := range rows {
		w.appendRow(&rows[i])
	}
	w.cur.LastEntry = w.next
	w.cur.Rows += int64(len(rows))
	w.curSize += n
	w.size += int64(n)
	w.next++
	return nil
}

func (w *Writer) checkEntry(rows []Row) error {
	if len(rows) == 0 {
		return fmt.Errorf("%w: entry %d has no rows", ErrInput, w.next)
	}
	for i, r := range rows {
		if r.Ledger != w.ledger || r.Entry != w.next || r.BatchIndex != int32(i) {
			return fmt.Errorf("%w: row %d is %d:%d:%d, want %d:%d:%d",
				ErrInput, i, r.Ledger, r.Entry, r.BatchIndex, w.ledger, w.next, i)
		}
	}
	return nil
}

// entryBytes approximates the encoded size of rows: their variable-length
// data plus the fixed-width columns.
func entryBytes(rows []Row) int {
	n := 0
	for i := range rows {
		r := &rows[i]
		n += len(r.Payload) + len(r.Key) + len(r.Producer) + 64
		for k, v := range r.Properties {
			n += len(k) + len(v) + 8
		}
	}
	return n
}

func (w *Writer) appendRow(r *Row) {
	f := w.b.Fields()
	f[colLedger].(*array.Uint64Builder).Append(uint64(r.Ledger))
	f[colEntry].(*array.Int64Builder).Append(int64(r.Entry))
	f[colBatchIndex].(*array.Int32Builder).Append(r.BatchIndex)
	f[colPublishTime].(*array.TimestampBuilder).Append(arrow.Timestamp(r.PublishTime))
	if r.EventTime == 0 {
		f[colEventTime].AppendNull()
	} else {
		f[colEventTime].(*array.TimestampBuilder).Append(arrow.Timestamp(r.EventTime))
	}
	f[colProducer].(*array.StringBuilder).Append(r.Producer)
	f[colSequenceID].(*array.Uint64Builder).Append(r.SequenceID)
	f[colKey].(*array.StringBuilder).Append(r.Key)
	appendProperties(f[colProperties].(*array.MapBuilder), r.Properties)
	f[colPayload].(*array.BinaryBuilder).Append(r.Payload)
	w.cur.FirstPublishTime = min(w.cur.FirstPublishTime, r.PublishTime)
	w.cur.LastPublishTime = max(w.cur.LastPublishTime, r.PublishTime)
}

// appendProperties writes a map in sorted key order, so a segment's bytes
// depend only on its rows.
func appendProperties(mb *array.MapBuilder, props map[string]string) {
	mb.Append(true)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
	for _, k := range keys {
		kb.Append(k)
		ib.Append(props[k])
	}
}

func (w *Writer) closeBatch() {
	w.recs = append(w.recs, w.b.NewRecord())
	w.batches = append(w.batches, w.cur)
	w.cur, w.curSize = metadata.BatchIndex{}, 0
}

// Segment is a finished segment object.
type Segment struct {
	Data  []byte
	Index *Index
}

// Finish encodes the segment as an Arrow IPC file and releases the
// writer. It fails with ErrInput when no entry was added.
func (w *Writer) Finish() (*Segment, error) {
	defer w.release()
	if w.cur.Rows > 0 {
		w.closeBatch()
	}
	if len(w.recs) == 0 {
		return nil, fmt.Errorf("%w: empty segment", ErrInput)
	}
	x := &Index{Version: 1, Ledger: w.ledger, FirstEntry: w.first, LastEntry: w.next - 1, Batches: w.batches}
	for _, b := range w.batches {
		x.Rows += b.Rows
	}
	placeholder := x.encode() // offsets, lengths and checksums still zero
	data, ends, err := w.encodeFile(placeholder)
	if err != nil {
		return nil, err
	}
	if err := locateBatches(data, ends, x); err != nil {
		return nil, err
	}
	if err := patchIndex(data, ends, placeholder, x.encode()); err != nil {
		return nil, err
	}
	return &Segment{Data: data, Index: x}, nil
}

func (w *Writer) release() {
	for _, r := range w.recs {
		r.Release()
	}
	w.recs = nil
	w.b.Release()
}

// encodeFile writes the IPC file and returns it with the file offset at
// which each record batch's message ends.
func (w *Writer) encodeFile(index string) ([]byte, []int64, error) {
	// The rows' estimated size plus room for validity bitmaps, offsets and
	// padding, so the buffer rarely grows.
	buf := seekBuffer{b: make([]byte, 0, w.size+w.size/4+64<<10)}
	fw, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schemaWithIndex(index)), ipc.WithAllocator(w.mem))
	if err != nil {
		return nil, nil, internal("open ipc writer: %v", err)
	}
	ends := make([]int64, len(w.recs))
	for i, rec := range w.recs {
		if err := fw.Write(rec); err != nil {
			return nil, nil, internal("write batch %d: %v", i, err)
		}
		ends[i] = int64(len(buf.b))
	}
	if err := fw.Close(); err != nil {
		return nil, nil, internal("close ipc writer: %v", err)
	}
	return buf.b, ends, nil
}

// locateBatches sets each batch's byte range and CRC32C. Batch 0 starts
// right after the schema message, which follows the 8-byte file header;
// batch i > 0 starts where batch i-1 ended.
func locateBatches(data []byte, ends []int64, x *Index) error {
	start, err := schemaEnd(data)
	if err != nil {
		return err
	}
	for i := range x.Batches {
		b := &x.Batches[i]
		b.Offset, b.Length = start, ends[i]-start
		msg := data[b.Offset : b.Offset+b.Length]
		if b.Length < 8 || binary.LittleEndian.Uint32(msg) != continuation {
			return internal("batch %d at %d does not start with an IPC message", i, start)
		}
		b.CRC32C = crc32.Checksum(msg, castagnoli)
		start = ends[i]
	}
	return nil
}

// schemaEnd returns the offset just past the schema message of an IPC
// file: magic (6 bytes) padded to 8, then the encapsulated message
// 0xFFFFFFFF, int32 metadata length, metadata (a schema has no body).
func schemaEnd(data []byte) (int64, error) {
	if len(data) < fileHeaderLen+8 || !bytes.Equal(data[:6], magic) ||
		binary.LittleEndian.Uint32(data[fileHeaderLen:]) != continuation {
		return 0, internal("no IPC file header")
	}
	metaLen := int64(int32(binary.LittleEndian.Uint32(data[fileHeaderLen+4:])))
	end := fileHeaderLen + 8 + metaLen
	if metaLen <= 0 || end > int64(len(data)) {
		return 0, internal("schema message length %d", metaLen)
	}
	return end, nil
}

// patchIndex replaces the placeholder index with the real one, of the
// same length, in the schema message at the start of the file and in the
// copy of the schema in the footer. Batch bytes are not touched, so their
// checksums stay valid.
func patchIndex(data []byte, ends []int64, placeholder, index string) error {
	if len(placeholder) != len(index) {
		return internal("index length changed: %d → %d", len(placeholder), len(index))
	}
	head, _ := schemaEnd(data)
	footerStart := ends[len(ends)-1]
	for _, region := range [][]byte{data[:head], data[footerStart:]} {
		if bytes.Count(region, []byte(placeholder)) != 1 {
			return internal("index placeholder not found once in a schema")
		}
		i := bytes.Index(region, []byte(placeholder))
		copy(region[i:], index)
	}
	return nil
}

const (
	fileHeaderLen = 8
	continuation  = 0xFFFFFFFF
)

var (
	magic      = []byte("ARROW1")
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func internal(format string, args ...any) error {
	return errcode.New(errcode.Internal, "segment: "+format, args...)
}

// seekBuffer is an in-memory io.WriteSeeker for the IPC file writer.
type seekBuffer struct {
	b   []byte
	pos int64
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + int64(len(p)); need > int64(len(s.b)) {
		s.b = append(s.b, make([]byte, need-int64(len(s.b)))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += int64(len(p))
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
		s.pos = off
	case 1:
		s.pos += off
	case 2:
		s.pos = int64(len(s.b)) + off
	}
	if s.pos < 0 {
		return 0, internal("seek before start")
	}
	return s.pos, nil
}
