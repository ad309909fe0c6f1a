package bookie

import (
	"context"
	"errors"
	"fmt"
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
	for deadline := time.Now().Add(20 * time.Second); countRecords(t, seg, b.seed(b.active.ID)) < 15; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records written", countRecords(t, seg, b.seed(b.active.ID)))
		}
	}
	once.Do(func() { close(release) })
	wg.Wait()
	path, off, _ := recordFile(t, b, 5, 5)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The crash: the spare exists, and the held groups never reached the
	// disk whole (the first record of the first one is zeros). The spare
	// even holds bytes past its first page, as when its own first group
	// reached the disk in part: its first page is zeros, so nothing in it
	// was ever durable.
	segs, _ := journal.List(b.journalDir)
	spare, err := journal.Create(b.journalDir, segs[len(segs)-1]+1, cfg.JournalFileBytes, true)
	if err != nil {
		t.Fatal(err)
	}
	spare.Close()
	sparePath := filepath.Join(b.journalDir, journal.Name(spare.ID))
	damage(t, sparePath, 4096, func(x []byte) {
		for i := range x {
			x[i] = 0xAB
		}
	})
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

func countRecords(t *testing.T, path string, seed journal.Seed) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	journal.Scan(data, 0, true, seed, func(int, int, journal.Record) { n++ })
	return n
}

// A clean close removes the spare segment, and a restart after one
// starts the next segment right after the last written one.
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
	if free, _ := journal.ListFree(b.journalDir); len(free) != 0 {
		t.Fatalf("free segments %v after close: the spare was kept under the id the next start begins with", free)
	}
	b = openBookie(t, cfg)
	if b.active.ID != active+1 {
		t.Fatalf("new active segment %d, want %d", b.active.ID, active+1)
	}
	mustRead(t, b, 3, 79, 20<<10)
}

// The next segment is written with zeros only while the journal fills
// segments at under a quarter of the rate zeros were last written at.
func TestPrewriteNextOnlyWhenTheJournalFillsSlowly(t *testing.T) {
	for _, c := range []struct {
		fill, zero float64
		want       bool
	}{
		{fill: 10e6, zero: 0, want: true}, // zero rate not known yet
		{fill: 10e6, zero: 1e9, want: true},
		{fill: 250e6, zero: 1e9, want: true},
		{fill: 251e6, zero: 1e9, want: false},
		{fill: 600e6, zero: 1e9, want: false},
	} {
		if got := prewriteNext(c.fill, c.zero); got != c.want {
			t.Errorf("prewriteNext(fill %g B/s, zeros %g B/s) = %v, want %v", c.fill, c.zero, got, c.want)
		}
	}
}

// creations records the segments a bookie creates and can fail some.
type creations struct {
	sync.Mutex
	made []creation
	fail map[uint32]int // id → creations of it left to fail
}

type creation struct {
	id    uint32
	zeros bool
}

func (c *creations) hook(id uint32, zeros bool) error {
	c.Lock()
	defer c.Unlock()
	if c.fail[id] > 0 {
		c.fail[id]--
		return errors.New("injected: no space left on device")
	}
	c.made = append(c.made, creation{id, zeros})
	return nil
}

func (c *creations) list() []creation {
	c.Lock()
	defer c.Unlock()
	return append([]creation(nil), c.made...)
}

// The spare made at rotation is written with zeros when the segment before
// it filled slowly compared with the zero-writing rate, and not when it
// filled fast (the rate is set by hand here, so the outcome does not
// depend on this machine's disk).
func TestSpareWrittenWithZerosOnlyAfterASlowlyFilledSegment(t *testing.T) {
	for _, slow := range []bool{true, false} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) {
			c := &creations{}
			b, err := open(testConfig(t.TempDir()), testLogger(t), hooks{createSegment: c.hook})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			// The first segment (no zeros, so that opening does not wait for
			// them) and the first spare (rate not known yet: zeros). Once the
			// spare is made (it stores its own measured rate), set the rate
			// by hand.
			b.spareWG.Wait()
			rate := 1.0 // 1 B/s: any segment fills faster than a quarter of it
			if slow {
				rate = 1e18
			}
			b.zeroRate.Store(int64(rate))
			for e := range ids.EntryID(20) { // 1.2 MiB: one rotation
				mustAdd(t, b, 3, e, e-1, 60<<10)
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(c.list()) < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			got := c.list()
			if len(got) < 3 {
				t.Fatalf("segments created: %v, want the first, its spare and the next spare", got)
			}
			if got[0].zeros || !got[1].zeros || got[2].zeros != slow {
				t.Fatalf("segments created %v: want zeros in the second only and zeros=%v in the third", got, slow)
			}
		})
	}
}

// A spare whose creation failed (a full disk, say) is created again by the
// rotation that needs it, and no add is lost.
func TestRotationCreatesAgainASpareThatFailed(t *testing.T) {
	c := &creations{fail: map[uint32]int{2: 1}}
	cfg := testConfig(t.TempDir())
	b, err := open(cfg, testLogger(t), hooks{createSegment: c.hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for e := range ids.EntryID(40) { // 2.4 MiB: two rotations
		mustAdd(t, b, 4, e, e-1, 60<<10)
	}
	if segs, _ := journal.List(b.journalDir); len(segs) < 3 || segs[1] != 2 {
		t.Fatalf("segments %v: want segment 2 created at rotation and used", segs)
	}
	b = reopen(t, b, false)
	for e := range ids.EntryID(40) {
		mustRead(t, b, 4, e, 60<<10)
	}
}
