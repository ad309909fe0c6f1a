package bookie

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// A rotation takes a segment created ahead of need. After a crash that
// spare is the newest file while the segment written last, which may have
// a torn tail, is the one before it: recovery must remove the unused spare
// and apply the torn-tail rules to the segment really written last. Here a
// group of adds is torn at its first record while later records of the same
// group are intact (their sync marks do not prove the tear durable): that
// is a torn tail to truncate, not corruption in durable data.
func TestUnusedSpareSegmentDoesNotHideTheTornTailOfTheSegmentWrittenLast(t *testing.T) {
	cfg := testConfig(t.TempDir())
	var hold atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	b, err := open(cfg, testLogger(t), hooks{beforeSync: func() {
		if hold.Load() {
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { once.Do(func() { close(release) }); b.Close() })
	for e := range ids.EntryID(5) {
		mustAdd(t, b, 5, e, e-1, 200)
	}
	// Hold the syncer so that the next adds are written in groups that all
	// carry the same sync mark.
	hold.Store(true)
	var wg sync.WaitGroup
	for e := ids.EntryID(5); e < 15; e++ {
		wg.Add(1)
		if err := b.AddAsync(context.Background(), Entry{Ledger: 5, ID: e, LAC: e - 1, Payload: payload(5, e, 200)}, func(error) { wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	seg := filepath.Join(b.journalDir, journal.Name(b.active.ID))
	for deadline := time.Now().Add(20 * time.Second); countRecords(t, seg) < 15; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records written", countRecords(t, seg))
		}
	}
	once.Do(func() { close(release) })
	wg.Wait()
	path, off, _ := recordFile(t, b, 5, 5)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The crash: the spare exists, and the held groups never reached the
	// disk whole (the first record of the first one is zeros).
	segs, _ := journal.List(b.journalDir)
	spare, err := journal.Create(b.journalDir, segs[len(segs)-1]+1, cfg.JournalFileBytes)
	if err != nil {
		t.Fatal(err)
	}
	spare.Close()
	damage(t, path, off, func(x []byte) { clear(x[:journal.HeaderSize]) })

	r := openBookie(t, cfg)
	for e := range ids.EntryID(5) {
		mustRead(t, r, 5, e, 200)
	}
	for e := ids.EntryID(5); e < 15; e++ {
		if _, err := r.Read(5, e); !errors.Is(err, ErrEntryNotFound) {
			t.Fatalf("entry %d of the torn group: %v, want not found (truncated tail)", e, err)
		}
	}
	if c := counterValue(r.metrics.corruptions); c != 0 {
		t.Fatalf("%v corruptions reported: the torn tail was taken for damage in a sealed segment", c)
	}
	mustAdd(t, r, 5, 5, 4, 200)
}

func countRecords(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	journal.Scan(data, 0, true, func(int, int, journal.Record) { n++ })
	return n
}

// A clean close leaves no spare behind, and a restart after one starts
// the next segment right after the last written one.
func TestCloseRemovesTheSpareSegment(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBookie(t, cfg)
	for e := range ids.EntryID(80) {
		mustAdd(t, b, 3, e, e-1, 20<<10) // a rotation or two
	}
	active := b.active.ID
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := journal.List(b.journalDir)
	if segs[len(segs)-1] != active {
		t.Fatalf("segments %v after close, active was %d: a spare was left", segs, active)
	}
	b = openBookie(t, cfg)
	if b.active.ID != active+1 {
		t.Fatalf("new active segment %d, want %d", b.active.ID, active+1)
	}
	mustRead(t, b, 3, 79, 20<<10)
}
