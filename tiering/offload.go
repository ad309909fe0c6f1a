package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/segment"
)

// Entry is one stored entry of a ledger: its id and payload bytes.
type Entry struct {
	ID      ids.EntryID
	Payload []byte
}

// EntrySource reads the entries of a closed ledger, from its bookies in
// production and from memory in tests.
type EntrySource interface {
	// ReadEntries returns entries first..last of l, in order, all of them.
	ReadEntries(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]Entry, error)
}

// Decoder turns one entry's payload into its messages. It fills every
// field of segment.Row except Ledger, Entry and BatchIndex, which the
// offloader sets.
type Decoder func(payload []byte) ([]segment.Row, error)

// DecodeEntry is the Decoder of the entry format of internal/entry.
func DecodeEntry(payload []byte) ([]segment.Row, error) {
	b, err := entry.Decode(payload)
	if err != nil {
		return nil, err
	}
	rows := make([]segment.Row, len(b.Messages))
	for i, m := range b.Messages {
		rows[i] = segment.Row{
			PublishTime: b.PublishTime, EventTime: m.EventTime, Producer: b.ProducerName,
			SequenceID: m.SequenceID, Key: m.Key, Properties: m.Properties, Payload: m.Payload,
		}
	}
	return rows, nil
}

// OffloaderConfig configures an Offloader. Zero values take the defaults.
type OffloaderConfig struct {
	// MaxSegmentBytes closes a segment object once its rows reach this
	// size; a ledger bigger than this becomes several objects. Default
	// 64 MiB (objects of at least 16 MiB keep PUT costs low).
	MaxSegmentBytes int64
	// ReadBatchEntries is how many entries one EntrySource call reads.
	// Default 256.
	ReadBatchEntries int
	// Segment bounds the record batches.
	Segment segment.Config
	// MaxAttempts bounds the tries to write and verify one object on
	// retriable errors. Default 4.
	MaxAttempts int
	// Backoff is the wait before the second attempt; it doubles per
	// attempt up to MaxBackoff. Defaults 100ms and 5s.
	Backoff, MaxBackoff time.Duration
	// MaxConcurrentUploads bounds the objects being uploaded at once across
	// all Offload calls (memory: about this many segments plus the one
	// being built per call). Default 2.
	MaxConcurrentUploads int
	// Decoder decodes entry payloads. Default DecodeEntry.
	Decoder Decoder
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for CompletedAt; default time.Now.
	Now func() time.Time
	// SlowUpload: an object whose put, read-back and verification take
	// longer than this is logged as a warning. Default 10s.
	SlowUpload time.Duration
	// Metrics; default unregistered ones.
	Metrics *Metrics
}

func (c OffloaderConfig) withDefaults() OffloaderConfig {
	if c.MaxSegmentBytes == 0 {
		c.MaxSegmentBytes = 64 << 20
	}
	if c.ReadBatchEntries == 0 {
		c.ReadBatchEntries = 256
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 4
	}
	if c.Backoff == 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxConcurrentUploads == 0 {
		c.MaxConcurrentUploads = 2
	}
	if c.Decoder == nil {
		c.Decoder = DecodeEntry
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SlowUpload == 0 {
		c.SlowUpload = 10 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Validate checks the config after defaults are applied.
func (c OffloaderConfig) Validate() error {
	d := c.withDefaults()
	if d.MaxSegmentBytes < 0 || d.ReadBatchEntries < 0 || d.MaxAttempts < 1 ||
		d.Backoff < 0 || d.MaxBackoff < d.Backoff || d.MaxConcurrentUploads < 1 {
		return errcode.New(errcode.InvalidArgument, "tiering: invalid offloader config %+v", c)
	}
	return d.Segment.Validate()
}

// Offloader writes closed ledgers to the object store. It is safe for
// concurrent use; uploads share one concurrency bound.
type Offloader struct {
	store Store
	src   EntrySource
	cfg   OffloaderConfig
	slots chan struct{} // upload slots
}

// NewOffloader returns an offloader writing to store from src.
func NewOffloader(store Store, src EntrySource, cfg OffloaderConfig) (*Offloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Offloader{store: store, src: src, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrentUploads)}, nil
}

// ErrNotClosed is returned for a ledger that is not closed: only closed
// ledgers, which never change again, can be offloaded.
var ErrNotClosed = errcode.New(errcode.InvalidArgument, "tiering: ledger not closed")

// Offload writes every entry of the closed ledger l as one or more segment
// objects, reads each object back and verifies it byte for byte and batch
// by batch, and returns the Offload record (state complete) for the caller
// to store in l's metadata by compare-and-swap. It writes no metadata and
// deletes nothing from bookies.
//
// On error no record is returned, objects this call wrote are deleted on a
// best-effort basis (leftovers have keys no metadata names, for a garbage
// collector), and the error is retriable (errcode.IsRetriable) when the
// store or the source was unavailable. Cancelling ctx stops the offload.
func (o *Offloader) Offload(ctx context.Context, l *metadata.Ledger) (*metadata.Offload, error) {
	if l.State != metadata.LedgerClosed {
		return nil, fmt.Errorf("%w: ledger %d is %s", ErrNotClosed, l.ID, l.State)
	}
	name, err := topic.Parse(l.Topic)
	if err != nil {
		return nil, fmt.Errorf("tiering: ledger %d: %w", l.ID, err)
	}
	start := time.Now()
	u := &upload{o: o, ledger: l, dir: name.String()}
	segs, err := u.run(ctx)
	if err != nil {
		o.cfg.Metrics.offloadFailures.Inc()
		u.cleanup()
		return nil, err
	}
	off := &metadata.Offload{State: metadata.OffloadComplete, Segments: segs, CompletedAt: o.cfg.Now().UnixNano()}
	var bytes int64
	for _, s := range segs {
		bytes += s.Bytes
	}
	o.cfg.Logger.Info("tiering: ledger offloaded", "ledger", l.ID, "topic", l.Topic,
		"objects", len(segs), "bytes", bytes, "took", time.Since(start))
	return off, nil
}

// upload is one Offload call.
type upload struct {
	o      *Offloader
	ledger *metadata.Ledger
	dir    string
	// parts are the objects of this call in entry order; each is filled in
	// by the one goroutine that uploads it.
	parts []*part
}

// part is one segment object of an upload: its record once verified, and
// every key an attempt wrote (for cleanup on failure).
type part struct {
	meta metadata.Segment
	keys []string
}

func (u *upload) run(ctx context.Context) ([]metadata.Segment, error) {
	if u.ledger.LastEntry < 0 {
		return []metadata.Segment{}, nil // an empty ledger has nothing to offload
	}
	g, gctx := errgroup.WithContext(ctx)
	err := u.build(gctx, func(seg *segment.Segment) error {
		p := &part{}
		u.parts = append(u.parts, p)
		select {
		case u.o.slots <- struct{}{}:
		case <-gctx.Done():
			return gctx.Err()
		}
		g.Go(func() error {
			defer func() { <-u.o.slots }()
			return u.putVerified(gctx, seg, p)
		})
		return nil
	})
	if gerr := g.Wait(); gerr != nil {
		err = gerr
	}
	if err != nil {
		return nil, err
	}
	out := make([]metadata.Segment, len(u.parts))
	for i, p := range u.parts {
		out[i] = p.meta
	}
	return out, nil
}

// build reads and decodes the ledger's entries in order and hands each
// finished segment to emit.
func (u *upload) build(ctx context.Context, emit func(*segment.Segment) error) error {
	cfg := u.o.cfg
	var w *segment.Writer
	for next := ids.EntryID(0); next <= u.ledger.LastEntry; {
		last := min(next+ids.EntryID(cfg.ReadBatchEntries)-1, u.ledger.LastEntry)
		entries, err := u.read(ctx, next, last)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if w == nil {
				if w, err = segment.NewWriter(u.ledger.ID, e.ID, cfg.Segment); err != nil {
					return err
				}
			}
			if err := u.add(w, e); err != nil {
				return err
			}
			if w.Size() >= cfg.MaxSegmentBytes || e.ID == u.ledger.LastEntry {
				seg, err := w.Finish()
				w = nil
				if err != nil {
					return err
				}
				if err := emit(seg); err != nil {
					return err
				}
			}
		}
		next = last + 1
	}
	return nil
}

func (u *upload) read(ctx context.Context, first, last ids.EntryID) ([]Entry, error) {
	entries, err := u.o.src.ReadEntries(ctx, u.ledger, first, last)
	if err != nil {
		return nil, fmt.Errorf("tiering: read ledger %d entries [%d,%d]: %w", u.ledger.ID, first, last, err)
	}
	if len(entries) != int(last-first+1) {
		return nil, errcode.New(errcode.Internal, "tiering: source returned %d entries for [%d,%d]", len(entries), first, last)
	}
	for i, e := range entries {
		if e.ID != first+ids.EntryID(i) {
			return nil, errcode.New(errcode.Internal, "tiering: source returned entry %d at %d", e.ID, first+ids.EntryID(i))
		}
	}
	return entries, nil
}

func (u *upload) add(w *segment.Writer, e Entry) error {
	rows, err := u.o.cfg.Decoder(e.Payload)
	if err != nil {
		return fmt.Errorf("tiering: ledger %d entry %d: %w", u.ledger.ID, e.ID, err)
	}
	for i := range rows {
		rows[i].Ledger, rows[i].Entry, rows[i].BatchIndex = u.ledger.ID, e.ID, int32(i)
	}
	return w.Add(rows)
}

// putVerified writes seg under a fresh key, reads it back and verifies it,
// retrying retriable failures with backoff under a new key each time.
func (u *upload) putVerified(ctx context.Context, seg *segment.Segment, p *part) error {
	backoff := u.o.cfg.Backoff
	for attempt := 1; ; attempt++ {
		key := newObjectKey(u.dir, uint64(u.ledger.ID))
		p.keys = append(p.keys, key)
		start := time.Now()
		err := u.putOnce(ctx, key, seg)
		if err == nil {
			u.observe(key, len(seg.Data), time.Since(start))
			x := seg.Index
			p.meta = metadata.Segment{Key: key, Bytes: int64(len(seg.Data)), FirstEntry: x.FirstEntry, LastEntry: x.LastEntry, Batches: x.Batches}
			return nil
		}
		u.deleteQuietly(key)
		if !errcode.IsRetriable(err) || attempt >= u.o.cfg.MaxAttempts || ctx.Err() != nil {
			return err
		}
		u.o.cfg.Metrics.offloadRetries.Inc()
		u.o.cfg.Logger.Warn("tiering: segment upload failed, retrying", "key", key, "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, u.o.cfg.MaxBackoff)
	}
}

func (u *upload) observe(key string, size int, took time.Duration) {
	m := u.o.cfg.Metrics
	m.offloadObjects.Inc()
	m.offloadBytes.Add(float64(size))
	m.uploadSeconds.Observe(took.Seconds())
	if took > u.o.cfg.SlowUpload {
		u.o.cfg.Logger.Warn("tiering: slow segment upload", "key", key, "bytes", size, "took", took)
	}
}

func (u *upload) putOnce(ctx context.Context, key string, seg *segment.Segment) error {
	if err := u.o.store.Put(ctx, key, bytes.NewReader(seg.Data), int64(len(seg.Data))); err != nil {
		return err
	}
	got, err := u.o.store.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, seg.Data) {
		return fmt.Errorf("%w: %s read back differs from what was written", ErrCorruption, key)
	}
	if _, err := segment.Verify(got); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// cleanupTimeout bounds the best-effort deletion of a failed offload's
// objects.
const cleanupTimeout = 5 * time.Second

func (u *upload) deleteQuietly(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := u.o.store.Delete(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
		u.o.cfg.Logger.Warn("tiering: could not delete object of a failed offload", "key", key, "err", err)
	}
}

// cleanup deletes every object of a failed Offload call, best effort.
func (u *upload) cleanup() {
	for _, p := range u.parts {
		for _, k := range p.keys {
			u.deleteQuietly(k)
		}
	}
}
