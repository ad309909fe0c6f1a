package bookie

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// Bookie stores ledger entries in a group-commit journal. It is safe for
// concurrent use. Open starts its goroutines (the journal writer and syncer,
// and the checkpointer); Close stops them.
//
// LOCKORDER: submitMu, then mu, then files. ckptMu is taken before mu.
type Bookie struct {
	cfg        Config
	log        *slog.Logger
	id         string
	journalDir string

	// queue feeds the journal writer. Senders hold submitMu.RLock and check
	// closed; Close takes the write lock, sets closed and closes queue.
	queue    chan *request
	submitMu sync.RWMutex
	closed   bool

	mu struct {
		sync.RWMutex
		table *index.Table
		// pos is the journal position up to which table reflects the journal.
		pos     index.Position
		waiters map[ids.LedgerID]*waiter
		// planned holds fences and deletes written but not yet applied.
		planned map[ids.LedgerID]plannedFlags
		// failed is set after a write or fsync error: no more writes.
		failed error
	}

	files struct {
		sync.RWMutex
		segs map[uint32]*journal.Segment
	}

	// syncCh carries written groups from the writer to the syncer; its
	// capacity bounds the groups written and not yet fsync'd.
	syncCh chan *written
	// syncBusy is set while the syncer works on a batch; syncDone gets a
	// token each time it finishes one.
	syncBusy atomic.Bool
	syncDone chan struct{}
	// durable is the (segment id << 32 | offset) up to which the journal is
	// known fsync'd.
	durable atomic.Uint64

	// Owned by the writer goroutine.
	active    *journal.Segment
	activeOff int64
	buf       []byte

	ckptMu  sync.Mutex
	ckptSeq uint64
	ckptPos index.Position
	slotPos [2]index.Position
	kick    chan struct{}
	// compactStuck marks segments with damaged live entries that compaction
	// cannot move. Guarded by ckptMu.
	compactStuck map[uint32]bool

	hooks    hooks
	metrics  *metrics
	stop     chan struct{}
	writerWG sync.WaitGroup
	bgWG     sync.WaitGroup
}

// syncQueueGroups bounds the groups written to the page cache and not yet
// fsync'd (each at most GroupMaxBytes plus one entry).
const syncQueueGroups = 16

// Open recovers the bookie in cfg.DataDir (loading the newest checkpoint and
// replaying the journal after it, truncating a torn tail) and starts it.
func Open(cfg Config, log *slog.Logger) (*Bookie, error) {
	return open(cfg, log, hooks{})
}

// hooks let tests stop the pipeline at a chosen point. Production uses none.
type hooks struct {
	// beforeSync runs on the syncer goroutine before each batch's fdatasync.
	beforeSync func()
	// syncErr, if it returns an error, replaces an fdatasync's result.
	syncErr func() error
	// synced gets each journal fdatasync's duration (benchmarks).
	synced func(time.Duration)
}

func open(cfg Config, log *slog.Logger, h hooks) (*Bookie, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bookie{
		cfg:        cfg,
		log:        log,
		journalDir: filepath.Join(cfg.DataDir, "journal"),
		queue:      make(chan *request, cfg.QueueLength),
		kick:       make(chan struct{}, 1),
		syncCh:     make(chan *written, syncQueueGroups),
		syncDone:   make(chan struct{}, 1),
		stop:       make(chan struct{}),
		hooks:      h,
		metrics:    newMetrics(cfg.Registerer),

		compactStuck: map[uint32]bool{},
	}
	b.mu.waiters = map[ids.LedgerID]*waiter{}
	b.mu.planned = map[ids.LedgerID]plannedFlags{}
	b.files.segs = map[uint32]*journal.Segment{}
	if err := os.MkdirAll(b.journalDir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if b.id, err = loadID(cfg); err != nil {
		return nil, err
	}
	if err := b.recover(); err != nil {
		b.closeFiles()
		return nil, err
	}
	b.writerWG.Add(2)
	go b.runWriter()
	go b.runSyncer()
	b.bgWG.Add(1)
	go b.runCheckpointer()
	b.kickCheckpoint()
	return b, nil
}

// ID returns the bookie's id.
func (b *Bookie) ID() string { return b.id }

func loadID(cfg Config) (string, error) {
	if cfg.ID != "" {
		return cfg.ID, nil
	}
	p := filepath.Join(cfg.DataDir, "BOOKIE_ID")
	data, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	id := "bookie-" + uuid.NewString()
	if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, journal.SyncDir(cfg.DataDir)
}

// recover loads the newest valid checkpoint, replays the journal after its
// position, and creates a fresh active segment.
func (b *Bookie) recover() error {
	cps, damaged, err := index.Load(b.cfg.DataDir)
	if err != nil {
		return err
	}
	segIDs, err := journal.List(b.journalDir)
	if err != nil {
		return err
	}
	table, pos := index.New(), index.Position{File: 1}
	if len(cps) > 0 {
		table, pos, b.ckptSeq = cps[0].Table, cps[0].Pos, cps[0].Seq
		for _, cp := range cps {
			b.slotPos[cp.Seq%2] = cp.Pos
		}
		b.ckptPos = pos
	} else if len(segIDs) > 0 && segIDs[0] != 1 {
		return fmt.Errorf("%w: no valid checkpoint (%d damaged) and journal segments before %s were reclaimed",
			ErrCorruption, damaged, journal.Name(segIDs[0]))
	}
	if damaged > 0 {
		b.log.Warn("damaged index checkpoint ignored", "damaged", damaged, "using_seq", b.ckptSeq)
	}
	for i, id := range segIDs {
		if err := b.replaySegment(table, id, pos, i == len(segIDs)-1); err != nil {
			return err
		}
	}
	b.metrics.segments.Set(float64(len(segIDs) + 1))
	next := uint32(1)
	if len(segIDs) > 0 {
		next = segIDs[len(segIDs)-1] + 1
	}
	return b.startSegment(table, next)
}

// replaySegment opens segment id and, if it lies at or after pos, replays
// its records into table.
func (b *Bookie) replaySegment(table *index.Table, id uint32, pos index.Position, newest bool) error {
	seg, err := journal.Open(b.journalDir, id)
	if err != nil {
		return err
	}
	b.files.segs[id] = seg
	if id < pos.File {
		return nil
	}
	data, err := seg.ReadAll()
	if err != nil {
		return err
	}
	start := 0
	if id == pos.File {
		start = int(min(int64(pos.Off), int64(len(data))))
	}
	res := journal.Scan(data, start, newest, func(off, n int, r journal.Record) {
		applyRecord(table, r, index.Loc{File: id, Off: uint32(off), Len: uint32(n)})
	})
	for _, d := range res.Damaged {
		b.metrics.corruptions.Inc()
		b.log.Error("journal corruption: damaged record in durable data", "segment", journal.Name(id), "offset", d.Off, "bytes", d.Len)
		if c := d.Claimed; c != nil {
			table.Put(c.Ledger, c.Entry, ids.NoEntry, index.Loc{File: id, Off: uint32(d.Off), Len: uint32(d.Len)})
		}
	}
	if newest && res.End < len(data) {
		if res.Torn {
			b.log.Warn("journal: torn tail truncated", "segment", journal.Name(id), "offset", res.End, "dropped_bytes", len(data)-res.End)
		}
		return seg.Truncate(int64(res.End))
	}
	return nil
}

func applyRecord(t *index.Table, r journal.Record, loc index.Loc) {
	switch r.Kind {
	case journal.KindEntry:
		t.Put(r.Ledger, r.Entry, r.LAC, loc)
	case journal.KindFence:
		t.Fence(r.Ledger)
	case journal.KindDelete:
		t.Delete(r.Ledger)
	}
}

// startSegment creates segment id as the active one, and sets the index to
// cover the journal up to its start.
func (b *Bookie) startSegment(table *index.Table, id uint32) error {
	seg, err := journal.Create(b.journalDir, id, b.cfg.JournalFileBytes)
	if err != nil {
		return err
	}
	b.files.segs[id] = seg
	b.active, b.activeOff = seg, 0
	b.mu.table, b.mu.pos = table, index.Position{File: id}
	return nil
}

// Close stops accepting requests, writes and acknowledges every request
// already queued (the group in flight included), writes a last checkpoint
// and closes the files. Later calls return nil.
func (b *Bookie) Close() error {
	b.submitMu.Lock()
	if b.closed {
		b.submitMu.Unlock()
		return nil
	}
	b.closed = true
	close(b.queue)
	b.submitMu.Unlock()
	b.writerWG.Wait()
	close(b.stop)
	b.bgWG.Wait()
	var err error
	if b.failure() == nil {
		err = b.checkpoint()
	}
	b.closeFiles()
	return err
}

func (b *Bookie) closeFiles() {
	b.files.Lock()
	defer b.files.Unlock()
	for id, s := range b.files.segs {
		s.Close()
		delete(b.files.segs, id)
	}
}

func (b *Bookie) failure() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.failed
}

// submit queues r for the journal writer. It blocks while the queue is full;
// ctx cancels the wait (r is then not queued and done is not called).
func (b *Bookie) submit(ctx context.Context, r *request) error {
	b.submitMu.RLock()
	defer b.submitMu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do submits r and waits for its result.
func (b *Bookie) do(ctx context.Context, r *request) (result, error) {
	ch := make(chan result, 1)
	r.done = func(res result) { ch <- res }
	if err := b.submit(ctx, r); err != nil {
		return result{}, err
	}
	select {
	case res := <-ch:
		return res, res.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}
