package bookie

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

func testConfig(dir string) Config {
	return Config{
		DataDir:            dir,
		MaxEntryBytes:      256 << 10,
		GroupMaxBytes:      64 << 10,
		JournalFileBytes:   1 << 20,
		CheckpointInterval: time.Hour,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func openBookie(t *testing.T, cfg Config) *Bookie {
	t.Helper()
	b, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func payload(l ids.LedgerID, e ids.EntryID, n int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(l))
	binary.LittleEndian.PutUint64(seed[8:], uint64(e))
	p := make([]byte, n)
	rand.NewChaCha8(seed).Read(p)
	return p
}

func mustAdd(t *testing.T, b *Bookie, l ids.LedgerID, e, lac ids.EntryID, n int) {
	t.Helper()
	if err := b.Add(context.Background(), Entry{Ledger: l, ID: e, LAC: lac, Payload: payload(l, e, n)}); err != nil {
		t.Fatalf("add %d:%d: %v", l, e, err)
	}
}

func mustRead(t *testing.T, b *Bookie, l ids.LedgerID, e ids.EntryID, n int) {
	t.Helper()
	got, err := b.Read(l, e)
	if err != nil {
		t.Fatalf("read %d:%d: %v", l, e, err)
	}
	if !bytes.Equal(got.Payload, payload(l, e, n)) {
		t.Fatalf("read %d:%d: payload differs", l, e)
	}
}

// reopen closes b and opens the same directory again. With noCheckpoint the
// checkpoints are removed first, so the whole journal is replayed.
func reopen(t *testing.T, b *Bookie, noCheckpoint bool) *Bookie {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if noCheckpoint {
		removeCheckpoints(t, b.cfg.DataDir)
	}
	return openBookie(t, b.cfg)
}

func removeCheckpoints(t *testing.T, dir string) {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*"))
	for _, m := range ms {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAddedEntriesReadBackByteIdentical(t *testing.T) {
	b := openBookie(t, testConfig(t.TempDir()))
	for e := range ids.EntryID(20) {
		mustAdd(t, b, 7, e, e-1, 100+int(e)*1000)
	}
	for e := range ids.EntryID(20) {
		mustRead(t, b, 7, e, 100+int(e)*1000)
	}
	var got []ids.EntryID
	err := b.ReadRange(context.Background(), 7, 3, 9, 0, func(e Entry) error {
		if !bytes.Equal(e.Payload, payload(7, e.ID, 100+int(e.ID)*1000)) {
			t.Fatalf("range entry %d differs", e.ID)
		}
		got = append(got, e.ID)
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[3 4 5 6 7 8 9]" {
		t.Fatalf("range: %v %v", got, err)
	}
	info, err := b.ReadLAC(context.Background(), 7, 0, 0)
	if err != nil || info.LAC != 18 || info.Last != 19 || info.Fenced {
		t.Fatalf("lac: %+v %v", info, err)
	}
	if _, err := b.Read(7, 20); !errors.Is(err, ErrEntryNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	if _, err := b.Read(8, 0); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("unknown ledger: %v", err)
	}
}

func TestReadRangeStopsAtMaxBytesAndAtMissingEntry(t *testing.T) {
	b := openBookie(t, testConfig(t.TempDir()))
	for e := range ids.EntryID(10) {
		mustAdd(t, b, 1, e, e-1, 1000)
	}
	n := 0
	err := b.ReadRange(context.Background(), 1, 0, 9, 2500, func(Entry) error { n++; return nil })
	if err != nil || n != 3 {
		t.Fatalf("max bytes: sent %d, err %v; want 3 entries", n, err)
	}
	n = 0
	err = b.ReadRange(context.Background(), 1, 8, 12, 0, func(Entry) error { n++; return nil })
	if !errors.Is(err, ErrEntryNotFound) || n != 2 {
		t.Fatalf("missing: sent %d, err %v", n, err)
	}
}

func TestAcknowledgedEntriesSurviveRestart(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("full-replay=%v", replay), func(t *testing.T) {
			b := openBookie(t, testConfig(t.TempDir()))
			// 40 entries of 60 KiB span several 1 MiB segments.
			for e := range ids.EntryID(40) {
				mustAdd(t, b, 3, e, e-1, 60<<10)
			}
			b = reopen(t, b, replay)
			for e := range ids.EntryID(40) {
				mustRead(t, b, 3, e, 60<<10)
			}
			mustAdd(t, b, 3, 40, 39, 10)
			b = reopen(t, b, replay)
			mustRead(t, b, 3, 40, 10)
			if info, _ := b.ReadLAC(context.Background(), 3, 0, 0); info.LAC != 39 || info.Last != 40 {
				t.Fatalf("lac after restart: %+v", info)
			}
		})
	}
}

// lastRecord returns the segment path and location of entry e.
func recordFile(t *testing.T, b *Bookie, l ids.LedgerID, e ids.EntryID) (string, int64, int) {
	t.Helper()
	loc, err := b.lookup(l, e)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(b.journalDir, journal.Name(loc.File)), int64(loc.Off), int(loc.Len)
}

func damage(t *testing.T, path string, off int64, fn func([]byte)) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	fn(buf)
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

func TestTornTailIsTruncatedAndEverythingBeforeItServed(t *testing.T) {
	cases := map[string]func(path string, off int64, n int) error{
		"truncated-mid-record": func(path string, off int64, n int) error { return os.Truncate(path, off+int64(n)/2) },
		"payload-flipped": func(path string, off int64, n int) error {
			damage(t, path, off+journal.HeaderSize+3, func(b []byte) { b[0] ^= 0xff })
			return nil
		},
		"header-zeroed": func(path string, off int64, n int) error {
			damage(t, path, off, func(b []byte) { clear(b[:journal.HeaderSize]) })
			return nil
		},
	}
	for name, tear := range cases {
		t.Run(name, func(t *testing.T) {
			b := openBookie(t, testConfig(t.TempDir()))
			for e := range ids.EntryID(10) {
				mustAdd(t, b, 5, e, e-1, 200)
			}
			path, off, n := recordFile(t, b, 5, 9)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			removeCheckpoints(t, b.cfg.DataDir) // a crash before any checkpoint
			if err := tear(path, off, n); err != nil {
				t.Fatal(err)
			}
			b = openBookie(t, b.cfg)
			for e := range ids.EntryID(9) {
				mustRead(t, b, 5, e, 200)
			}
			if _, err := b.Read(5, 9); !errors.Is(err, ErrEntryNotFound) {
				t.Fatalf("torn entry: %v, want not found", err)
			}
			if info, _ := b.ReadLAC(context.Background(), 5, 0, 0); info.Last != 8 || info.LAC != 7 {
				t.Fatalf("lac after torn tail: %+v", info)
			}
			mustAdd(t, b, 5, 9, 8, 200)
			b = reopen(t, b, true)
			for e := range ids.EntryID(10) {
				mustRead(t, b, 5, e, 200)
			}
		})
	}
}

func TestFlippedByteInAcknowledgedRecordReadsAsCorruption(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("full-replay=%v", replay), func(t *testing.T) {
			b := openBookie(t, testConfig(t.TempDir()))
			for e := range ids.EntryID(10) {
				mustAdd(t, b, 2, e, e-1, 300)
			}
			path, off, _ := recordFile(t, b, 2, 4)
			damage(t, path, off+journal.HeaderSize+10, func(p []byte) { p[0] ^= 0x01 })
			if _, err := b.Read(2, 4); !errors.Is(err, ErrCorruption) {
				t.Fatalf("read of damaged entry while running: %v, want corruption", err)
			}
			err := b.ReadRange(context.Background(), 2, 0, 9, 0, func(e Entry) error {
				if e.ID >= 4 {
					t.Fatalf("range handed out entry %d at or past the damage", e.ID)
				}
				return nil
			})
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("range over damage: %v", err)
			}
			b = reopen(t, b, replay)
			if _, err := b.Read(2, 4); !errors.Is(err, ErrCorruption) {
				t.Fatalf("read of damaged entry after restart: %v, want corruption", err)
			}
			for _, e := range []ids.EntryID{0, 3, 5, 9} {
				mustRead(t, b, 2, e, 300)
			}
		})
	}
}

func TestAddsAfterFenceFailAndFenceSurvivesRestart(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("full-replay=%v", replay), func(t *testing.T) {
			ctx := context.Background()
			b := openBookie(t, testConfig(t.TempDir()))
			mustAdd(t, b, 4, 0, -1, 10)
			mustAdd(t, b, 4, 1, 0, 10)
			lac, last, err := b.Fence(ctx, 4)
			if err != nil || lac != 0 || last != 1 {
				t.Fatalf("fence: %d %d %v", lac, last, err)
			}
			if err := b.Add(ctx, Entry{Ledger: 4, ID: 2, LAC: 1, Payload: []byte("x")}); !errors.Is(err, ErrFenced) {
				t.Fatalf("add after fence: %v, want fenced", err)
			}
			if err := b.Add(ctx, Entry{Ledger: 4, ID: 2, LAC: 1, Payload: payload(4, 2, 10), Recovery: true}); err != nil {
				t.Fatalf("recovery add after fence: %v", err)
			}
			// Fencing an unknown ledger fences it too.
			if lac, last, err := b.Fence(ctx, 99); err != nil || lac != -1 || last != -1 {
				t.Fatalf("fence unknown: %d %d %v", lac, last, err)
			}
			b = reopen(t, b, replay)
			for _, l := range []ids.LedgerID{4, 99} {
				if err := b.Add(ctx, Entry{Ledger: l, ID: 3, LAC: 1, Payload: []byte("x")}); !errors.Is(err, ErrFenced) {
					t.Fatalf("add to ledger %d after restart: %v, want fenced", l, err)
				}
			}
			mustRead(t, b, 4, 2, 10)
			if info, _ := b.ReadLAC(ctx, 4, 0, 0); !info.Fenced || info.Last != 2 {
				t.Fatalf("lac info after restart: %+v", info)
			}
		})
	}
}

func TestAddsRacingAFenceNeverAckPastReturnedLastEntry(t *testing.T) {
	b := openBookie(t, testConfig(t.TempDir()))
	ctx := context.Background()
	for round := range 20 {
		l := ids.LedgerID(100 + round)
		var next atomic.Int64
		var mu sync.Mutex
		var acked []ids.EntryID
		var wg sync.WaitGroup
		fenced := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				for {
					e := ids.EntryID(next.Add(1) - 1)
					err := b.Add(ctx, Entry{Ledger: l, ID: e, LAC: e - 1, Payload: []byte("racing")})
					if errors.Is(err, ErrFenced) {
						return
					}
					if err != nil {
						t.Errorf("add: %v", err)
						return
					}
					mu.Lock()
					acked = append(acked, e)
					mu.Unlock()
					select {
					case <-fenced:
					default:
					}
				}
			})
		}
		for next.Load() < int64(5+round*3) {
			time.Sleep(100 * time.Microsecond) // let some adds through before fencing
		}
		_, last, err := b.Fence(ctx, l)
		close(fenced)
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, e := range acked {
			if e > last {
				t.Fatalf("round %d: entry %d acknowledged, fence returned last entry %d", round, e, last)
			}
		}
		if err := b.Add(ctx, Entry{Ledger: l, ID: ids.EntryID(next.Load()), Payload: []byte("late")}); !errors.Is(err, ErrFenced) {
			t.Fatalf("add after fence: %v", err)
		}
	}
}

func TestDeletedLedgerUnreadableAtOnceAndAfterRestart(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("full-replay=%v", replay), func(t *testing.T) {
			ctx := context.Background()
			b := openBookie(t, testConfig(t.TempDir()))
			mustAdd(t, b, 6, 0, -1, 10)
			mustAdd(t, b, 7, 0, -1, 10)
			if err := b.Delete(ctx, 6); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Read(6, 0); !errors.Is(err, ErrLedgerNotFound) {
				t.Fatalf("read after delete: %v", err)
			}
			if err := b.Add(ctx, Entry{Ledger: 6, ID: 1, Payload: []byte("x"), Recovery: true}); !errors.Is(err, ErrLedgerNotFound) {
				t.Fatalf("add after delete: %v", err)
			}
			b = reopen(t, b, replay)
			if _, err := b.Read(6, 0); !errors.Is(err, ErrLedgerNotFound) {
				t.Fatalf("read after restart: %v", err)
			}
			if _, err := b.ReadLAC(ctx, 6, 0, 0); !errors.Is(err, ErrLedgerNotFound) {
				t.Fatalf("lac after restart: %v", err)
			}
			mustRead(t, b, 7, 0, 10)
		})
	}
}

func TestSegmentReclaimedWhenItHoldsNoLiveEntry(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = -1
	b := openBookie(t, cfg)
	mustAdd(t, b, 20, 0, -1, 100) // ledger 20 lives in the first segment
	for e := range ids.EntryID(60) {
		mustAdd(t, b, 21, e, e-1, 60<<10) // ~3.6 MiB: several segments
	}
	before, _ := journal.List(b.journalDir)
	if len(before) < 4 {
		t.Fatalf("want several segments, got %v", before)
	}
	if err := b.Delete(ctx, 21); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, b, 22, 0, -1, 10)
	for range 2 { // both checkpoint slots must cover a segment before it goes
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
		mustAdd(t, b, 22, 1, 0, 10)
	}
	after, _ := journal.List(b.journalDir)
	if len(after) >= len(before) || after[0] != before[0] {
		t.Fatalf("segments before %v after %v: want the first kept (live entry) and the rest of ledger 21's reclaimed", before, after)
	}
	idx, _ := filepath.Glob(filepath.Join(b.journalDir, "*.idx"))
	if len(idx) >= len(after) {
		t.Fatalf("%d segment indexes for %d segments (the active one has none): reclaimed segments' indexes left behind", len(idx), len(after))
	}
	mustRead(t, b, 20, 0, 100)
	b = reopen(t, b, false)
	mustRead(t, b, 20, 0, 100)
	if _, err := b.Read(21, 0); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("deleted ledger after reclaim and restart: %v", err)
	}
}

// A deleted ledger's state is dropped once no segment that may hold one of
// its records is left, so checkpoints do not grow with every ledger ever
// deleted; a ledger whose delete record is still on disk keeps its
// tombstone; and neither comes back after a restart.
func TestDeletedLedgerForgottenOnceItsSegmentsAreReclaimed(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.CompactLiveFraction = -1
	b := openBookie(t, cfg)
	for _, l := range []ids.LedgerID{30, 31} { // each ~3.6 MiB: several segments
		for e := range ids.EntryID(60) {
			mustAdd(t, b, l, e, e-1, 60<<10)
		}
		if err := b.Delete(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// Move the journal position twice with records that hold no entry, so
	// that both checkpoint slots lie in the segment of 31's delete record.
	for l := ids.LedgerID(90); l < 92; l++ {
		if _, _, err := b.Fence(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	state := func(b *Bookie, l ids.LedgerID) *index.Ledger {
		b.mu.RLock()
		defer b.mu.RUnlock()
		return b.mu.table.Get(l)
	}
	b.files.RLock()
	open := len(b.files.segs)
	b.files.RUnlock()
	if open != 1 {
		t.Fatalf("%d segments open: want only the active one left", open)
	}
	if led := state(b, 30); led != nil {
		t.Fatalf("ledger 30 still known after its segments were reclaimed: %+v", led)
	}
	if led := state(b, 31); led == nil || !led.Deleted {
		t.Fatalf("ledger 31, whose delete record is in the active segment: %+v", led)
	}
	// The checkpoints above were written before the reclaim that followed
	// them: one more shows what a checkpoint holds now.
	if _, _, err := b.Fence(ctx, 92); err != nil {
		t.Fatal(err)
	}
	if err := b.checkpoint(); err != nil {
		t.Fatal(err)
	}
	cps, _, err := index.Load(cfg.DataDir)
	if err != nil || len(cps) == 0 || cps[0].Table.Get(30) != nil {
		t.Fatalf("newest checkpoint still holds ledger 30 (%v)", err)
	}
	b = reopen(t, b, false)
	if led := state(b, 30); led != nil {
		t.Fatalf("ledger 30 back after a restart: %+v", led)
	}
	if led := state(b, 31); led == nil || !led.Deleted {
		t.Fatalf("ledger 31 after a restart: %+v", led)
	}
	for _, l := range []ids.LedgerID{30, 31} {
		if _, err := b.Read(l, 0); !errors.Is(err, ErrLedgerNotFound) {
			t.Fatalf("read of deleted ledger %d: %v", l, err)
		}
	}
}

func TestReadLACLongPollWakesWhenLACAdvances(t *testing.T) {
	ctx := context.Background()
	b := openBookie(t, testConfig(t.TempDir()))
	got := make(chan LACInfo, 1)
	go func() {
		info, err := b.ReadLAC(ctx, 9, -1, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- info
	}()
	mustAdd(t, b, 9, 0, -1, 10) // LAC stays -1: the waiter keeps waiting
	mustAdd(t, b, 9, 1, 0, 10)
	select {
	case info := <-got:
		if info.LAC != 0 || info.Last < 0 {
			t.Fatalf("woken with %+v", info)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll not woken by a LAC advance")
	}
	info, err := b.ReadLAC(ctx, 9, 0, 10*time.Millisecond) // times out: same LAC
	if err != nil || info.LAC != 0 {
		t.Fatalf("timed out poll: %+v %v", info, err)
	}
}

func TestBadEntriesGetTypedErrorsAndChangeNothing(t *testing.T) {
	ctx := context.Background()
	b := openBookie(t, testConfig(t.TempDir()))
	cases := []struct {
		e    Entry
		want error
	}{
		{Entry{Ledger: 0, ID: 0}, ErrInvalidArgument},
		{Entry{Ledger: 1, ID: -1}, ErrInvalidArgument},
		{Entry{Ledger: 1, ID: 0, LAC: -2}, ErrInvalidArgument},
		{Entry{Ledger: 1, ID: 0, Payload: make([]byte, 256<<10+1)}, ErrTooLarge},
	}
	for _, c := range cases {
		if err := b.Add(ctx, c.e); !errors.Is(err, c.want) {
			t.Fatalf("add %+v: %v, want %v", c.e.ID, err, c.want)
		}
	}
	if _, err := b.Read(1, 0); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("bad adds changed state: %v", err)
	}
}

func TestCloseAnswersQueuedAddsAndRejectsLaterOnes(t *testing.T) {
	b := openBookie(t, testConfig(t.TempDir()))
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := range 200 {
		wg.Add(1)
		err := b.AddAsync(context.Background(), Entry{Ledger: 1, ID: ids.EntryID(i), LAC: -1, Payload: []byte("q")}, func(err error) {
			if err == nil {
				acked.Add(1)
			}
			wg.Done()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if acked.Load() != 200 {
		t.Fatalf("acked %d of 200 queued adds", acked.Load())
	}
	if err := b.Add(context.Background(), Entry{Ledger: 1, ID: 500}); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

func TestCompactionMovesSparseSegmentsLiveEntriesAndReclaimsIt(t *testing.T) {
	ctx := context.Background()
	b := openBookie(t, testConfig(t.TempDir()))
	mustAdd(t, b, 30, 0, -1, 100) // a small live entry in the first segment
	if _, _, err := b.Fence(ctx, 30); err != nil {
		t.Fatal(err)
	}
	for e := range ids.EntryID(40) {
		mustAdd(t, b, 31, e, e-1, 60<<10)
	}
	if err := b.Delete(ctx, 31); err != nil {
		t.Fatal(err)
	}
	first, _ := journal.List(b.journalDir)
	// Checkpoint twice (both slots), compact, checkpoint twice: the first
	// segment's one live entry moves and the segment goes.
	for range 2 {
		mustAdd(t, b, 32, 0, -1, 10)
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.compact(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		mustAdd(t, b, 33, 0, -1, 10)
		if err := b.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := journal.List(b.journalDir)
	if after[0] == first[0] {
		t.Fatalf("segment %d not reclaimed after compaction: %v", first[0], after)
	}
	mustRead(t, b, 30, 0, 100)
	b = reopen(t, b, false)
	mustRead(t, b, 30, 0, 100)
	if info, _ := b.ReadLAC(ctx, 30, 0, 0); !info.Fenced || info.Last != 0 {
		t.Fatalf("ledger 30 after compaction and restart: %+v", info)
	}
	if err := b.Add(ctx, Entry{Ledger: 30, ID: 1, Payload: []byte("x")}); !errors.Is(err, ErrFenced) {
		t.Fatalf("fence lost by compaction: %v", err)
	}
}

// TestFenceWrittenButNotYetDurableRejectsLaterAdds holds the syncer before
// its fdatasync, so the fence is written but not durable when the next add
// is planned: the add must still be rejected, before the fence is answered.
func TestFenceWrittenButNotYetDurableRejectsLaterAdds(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	b, err := open(testConfig(t.TempDir()), testLogger(t), hooks{beforeSync: func() { <-gate }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { once.Do(func() { close(gate) }); b.Close() })
	ctx := context.Background()
	added := make(chan error, 1)
	if err := b.AddAsync(ctx, Entry{Ledger: 1, ID: 0, LAC: -1, Payload: []byte("a")}, func(err error) { added <- err }); err != nil {
		t.Fatal(err)
	}
	type fenceResult struct {
		last ids.EntryID
		err  error
	}
	fenced := make(chan fenceResult, 1)
	go func() {
		_, last, err := b.Fence(ctx, 1)
		fenced <- fenceResult{last, err}
	}()
	// Wait until the fence is planned (written, not durable: the syncer is held).
	for deadline := time.Now().Add(20 * time.Second); ; {
		b.mu.RLock()
		f := b.mu.planned[1].fenced
		b.mu.RUnlock()
		if f {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fence never written")
		}
		time.Sleep(time.Millisecond)
	}
	late := make(chan error, 1)
	if err := b.AddAsync(ctx, Entry{Ledger: 1, ID: 1, LAC: 0, Payload: []byte("b")}, func(err error) { late <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-late:
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("add after a written fence: %v, want fenced", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("add after a written fence was not rejected at once: it waits for an fdatasync, so it was accepted")
	}
	select {
	case r := <-fenced:
		t.Fatalf("fence answered before its fdatasync: %+v", r)
	case err := <-added:
		t.Fatalf("add answered before its fdatasync: %v", err)
	default:
	}
	once.Do(func() { close(gate) })
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if r := <-fenced; r.err != nil || r.last != 0 {
		t.Fatalf("fence: %+v", r)
	}
}

func TestMetricsCountAddsByResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t.TempDir())
	cfg.Registerer = reg
	b := openBookie(t, cfg)
	for e := range ids.EntryID(3) {
		mustAdd(t, b, 1, e, e-1, 10)
	}
	if _, _, err := b.Fence(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	b.Add(context.Background(), Entry{Ledger: 1, ID: 3, Payload: []byte("x")})
	if got := counterValue(b.metrics.adds.WithLabelValues("OK")); got != 3 {
		t.Fatalf("ok adds: %v", got)
	}
	if got := counterValue(b.metrics.adds.WithLabelValues("FENCED")); got != 1 {
		t.Fatalf("fenced adds: %v", got)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "strata_bookie_journal_fsync_seconds" && f.GetMetric()[0].GetHistogram().GetSampleCount() > 0 {
			return
		}
	}
	t.Fatal("no fdatasync observed in strata_bookie_journal_fsync_seconds")
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

// TestFsyncFailureStopsAllWrites: after one failed fdatasync nothing more is
// acknowledged (the page cache state is unknown), reads go on, and Health
// reports not ready.
func TestFsyncFailureStopsAllWrites(t *testing.T) {
	var failing atomic.Bool
	b, err := open(testConfig(t.TempDir()), testLogger(t), hooks{syncErr: func() error {
		if failing.Load() {
			return errors.New("injected EIO")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	mustAdd(t, b, 1, 0, -1, 10)
	failing.Store(true)
	if err := b.Add(ctx, Entry{Ledger: 1, ID: 1, LAC: 0, Payload: []byte("x")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("add with failing fsync: %v, want unavailable", err)
	}
	failing.Store(false)
	if err := b.Add(ctx, Entry{Ledger: 1, ID: 2, LAC: 0, Payload: []byte("y")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("add after a failed fsync: %v, want unavailable", err)
	}
	if _, _, err := b.Fence(ctx, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fence after a failed fsync: %v, want unavailable", err)
	}
	mustRead(t, b, 1, 0, 10)
	if _, err := b.Read(1, 1); !errors.Is(err, ErrEntryNotFound) {
		t.Fatalf("entry of the failed group: %v, want not found", err)
	}
	h, _ := (&service{b: b}).Health(ctx, nil)
	if h.Ready {
		t.Fatal("health ready after a failed fsync")
	}
}

// Two bookies never open one data directory at once (they would write
// over each other's records): the second is refused while the first is
// open, and opens once it is closed.
func TestSecondBookieOnAnOpenDataDirectoryIsRefused(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg)
	if r, err := Open(cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "in use") {
		if r != nil {
			r.Close()
		}
		t.Fatalf("a second bookie on an open data directory: %v, want it refused", err)
	}
	mustAdd(t, b, 1, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	r := openBookie(t, cfg)
	mustRead(t, r, 1, 0, 100)
}
