package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"golang.org/x/time/rate"

	"github.com/strata-mq/strata/client"
)

// sink receives the replayed messages.
type sink interface {
	write(ctx context.Context, m *client.Message) error
	// finish completes the output: flushes and renames the file, or waits
	// for every republished message to be acknowledged.
	finish(ctx context.Context) error
	// abort discards the output after a failure.
	abort()
	// describe names where the messages went, for the summary line.
	describe() string
}

// openSink opens the sink the plan names.
func openSink(ctx context.Context, c *client.Client, p replayPlan, stdout io.Writer) (sink, error) {
	if p.into != "" {
		return openIntoSink(ctx, c, p)
	}
	out, err := openOutput(p.out, stdout)
	if err != nil {
		return nil, err
	}
	var s sink
	switch p.output {
	case "jsonl":
		s = newJSONLSink(out)
	case "arrow":
		s, err = newArrowSink(out)
	case "parquet":
		s, err = newParquetSink(out)
	default:
		err = badInput("--output %q: want jsonl, arrow or parquet", p.output)
	}
	if err != nil {
		out.discard()
		return nil, err
	}
	return s, nil
}

// output is stdout, or a file written under a temporary name and renamed
// into place once complete, so a failed replay leaves no partial file.
type output struct {
	w         io.Writer
	f         *os.File // nil for stdout
	path, tmp string
}

func openOutput(path string, stdout io.Writer) (*output, error) {
	if path == "" {
		return &output{w: stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	return &output{w: f, f: f, path: path, tmp: f.Name()}, nil
}

// commit makes the file durable and gives it its name.
func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(o.tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(o.tmp, o.path)
	}
	if err != nil {
		_ = os.Remove(o.tmp)
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

func (o *output) discard() {
	if o.f != nil {
		_ = o.f.Close()
		_ = os.Remove(o.tmp)
	}
}

func (o *output) name() string {
	if o.f == nil {
		return "stdout"
	}
	return o.path
}

// jsonlSink writes the JSON lines of `strata consume --output jsonl`.
type jsonlSink struct {
	out *output
	bw  *bufio.Writer
	jw  *client.JSONLWriter
}

func newJSONLSink(out *output) *jsonlSink {
	bw := bufio.NewWriterSize(out.w, 256<<10)
	return &jsonlSink{out: out, bw: bw, jw: client.NewJSONLWriter(bw)}
}

func (s *jsonlSink) write(_ context.Context, m *client.Message) error { return s.jw.Write(m) }

func (s *jsonlSink) finish(context.Context) error {
	if err := s.bw.Flush(); err != nil {
		s.out.discard()
		return err
	}
	return s.out.commit()
}

func (s *jsonlSink) abort() {
	_ = s.bw.Flush() // what was replayed before the failure, on stdout
	s.out.discard()
}

func (s *jsonlSink) describe() string { return " to " + s.out.name() }

// replaySchema returns the schema of the arrow and parquet outputs: one row
// per message.
func replaySchema() *arrow.Schema {
	ts := &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "ledger", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "entry", Type: arrow.PrimitiveTypes.Int64},
		{Name: "batch_index", Type: arrow.PrimitiveTypes.Int32},
		{Name: "topic", Type: arrow.BinaryTypes.String},
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "publish_time", Type: ts},
		{Name: "event_time", Type: ts, Nullable: true},
		{Name: "producer", Type: arrow.BinaryTypes.String},
		{Name: "sequence_id", Type: arrow.PrimitiveTypes.Uint64},
		{Name: "properties", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
		{Name: "payload", Type: arrow.BinaryTypes.Binary},
	}, nil)
}

// appendRow appends m to b, a builder of replaySchema.
func appendRow(b *array.RecordBuilder, m *client.Message) {
	b.Field(0).(*array.StringBuilder).Append(m.ID.String())
	b.Field(1).(*array.Uint64Builder).Append(m.ID.Ledger)
	b.Field(2).(*array.Int64Builder).Append(m.ID.Entry)
	b.Field(3).(*array.Int32Builder).Append(m.ID.Batch)
	b.Field(4).(*array.StringBuilder).Append(m.Topic)
	b.Field(5).(*array.StringBuilder).Append(m.Key)
	b.Field(6).(*array.TimestampBuilder).Append(arrow.Timestamp(m.PublishTime.UnixNano()))
	if et := b.Field(7).(*array.TimestampBuilder); m.EventTime.IsZero() {
		et.AppendNull()
	} else {
		et.Append(arrow.Timestamp(m.EventTime.UnixNano()))
	}
	b.Field(8).(*array.StringBuilder).Append(m.ProducerName)
	b.Field(9).(*array.Uint64Builder).Append(m.SequenceID)
	mb := b.Field(10).(*array.MapBuilder)
	mb.Append(true)
	kb, vb := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
	keys := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kb.Append(k)
		vb.Append(m.Properties[k])
	}
	b.Field(11).(*array.BinaryBuilder).Append(m.Payload)
}

// tableSink gathers rows into record batches of at most maxRows rows or
// maxBytes payload bytes and hands each to put; done completes the file.
type tableSink struct {
	out      *output
	format   string
	b        *array.RecordBuilder
	rows     int
	bytes    int
	maxRows  int
	maxBytes int
	put      func(arrow.Record) error
	done     func() error
}

func (s *tableSink) write(_ context.Context, m *client.Message) error {
	appendRow(s.b, m)
	s.rows++
	s.bytes += len(m.Payload) + len(m.Key)
	if s.rows >= s.maxRows || s.bytes >= s.maxBytes {
		return s.flush()
	}
	return nil
}

func (s *tableSink) flush() error {
	if s.rows == 0 {
		return nil
	}
	rec := s.b.NewRecord()
	defer rec.Release()
	s.rows, s.bytes = 0, 0
	return s.put(rec)
}

func (s *tableSink) finish(context.Context) error {
	defer s.b.Release()
	err := s.flush()
	if derr := s.done(); err == nil {
		err = derr
	}
	if err != nil {
		s.out.discard()
		return fmt.Errorf("writing %s: %w", s.format, err)
	}
	return s.out.commit()
}

func (s *tableSink) abort() {
	s.b.Release()
	_ = s.done()
	s.out.discard()
}

func (s *tableSink) describe() string { return " to " + s.out.name() + " (" + s.format + ")" }

// newArrowSink writes an Arrow IPC file (uncompressed, for the widest
// reader support), one record batch per 4096 rows or 8 MiB.
func newArrowSink(out *output) (*tableSink, error) {
	mem := memory.NewGoAllocator()
	schema := replaySchema()
	w, err := ipc.NewFileWriter(&tellWriter{w: out.w}, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	return &tableSink{out: out, format: "arrow", b: array.NewRecordBuilder(mem, schema), maxRows: 4096, maxBytes: 8 << 20,
		put: w.Write, done: w.Close}, nil
}

// tellWriter counts what it writes so that the IPC file writer, which
// asks for its position with Seek(0, io.SeekCurrent) only, can write to a
// pipe. It also hides the output's Close from the parquet writer, which
// would close it before the output is committed.
type tellWriter struct {
	w   io.Writer
	pos int64
}

func (t *tellWriter) Write(b []byte) (int, error) {
	n, err := t.w.Write(b)
	t.pos += int64(n)
	return n, err
}

func (t *tellWriter) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, fmt.Errorf("output cannot seek")
	}
	return t.pos, nil
}

// newParquetSink writes a Parquet file, snappy-compressed, one row group per
// 65536 rows or 64 MiB. Times are stored in microseconds: Spark reads no
// nanosecond timestamps. The Arrow schema is stored with the file.
func newParquetSink(out *output) (*tableSink, error) {
	mem := memory.NewGoAllocator()
	schema := replaySchema()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithAllocator(mem))
	aprops := pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem), pqarrow.WithStoreSchema(),
		pqarrow.WithCoerceTimestamps(arrow.Microsecond), pqarrow.WithTruncatedTimestamps(true))
	w, err := pqarrow.NewFileWriter(schema, &tellWriter{w: out.w}, props, aprops) // not out.w: Close would close it
	if err != nil {
		return nil, err
	}
	return &tableSink{out: out, format: "parquet", b: array.NewRecordBuilder(mem, schema), maxRows: 65536, maxBytes: 64 << 20,
		put: w.Write, done: w.Close}, nil
}

// intoSink republishes the messages to another topic.
type intoSink struct {
	p      *client.Producer
	lim    *rate.Limiter // nil: unlimited
	tally  produceTally
	sent   int
	target string
}

func openIntoSink(ctx context.Context, c *client.Client, p replayPlan) (*intoSink, error) {
	prod, err := c.NewProducer(ctx, p.into)
	if err != nil {
		return nil, fmt.Errorf("--into %s: %w", p.into, err)
	}
	s := &intoSink{p: prod, target: p.into}
	if p.rate > 0 {
		s.lim = rate.NewLimiter(rate.Limit(p.rate), max(1, int(p.rate/10)))
	}
	return s, nil
}

func (s *intoSink) write(ctx context.Context, m *client.Message) error {
	if err := s.failure(); err != nil {
		return err
	}
	if s.lim != nil {
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
	}
	s.p.SendAsync(ctx, &client.ProducerMessage{Key: m.Key, Payload: m.Payload, Properties: m.Properties, EventTime: m.EventTime},
		s.tally.done)
	s.sent++
	return nil
}

// failure returns the first failed send, so a replay into a topic that
// refuses messages stops early.
func (s *intoSink) failure() error {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	if s.tally.failed > 0 {
		return fmt.Errorf("republishing to %s: %w", s.target, s.tally.firstErr)
	}
	return nil
}

func (s *intoSink) finish(ctx context.Context) error {
	_ = s.p.Flush(ctx)
	_ = s.p.Close() // fails whatever is still unacknowledged
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	if failed := s.sent - s.tally.acked; failed > 0 {
		return fmt.Errorf("%d of %d republished messages were not acknowledged by %s: %v", failed, s.sent, s.target, s.tally.firstErr)
	}
	return nil
}

func (s *intoSink) abort() { _ = s.p.Close() }

func (s *intoSink) describe() string { return " into " + s.target }
