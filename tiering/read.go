package tiering

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/segment"
)

// ReaderConfig configures a Reader. Zero values take the defaults.
type ReaderConfig struct {
	// ReadAheadBatches is how many record batches past the last one read
	// are fetched in the background for the next call. Default 2; -1 off.
	ReadAheadBatches int
	// CacheBytes bounds the decoded batches kept (read-ahead and recently
	// read), by payload size. Default 64 MiB.
	CacheBytes int64
	// MaxReadBytes bounds the payload bytes one call returns: a read stops
	// at the first entry boundary past it (always at least one entry).
	// Default 8 MiB.
	MaxReadBytes int64
	// Metrics; default unregistered ones.
	Metrics *Metrics
}

func (c ReaderConfig) withDefaults() ReaderConfig {
	if c.ReadAheadBatches == 0 {
		c.ReadAheadBatches = 2
	}
	if c.ReadAheadBatches < 0 {
		c.ReadAheadBatches = 0
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 64 << 20
	}
	if c.MaxReadBytes == 0 {
		c.MaxReadBytes = 8 << 20
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return c
}

// Validate checks the config.
func (c ReaderConfig) Validate() error {
	if c.CacheBytes < 0 || c.MaxReadBytes < 0 {
		return errcode.New(errcode.InvalidArgument, "tiering: invalid reader config %+v", c)
	}
	return nil
}

// EntryRows are the messages of one entry, in batch-index order.
type EntryRows struct {
	Entry ids.EntryID
	Rows  []segment.Row
}

// Errors of reads.
var (
	// ErrNotOffloaded: the ledger has no complete offload to read from.
	ErrNotOffloaded = errcode.New(errcode.EntryNotFound, "tiering: ledger not offloaded")
	// ErrEntryRange: the entries asked for are not in the ledger.
	ErrEntryRange = errcode.New(errcode.EntryNotFound, "tiering: entries outside the ledger")
)

// Reader reads offloaded ledgers: one range GET per record batch, CRC32C
// verified, decoded batches cached, and the next batches fetched ahead for
// consumers catching up. Safe for concurrent use; Close stops read-ahead
// and the fetches in flight.
type Reader struct {
	store Store
	cfg   ReaderConfig

	ctx    context.Context // cancelled by Close; parent of read-ahead
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		cache    map[batchKey]*list.Element // of *cached
		lru      list.List                  // front: most recent
		bytes    int64
		inflight map[batchKey]*fetch
		ahead    int // read-ahead fetches running
	}
}

type batchKey struct {
	key    string
	offset int64
}

type cached struct {
	k    batchKey
	rows []segment.Row
	size int64
}

// fetch is one batch read in progress, shared by the callers that want the
// batch; they block on done.
type fetch struct {
	done chan struct{}
	rows []segment.Row
	err  error
	// waiters counts the callers blocked on done (guarded by Reader.mu).
	waiters int
	// cancel stops a fetch a caller started once its last waiter has gone;
	// nil for read-ahead, which runs until Close.
	cancel context.CancelFunc
}

// NewReader returns a reader over store.
func NewReader(store Store, cfg ReaderConfig) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Reader{store: store, cfg: cfg.withDefaults()}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.mu.cache = make(map[batchKey]*list.Element)
	r.mu.inflight = make(map[batchKey]*fetch)
	return r, nil
}

// Close cancels read-ahead and the fetches in flight and waits for them to
// stop; a read after Close fetches what it needs alone.
func (r *Reader) Close() {
	r.cancel()
	r.wg.Wait()
}

// ReadMessages returns the messages of entries first..last of the
// offloaded ledger l, in order; see ReadEntries for the bound on size.
func (r *Reader) ReadMessages(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]segment.Row, error) {
	entries, err := r.ReadEntries(ctx, l, first, last)
	if err != nil {
		return nil, err
	}
	var rows []segment.Row
	for _, e := range entries {
		rows = append(rows, e.Rows...)
	}
	return rows, nil
}

// ReadEntries returns entries first..last of the offloaded ledger l with
// their messages, or a prefix of them ending at an entry boundary once
// ReaderConfig.MaxReadBytes of payload are gathered (at least one entry).
// ErrNotOffloaded if l has no complete offload, ErrEntryRange if the range
// is not inside the ledger, ErrCorruption (errcode.Corruption) if a batch
// fails its checksum.
func (r *Reader) ReadEntries(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]EntryRows, error) {
	if err := checkReadable(l, first, last); err != nil {
		return nil, err
	}
	var out []EntryRows
	var size int64
	loc, ok := locate(l.Offload.Segments, first)
	for ok {
		rows, err := r.batch(ctx, loc)
		if err != nil {
			return nil, err
		}
		r.readAhead(l.Offload.Segments, loc)
		for _, row := range rows {
			if row.Entry < first {
				continue
			}
			if row.Entry > last || (size >= r.cfg.MaxReadBytes && row.Entry != out[len(out)-1].Entry) {
				return out, nil
			}
			if len(out) == 0 || out[len(out)-1].Entry != row.Entry {
				out = append(out, EntryRows{Entry: row.Entry})
			}
			out[len(out)-1].Rows = append(out[len(out)-1].Rows, row)
			size += int64(len(row.Payload))
		}
		if loc.index.LastEntry >= last {
			break
		}
		loc, ok = loc.next(l.Offload.Segments)
	}
	return out, nil
}

func checkReadable(l *metadata.Ledger, first, last ids.EntryID) error {
	if l.Offload == nil || (l.Offload.State != metadata.OffloadComplete && l.Offload.State != metadata.OffloadDeleted) {
		return fmt.Errorf("%w: ledger %d", ErrNotOffloaded, l.ID)
	}
	if first < 0 || last < first || last > l.LastEntry {
		return fmt.Errorf("%w: [%d,%d] of ledger %d with last entry %d", ErrEntryRange, first, last, l.ID, l.LastEntry)
	}
	return nil
}

// batchLoc is a record batch: segment s, batch b.
type batchLoc struct {
	seg   *metadata.Segment
	s, b  int
	index metadata.BatchIndex
}

// locate finds the batch holding entry e.
func locate(segs []metadata.Segment, e ids.EntryID) (batchLoc, bool) {
	s := sort.Search(len(segs), func(i int) bool { return segs[i].LastEntry >= e })
	if s == len(segs) || segs[s].FirstEntry > e {
		return batchLoc{}, false
	}
	bs := segs[s].Batches
	b := sort.Search(len(bs), func(i int) bool { return bs[i].LastEntry >= e })
	if b == len(bs) {
		return batchLoc{}, false
	}
	return batchLoc{seg: &segs[s], s: s, b: b, index: bs[b]}, true
}

// next returns the batch after loc, crossing into the next segment.
func (loc batchLoc) next(segs []metadata.Segment) (batchLoc, bool) {
	s, b := loc.s, loc.b+1
	for s < len(segs) && b >= len(segs[s].Batches) {
		s, b = s+1, 0
	}
	if s >= len(segs) {
		return batchLoc{}, false
	}
	return batchLoc{seg: &segs[s], s: s, b: b, index: segs[s].Batches[b]}, true
}

// batch returns the rows of one batch from the cache, from a fetch in
// flight, or by fetching it.
func (r *Reader) batch(ctx context.Context, loc batchLoc) ([]segment.Row, error) {
	k := batchKey{loc.seg.Key, loc.index.Offset}
	r.mu.Lock()
	if el, ok := r.mu.cache[k]; ok {
		r.mu.lru.MoveToFront(el)
		r.mu.Unlock()
		r.cfg.Metrics.cacheHits.Inc()
		return el.Value.(*cached).rows, nil
	}
	f, ok := r.mu.inflight[k]
	if !ok && r.ctx.Err() != nil {
		// After Close no fetch may start in the background (Close has
		// waited for them): the caller reads alone, uncached.
		r.mu.Unlock()
		return segment.ReadBatch(ctx, indexedRanges{r.store}, k.key, loc.index)
	}
	if !ok {
		f = r.startLocked(k, loc.index)
	}
	f.waiters++
	r.mu.Unlock()
	select {
	case <-f.done:
		r.leave(k, f)
		return f.rows, f.err
	case <-ctx.Done():
		r.leave(k, f)
		return nil, ctx.Err()
	}
}

// startLocked starts fetching a batch a caller asked for. The fetch is
// shared, so it runs on the reader's context, not the caller's: one caller
// giving up must not fail the others waiting for the same batch.
func (r *Reader) startLocked(k batchKey, idx metadata.BatchIndex) *fetch {
	ctx, cancel := context.WithCancel(r.ctx)
	f := &fetch{done: make(chan struct{}), cancel: cancel}
	r.mu.inflight[k] = f
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		r.run(ctx, k, idx, f)
	}()
	return f
}

// leave drops a waiter of f. When the last waiter of a fetch a caller
// started gives up, the fetch is cancelled and forgotten, so that a later
// caller starts its own rather than inherit the cancellation.
func (r *Reader) leave(k batchKey, f *fetch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.waiters--
	if f.waiters > 0 || f.cancel == nil {
		return
	}
	if r.mu.inflight[k] == f {
		delete(r.mu.inflight, k)
	}
	f.cancel()
}

// run fetches one batch and publishes the result to f's waiters.
func (r *Reader) run(ctx context.Context, k batchKey, idx metadata.BatchIndex, f *fetch) {
	f.rows, f.err = segment.ReadBatch(ctx, indexedRanges{r.store}, k.key, idx)
	r.cfg.Metrics.readBatches.Inc()
	r.cfg.Metrics.readBytes.Add(float64(idx.Length))
	r.mu.Lock()
	if r.mu.inflight[k] == f {
		delete(r.mu.inflight, k)
	}
	if f.err == nil {
		r.insertLocked(k, f.rows)
	}
	r.mu.Unlock()
	close(f.done)
}

func (r *Reader) insertLocked(k batchKey, rows []segment.Row) {
	if _, ok := r.mu.cache[k]; ok {
		return
	}
	var size int64
	for _, row := range rows {
		size += int64(len(row.Payload)) + 64
	}
	r.mu.cache[k] = r.mu.lru.PushFront(&cached{k: k, rows: rows, size: size})
	r.mu.bytes += size
	for r.mu.bytes > r.cfg.CacheBytes && r.mu.lru.Len() > 1 {
		old := r.mu.lru.Remove(r.mu.lru.Back()).(*cached)
		delete(r.mu.cache, old.k)
		r.mu.bytes -= old.size
	}
}

// readAhead starts background fetches of the batches after loc that are
// neither cached nor in flight, at most ReadAheadBatches at a time.
func (r *Reader) readAhead(segs []metadata.Segment, loc batchLoc) {
	for i := 0; i < r.cfg.ReadAheadBatches; i++ {
		var ok bool
		if loc, ok = loc.next(segs); !ok {
			return
		}
		k := batchKey{loc.seg.Key, loc.index.Offset}
		r.mu.Lock()
		_, hit := r.mu.cache[k]
		_, busy := r.mu.inflight[k]
		if hit || busy || r.mu.ahead >= r.cfg.ReadAheadBatches || r.ctx.Err() != nil {
			r.mu.Unlock()
			continue
		}
		f := &fetch{done: make(chan struct{})}
		r.mu.inflight[k] = f
		r.mu.ahead++
		r.wg.Add(1)
		r.mu.Unlock()
		go func(idx metadata.BatchIndex) {
			defer r.wg.Done()
			r.run(r.ctx, k, idx, f)
			r.mu.Lock()
			r.mu.ahead--
			r.mu.Unlock()
		}(loc.index)
	}
}

// indexedRanges is the store as reads at the byte ranges of a segment
// index see it: a range the object does not hold means the object was cut
// short or replaced since offload verified it, which is corruption of
// stored bytes, not a bad range of the caller's (ErrInvalidRange is
// InvalidArgument). The error still matches ErrInvalidRange.
type indexedRanges struct{ Store }

func (s indexedRanges) Get(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	data, err := s.Store.Get(ctx, key, offset, length)
	if errors.Is(err, ErrInvalidRange) {
		return nil, fmt.Errorf("%w: object shorter than its index: %w", ErrCorruption, err)
	}
	return data, err
}
