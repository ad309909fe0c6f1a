package bookie

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/errcode"
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
	key        uint64   // the journal's key (journal.SeedOf)
	lock       *os.File // holds the flock on DataDir/LOCK (lockDataDir)

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

	// Owned by the writer goroutine. activeRecs are the records written to
	// the active segment, its index once it is sealed.
	active      *journal.Segment
	activeSince time.Time // when active became the active segment
	activeRecs  []index.Rec
	activeLimit int64 // the size past which nothing is written to active

	// spare receives the next segment, created ahead of need so that a
	// rotation does not wait for a file to be made (fallocate, maybe 64 MiB
	// of zeros written, and two fsyncs on a disk, journal.Create; zeroing
	// 64 MiB on tmpfs). spareWG tracks its creation.
	spare   chan spareSegment
	spareWG sync.WaitGroup
	// zeroRate is the bytes a second at which the last segment written
	// with zeros was written (0: none yet).
	zeroRate atomic.Int64
	// readOnly mirrors ro.on for the adds' path. ro is the read-only
	// state (diskfull.go): why, and a channel closed at each change.
	readOnly atomic.Bool
	ro       struct {
		sync.Mutex
		on      bool
		why     [numCauses]string // why each cause holds; "" if it does not
		changed chan struct{}
	}
	// free holds the ids of reclaimed segments kept for reuse
	// (Config.JournalRecycleSegments), oldest first.
	free struct {
		sync.Mutex
		ids []uint32
	}

	// sealed holds the indexes of sealed segments not yet written; the
	// checkpointer writes them.
	sealed struct {
		sync.Mutex
		segs []sealedSegment
	}

	ckptMu  sync.Mutex
	ckptSeq uint64
	ckptPos index.Position
	slotPos [2]index.Position
	kick    chan struct{}
	// compactStuck marks segments with damaged live entries that compaction
	// cannot move. Guarded by ckptMu.
	compactStuck map[uint32]bool

	// addsStopped is closed by StopAdds: Add streams stop taking adds.
	addsStopped  chan struct{}
	stopAddsOnce sync.Once

	// scrubSem is held by the scrub pass under way (Scrub): one at a time.
	scrubSem chan struct{}
	// damaged are the damage marks kept in DataDir/DAMAGED (damaged.go);
	// during open, those the scan of the segments found.
	damaged struct {
		sync.Mutex
		marks []damageMark
	}

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
	// createSegment runs before a journal segment is created; an error
	// from it fails the creation.
	createSegment func(id uint32, zeros bool) error
	// diskUsage replaces the measure of the data directory's disk usage.
	diskUsage func() (float64, error)
	// scrubNow and scrubSleep replace the scrubber's clock and its waits
	// between reads, so that a test counts the waits instead of timing them.
	scrubNow   func() time.Time
	scrubSleep func(time.Duration)
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
		cfg:         cfg,
		log:         log,
		journalDir:  filepath.Join(cfg.DataDir, "journal"),
		queue:       make(chan *request, cfg.QueueLength),
		kick:        make(chan struct{}, 1),
		spare:       make(chan spareSegment, 1),
		syncCh:      make(chan *written, syncQueueGroups),
		syncDone:    make(chan struct{}, 1),
		stop:        make(chan struct{}),
		addsStopped: make(chan struct{}),
		scrubSem:    make(chan struct{}, 1),
		hooks:       h,
		metrics:     newMetrics(cfg.Registerer),

		compactStuck: map[uint32]bool{},
	}
	b.ro.changed = make(chan struct{})
	b.mu.waiters = map[ids.LedgerID]*waiter{}
	b.mu.planned = map[ids.LedgerID]plannedFlags{}
	b.files.segs = map[uint32]*journal.Segment{}
	if err := os.MkdirAll(b.journalDir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if b.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err = checkCluster(cfg.DataDir, cfg.ClusterID, log); err == nil {
		b.id, err = loadID(cfg)
	}
	if err == nil {
		b.key, err = loadKey(b.journalDir)
	}
	if err == nil {
		err = b.recover()
	}
	if err == nil {
		err = b.loadDamaged()
	}
	if err != nil {
		b.closeFiles()
		return nil, err
	}
	b.checkDisk()                       // a bookie started on a full disk starts read-only
	b.prepareSpare(b.active.ID+1, true) // the rate the journal fills at is not known yet
	b.writerWG.Add(2)
	go b.runWriter()
	go b.runSyncer()
	b.bgWG.Add(2)
	go b.runCheckpointer()
	go b.runDiskChecker()
	if cfg.ScrubInterval > 0 {
		b.bgWG.Add(1)
		go b.runScrubber()
	}
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

// keyFile holds the journal's key (journal.SeedOf), in hexadecimal.
const keyFile = "JOURNAL_KEY"

// loadKey reads the journal's key, or makes one for a journal that has
// none yet. A journal whose segments hold keyed records and whose key file
// is gone is not opened: every record would fail its CRC, and the scan
// would take the newest segment for torn and truncate it.
func loadKey(dir string) (uint64, error) {
	p := filepath.Join(dir, keyFile)
	segs, err := journal.List(dir)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(p)
	if err == nil {
		key, perr := strconv.ParseUint(strings.TrimSpace(string(data)), 16, 64)
		if perr != nil {
			return 0, errcode.New(errcode.Corruption, "bookie: %s: %v", p, perr)
		}
		return key, checkKey(dir, p, key, segs)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	for _, id := range segs {
		if first, err := firstRecord(dir, id, false); err != nil {
			return 0, err
		} else if journal.Seeded(first) {
			return 0, errcode.New(errcode.Corruption, "bookie: %s is missing, and segment %s holds records keyed with it: restore the file; without it no record can be told from garbage",
				p, journal.Name(id))
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	key := binary.LittleEndian.Uint64(b[:])
	return key, journal.WriteFileSync(dir, keyFile, fmt.Appendf(nil, "%016x\n", key), 0o600)
}

// checkKey refuses a key that is not the journal's (a file restored from
// another bookie, say): the scan would take every record for garbage and
// truncate the newest segment. The first record of a sealed segment was
// fsync'd in full, so it decodes under the right key unless damaged; one
// record of any segment that decodes is enough, and the key is refused
// when sealed segments were asked and none decodes. The newest written
// segment's first group may be torn (spares after it, made ahead of need,
// hold zeros there), so a journal of one written segment cannot refuse.
func checkKey(dir, path string, key uint64, segs []uint32) error {
	asked, newest := 0, true
	for i := len(segs) - 1; i >= 0; i-- {
		id := segs[i]
		first, err := firstRecord(dir, id, true)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(first, func(c byte) bool { return c != 0 }) {
			continue // a spare never written (removeUnusedSpares)
		}
		sealed := !newest
		newest = false
		if !journal.Seeded(first) {
			continue // written before records had keys
		}
		if _, _, err := journal.Decode(first, journal.SeedOf(key, id)); err == nil {
			return nil
		}
		if sealed {
			asked++
		}
	}
	if asked > 0 {
		return errcode.New(errcode.Corruption, "bookie: %s does not hold the key of this journal's records (the first records of %d sealed segments fail their checksum under it): restore this journal's own key file",
			path, asked)
	}
	return nil
}

// firstRecord reads the header of the first record of segment id, and
// with whole the rest of it (unless its length is impossible, or runs past
// the file).
func firstRecord(dir string, id uint32, whole bool) ([]byte, error) {
	seg, err := journal.Open(dir, id)
	if err != nil {
		return nil, err
	}
	defer seg.Close()
	head := make([]byte, journal.HeaderSize)
	if err := seg.ReadAt(head, 0); err != nil {
		return nil, nil // shorter than a header: no record
	}
	n := 8 + int64(binary.LittleEndian.Uint32(head)) // length counts the bytes after the crc
	if !whole || n <= journal.HeaderSize || n > journal.HeaderSize+journal.MaxPayload {
		return head, nil
	}
	rec := make([]byte, n)
	if err := seg.ReadAt(rec, 0); err != nil {
		return head, nil
	}
	return rec, nil
}

// seed is the CRC seed of journal segment id's records.
func (b *Bookie) seed(id uint32) journal.Seed { return journal.SeedOf(b.key, id) }

// recover loads the newest valid checkpoint (ledger states), applies every
// journal segment on disk to it, from the segment's index when it has a
// valid one and by a scan otherwise, and creates a fresh active segment.
func (b *Bookie) recover() error {
	cps, damaged, err := index.Load(b.cfg.DataDir)
	if err != nil {
		return err
	}
	segIDs, err := journal.List(b.journalDir)
	if err != nil {
		return err
	}
	table := index.New()
	if len(cps) > 0 {
		table, b.ckptPos, b.ckptSeq = cps[0].Table, cps[0].Pos, cps[0].Seq
		for _, cp := range cps {
			b.slotPos[cp.Seq%2] = cp.Pos
		}
	} else if len(segIDs) > 0 && segIDs[0] != 1 {
		return fmt.Errorf("%w: no valid checkpoint (%d damaged) and journal segments before %s were reclaimed",
			ErrCorruption, damaged, journal.Name(segIDs[0]))
	}
	if damaged > 0 {
		b.log.Warn("damaged index checkpoint ignored", "damaged", damaged, "using_seq", b.ckptSeq)
	}
	if segIDs, err = b.removeUnusedSpares(segIDs); err != nil {
		return err
	}
	if err := b.loadFree(); err != nil {
		return err
	}
	if err := removeStaleIndexes(b.journalDir, segIDs); err != nil {
		return err
	}
	var newestRecs []index.Rec
	for i, id := range segIDs {
		recs, err := b.replaySegment(table, id, i == len(segIDs)-1)
		if err != nil {
			return err
		}
		newestRecs = recs
	}
	b.metrics.segments.Set(float64(len(segIDs) + 1))
	next := uint32(1)
	if len(segIDs) > 0 {
		next = segIDs[len(segIDs)-1] + 1
	}
	err = b.startSegment(table, next)
	if err != nil && len(segIDs) > 0 {
		newest := segIDs[len(segIDs)-1]
		b.log.Warn("no room for a new journal segment: starting read-only, on the newest one", "segment", journal.Name(newest), "err", err)
		b.metrics.segments.Set(float64(len(segIDs)))
		return b.resumeSegment(table, newest, newestRecs, err)
	}
	return err
}

// resumeSegment makes segment id, the newest, the active one again when
// no new segment can be made at open (a disk truly full): the bookie then
// starts read-only (causeSegment) instead of not at all, serves reads, and
// writes fences, deletes and recovery adds after the segment's last
// record, until a rotation finds a segment. recs are its records, its
// index once it is sealed.
func (b *Bookie) resumeSegment(table *index.Table, id uint32, recs []index.Rec, cause error) error {
	seg := b.files.segs[id]
	end, err := seg.Size() // truncated at the end of its data by the scan
	if err != nil {
		return err
	}
	// What the scan kept may not all be on the disk (a SIGKILL leaves it
	// in the page cache): make it so before new records' sync marks
	// claim it.
	if _, err := seg.Sync(); err != nil {
		return err
	}
	// The index written for it as sealed would miss what comes next, and
	// be taken as complete once it is sealed: gone, it is scanned instead
	// until the writer seals the segment and writes the whole one.
	if err := index.RemoveSegment(b.journalDir, id); err != nil {
		return err
	}
	// Room for fences and deletes, if the disk has any; nothing is
	// written past it (activeLimit), as the disk may have no more.
	seg.Resume(end, end+reserveBytes(b.cfg))
	b.activeLimit = end + reserveBytes(b.cfg)
	table.ClampDeletedIn(id)
	b.durable.Store(uint64(id)<<32 | uint64(end))
	b.active, b.activeSince, b.activeRecs = seg, time.Now(), recs
	b.mu.table, b.mu.pos = table, index.Position{File: id, Off: uint32(end)}
	b.setCause(causeSegment, (&segmentError{cause}).Error())
	return nil
}

// removeUnusedSpares removes trailing segments that hold no durable record
// (journal.Segment.Unwritten: their first page is zeros): spares created
// ahead of need and never written, or written with nothing made durable.
// Left in place, a spare would pass for the newest segment, and the one
// really written last, which may have a torn tail, would be scanned as a
// sealed one. Their ids are used again.
func (b *Bookie) removeUnusedSpares(segIDs []uint32) ([]uint32, error) {
	for len(segIDs) > 1 {
		id := segIDs[len(segIDs)-1]
		seg, err := journal.Open(b.journalDir, id)
		if err != nil {
			return nil, err
		}
		unwritten, err := seg.Unwritten()
		if err != nil || !unwritten {
			seg.Close()
			return segIDs, err
		}
		if err := index.RemoveSegment(b.journalDir, id); err != nil {
			seg.Close()
			return nil, err
		}
		if err := seg.Remove(b.journalDir); err != nil {
			return nil, err
		}
		segIDs = segIDs[:len(segIDs)-1]
	}
	return segIDs, nil
}

// removeStaleIndexes deletes temporary segment index files (a crash during
// SaveSegment) and indexes whose segment is gone. The bookie removes an
// index before its segment, so it leaves none of the latter itself, but a
// copied or hand-edited directory may hold them.
func removeStaleIndexes(dir string, segIDs []uint32) error {
	keep := make(map[string]bool, len(segIDs))
	for _, id := range segIDs {
		keep[index.SegmentName(id)] = true
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		if (strings.HasSuffix(name, ".idx") || strings.HasSuffix(name, ".idx.tmp")) && !keep[name] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// replaySegment opens segment id and applies its records to table: from its
// index when the segment is sealed and the index is valid, else by scanning
// it (truncating a torn tail of the newest one) and then writing its index.
// It returns the records.
func (b *Bookie) replaySegment(table *index.Table, id uint32, newest bool) ([]index.Rec, error) {
	seg, err := journal.Open(b.journalDir, id)
	if err != nil {
		return nil, err
	}
	b.files.segs[id] = seg
	if !newest {
		// The newest segment may have a torn tail, so it is always scanned;
		// every older one was fsync'd in full before it got an index.
		size, err := seg.Size()
		if err != nil {
			return nil, err
		}
		recs, err := index.LoadSegment(b.journalDir, id, size)
		if err == nil {
			for _, r := range recs {
				table.Apply(r)
			}
			b.metrics.recovered.WithLabelValues("index").Inc()
			return recs, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			b.log.Warn("journal segment index unusable; scanning the segment", "segment", journal.Name(id), "err", err)
		}
	}
	b.metrics.recovered.WithLabelValues("scan").Inc()
	data, err := seg.ReadAll()
	if err != nil {
		return nil, err
	}
	var recs []index.Rec
	res := journal.Scan(data, 0, newest, b.seed(id), func(off, n int, r journal.Record) {
		recs = append(recs, indexRec(r, index.Loc{File: id, Off: uint32(off), Len: uint32(n)}))
	})
	var damaged []index.Rec
	for _, d := range res.Damaged {
		b.metrics.corruptions.Inc()
		b.log.Error("journal corruption: damaged record in durable data", "segment", journal.Name(id), "offset", d.Off, "bytes", d.Len)
		if c := d.Claimed; c != nil && c.Entry >= 0 {
			// Indexed so that reads of the entry get a Corruption error,
			// and marked so that it is not listed as held (ListEntries).
			r := index.Rec{Op: index.OpPut, Ledger: c.Ledger, Entry: c.Entry, LAC: ids.NoEntry,
				Loc: index.Loc{File: id, Off: uint32(d.Off), Len: uint32(d.Len)}}
			recs = append(recs, r)
			damaged = append(damaged, r)
		}
	}
	// Damaged regions are found after the records around them: back into
	// journal order, so that a later copy of an entry wins as it did live.
	slices.SortFunc(recs, func(x, y index.Rec) int { return cmp.Compare(x.Loc.Off, y.Loc.Off) })
	for _, r := range recs {
		table.Apply(r)
	}
	for _, r := range damaged {
		// Refused if a later copy in this segment moved the entry; one
		// in a later segment, applied next, clears the mark.
		if table.MarkDamaged(r.Ledger, r.Entry, r.Loc) {
			b.damaged.marks = append(b.damaged.marks, damageMark{ledger: r.Ledger, entry: r.Entry, loc: r.Loc})
		}
	}
	if newest && res.End < len(data) {
		if res.Torn {
			b.log.Warn("journal: torn tail truncated", "segment", journal.Name(id), "offset", res.End, "dropped_bytes", len(data)-res.End)
		}
		if err := seg.Truncate(int64(res.End)); err != nil {
			return nil, err
		}
	}
	// Sealed from now on: the new active segment comes after it (unless
	// none can be made: resumeSegment).
	return recs, index.SaveSegment(b.journalDir, id, recs)
}

// indexRec is what journal record r, stored at loc, means to the index.
func indexRec(r journal.Record, loc index.Loc) index.Rec {
	out := index.Rec{Ledger: r.Ledger, Entry: r.Entry, LAC: r.LAC, Loc: loc}
	switch r.Kind {
	case journal.KindEntry:
		out.Op = index.OpPut
	case journal.KindFence:
		out.Op = index.OpFence
	case journal.KindDelete:
		out.Op = index.OpDelete
	}
	return out
}

// startSegment creates segment id as the active one, and sets the index to
// cover the journal up to its start. It writes no zeros into it: a restart
// would otherwise wait for a whole segment of them (64 MiB) before serving;
// the spare made next, in the background, gets them.
func (b *Bookie) startSegment(table *index.Table, id uint32) error {
	seg, err := b.createSegment(id, false)
	if err != nil {
		return err
	}
	b.files.segs[id] = seg
	b.active, b.activeSince, b.activeLimit = seg, time.Now(), b.cfg.JournalFileBytes
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
	b.dropSpare()
	var err error
	if b.failure() == nil {
		err = b.checkpoint()
	}
	b.closeFiles()
	return err
}

// spareSegment is a segment created ahead of need, or why segment id
// could not be.
type spareSegment struct {
	seg *journal.Segment
	err error
	id  uint32
}

// prepareSpare creates segment id in the background for the next rotation,
// written with zeros or not (journal.Create).
func (b *Bookie) prepareSpare(id uint32, zeros bool) {
	b.spareWG.Go(func() {
		seg, err := b.createSegment(id, zeros)
		b.spare <- spareSegment{seg, err, id}
	})
}

// createSegment creates journal segment id and, when it writes zeros into
// it, records how fast they were written: the disk's sequential bandwidth
// as the journal sees it, for prewriteNext.
func (b *Bookie) createSegment(id uint32, zeros bool) (*journal.Segment, error) {
	if b.hooks.createSegment != nil {
		if err := b.hooks.createSegment(id, zeros); err != nil {
			return nil, err
		}
	}
	seg := b.recycle(id)
	if seg == nil {
		start := time.Now()
		var err error
		if seg, err = journal.Create(b.journalDir, id, b.cfg.JournalFileBytes, zeros); err != nil {
			return nil, err
		}
		zeros = zeros && seg.Direct() // no zeros without direct I/O
		b.metrics.segmentsCreated.WithLabelValues(strconv.FormatBool(zeros)).Inc()
		if zeros {
			b.zeroRate.Store(int64(float64(b.cfg.JournalFileBytes) / time.Since(start).Seconds()))
		}
	}
	// A segment was made: the next rotation will have one (a bookie
	// read-only for want of one is not any more).
	b.setCause(causeSegment, "")
	return seg, nil
}

// loadFree takes up the free segments a previous run kept, removing those
// beyond Config.JournalRecycleSegments.
func (b *Bookie) loadFree() error {
	ids, err := journal.ListFree(b.journalDir)
	if err != nil {
		return err
	}
	keep := max(0, min(len(ids), b.cfg.JournalRecycleSegments))
	for _, id := range ids[keep:] {
		if err := os.Remove(filepath.Join(b.journalDir, journal.FreeName(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if keep < len(ids) {
		if err := journal.SyncDir(b.journalDir); err != nil {
			return err
		}
	}
	b.free.ids = ids[:keep]
	b.metrics.freeSegments.Set(float64(keep))
	return nil
}

// recycle makes the oldest free segment, if there is one, segment id
// (journal.Recycle). One that fails is gone, and the next is tried. Only a
// free segment whose old id is below id will do (journal.ErrFreeID); free
// ids are reclaimed ones, below every live segment's, so this holds unless
// a directory was edited by hand.
func (b *Bookie) recycle(id uint32) *journal.Segment {
	for {
		b.free.Lock()
		if len(b.free.ids) == 0 || b.free.ids[0] >= id {
			b.free.Unlock()
			return nil
		}
		old := b.free.ids[0]
		b.free.ids = b.free.ids[1:]
		b.free.Unlock()
		b.metrics.freeSegments.Dec()
		seg, err := journal.Recycle(b.journalDir, old, id, b.cfg.JournalFileBytes)
		if err == nil {
			b.metrics.recycled.Inc()
			return seg
		}
		b.log.Warn("recycling a free journal segment failed", "free", journal.FreeName(old), "segment", journal.Name(id), "err", err)
	}
}

// letGo disposes of a reclaimed segment, whose index is gone: kept free
// for reuse if it holds seeded records only (its first record says so,
// journal.Seeded: a segment written before records were seeded must not be
// reused, its records would pass for new ones) and there is room, else
// removed.
func (b *Bookie) letGo(seg *journal.Segment) error {
	head := make([]byte, journal.HeaderSize)
	if err := seg.ReadAt(head, 0); err == nil && journal.Seeded(head) && b.keepFree(seg) {
		return nil
	}
	return seg.Remove(b.journalDir)
}

// keepFree sets seg aside for reuse (journal.Segment.Free) if fewer than
// Config.JournalRecycleSegments are, and reports whether it did.
func (b *Bookie) keepFree(seg *journal.Segment) bool {
	b.free.Lock()
	// A read-only bookie needs the space back more than a free segment.
	room := len(b.free.ids) < b.cfg.JournalRecycleSegments && !slices.Contains(b.free.ids, seg.ID) && !b.readOnly.Load()
	b.free.Unlock()
	if !room {
		return false
	}
	if err := seg.Free(b.journalDir); err != nil {
		b.log.Warn("keeping a journal segment for reuse failed; removing it", "segment", journal.Name(seg.ID), "err", err)
		return false
	}
	b.free.Lock()
	b.free.ids = append(b.free.ids, seg.ID)
	b.free.Unlock()
	b.metrics.freeSegments.Inc()
	return true
}

// prewriteNext reports whether the next segment should be written with
// zeros when created: when the journal filled its last segment at under a
// quarter of the rate at which zeros were last written, so that the zeros
// take at most that much more of the disk; or when that rate is not known.
// A journal written near the disk's bandwidth (large entries) would lose
// half of it to the zeros and gains little from them, its groups being
// large; a slower one halves its fdatasync latency for a small share of
// the disk (docs/bookie.md).
func prewriteNext(fillRate, zeroRate float64) bool {
	return zeroRate == 0 || 4*fillRate <= zeroRate
}

// dropSpare removes the unused spare segment once the writer has stopped.
// It is not kept free: the next start begins a segment under its id, and
// a free file and a live segment must never share an id (a later reclaim
// of the live one would take the free one's name).
func (b *Bookie) dropSpare() {
	b.spareWG.Wait()
	select {
	case s := <-b.spare:
		if s.err == nil {
			if err := s.seg.Remove(b.journalDir); err != nil {
				b.log.Warn("removing the spare journal segment", "segment", journal.Name(s.seg.ID), "err", err)
			}
		}
	default:
	}
}

// closeFiles closes the segments, then lets go of the data directory.
func (b *Bookie) closeFiles() {
	b.files.Lock()
	defer b.files.Unlock()
	for id, s := range b.files.segs {
		s.Close()
		delete(b.files.segs, id)
	}
	if b.lock != nil {
		b.lock.Close() // releases the flock
		b.lock = nil
	}
}

// lockDataDir takes an exclusive flock on dir/LOCK, held while the bookie
// is open: two bookies on one journal would write over each other's
// records (and both create JOURNAL_KEY). The kernel drops the lock when
// the process dies, so a crash leaves nothing to clean up.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("bookie: data directory %s is in use by another bookie (its LOCK file is held)", dir)
		}
		return nil, fmt.Errorf("bookie: lock %s: %w", dir, err)
	}
	return f, nil
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
