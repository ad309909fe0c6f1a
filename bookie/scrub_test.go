package bookie

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// scrubConfig is testConfig with metrics, no periodic scrub and no rate
// bound: each test runs the passes it needs.
func scrubConfig(t *testing.T) (Config, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t.TempDir())
	cfg.Registerer, cfg.ScrubInterval, cfg.ScrubBytesPerSecond = reg, -1, -1
	return cfg, reg
}

// reopenScrub closes b and opens its directory again (with every
// checkpoint removed if noCheckpoint), its metrics on a new registry.
func reopenScrub(t *testing.T, b *Bookie, noCheckpoint bool, flip func()) (*Bookie, *prometheus.Registry) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if noCheckpoint {
		removeCheckpoints(t, b.cfg.DataDir)
	}
	if flip != nil {
		flip()
	}
	cfg := b.cfg
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	return openBookie(t, cfg), reg
}

// listed answers ledger l's entries as ListEntries lists them, in process.
func listed(t *testing.T, b *Bookie, l ids.LedgerID) string {
	t.Helper()
	rs, next, err := b.ListEntries(l, 0, 1000)
	if err != nil || next != 1001 {
		t.Fatalf("list ledger %d: up to %d, %v", l, next, err)
	}
	out := ""
	for _, r := range rs {
		out += fmt.Sprintf(" %d-%d", r.First, r.Last)
	}
	return out
}

// scrubCounters reads the scrubber's counters off reg.
func scrubCounters(t *testing.T, reg *prometheus.Registry) (passes, bytes, damaged float64) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		v := f.GetMetric()[0].GetCounter().GetValue()
		switch f.GetName() {
		case "strata_bookie_scrub_passes_total":
			passes = v
		case "strata_bookie_scrub_bytes_total":
			bytes = v
		case "strata_bookie_scrub_damaged_entries_total":
			damaged = v
		}
	}
	return passes, bytes, damaged
}

// storedBytes sums the record lengths of entries 0..n-1 of ledger l.
func storedBytes(t *testing.T, b *Bookie, l ids.LedgerID, n int) int64 {
	t.Helper()
	var sum int64
	for e := range ids.EntryID(n) {
		_, _, size := recordFile(t, b, l, e)
		sum += int64(size)
	}
	return sum
}

// withLedger2 opens a bookie of scrubConfig holding entries 0..9 of
// ledger 2, 300 bytes each, and answers where entry 4's record lies.
func withLedger2(t *testing.T) (cfg Config, reg *prometheus.Registry, b *Bookie, path string, off int64) {
	t.Helper()
	cfg, reg = scrubConfig(t)
	b = openBookie(t, cfg)
	for e := range ids.EntryID(10) {
		mustAdd(t, b, 2, e, e-1, 300)
	}
	path, off, _ = recordFile(t, b, 2, 4)
	return cfg, reg, b, path, off
}

// TestScrubFindsAByteFlippedInAnAcknowledgedRecordAndMarksItDamaged: a
// byte flipped in an acknowledged record on disk, while the bookie runs or
// while it is down (the record then in a sealed segment, which a restart
// reads from its segment index without reading the record), is still
// listed as stored until a scrub pass reads it: the pass finds it, counts
// it, marks it damaged so that ListEntries leaves it out, and leaves every
// intact record listed and readable. A later pass does not count it
// again. The ledger fenced, a plain add of the damaged entry is still
// refused; a recovery add (the ledger check's copy) replaces it, and the
// entry is listed and read byte-identical again.
func TestScrubFindsAByteFlippedInAnAcknowledgedRecordAndMarksItDamaged(t *testing.T) {
	for _, whileDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("flipped-while-down=%v", whileDown), func(t *testing.T) {
			ctx := context.Background()
			_, reg, b, path, off := withLedger2(t)
			if whileDown {
				// Seals the segment and writes its index; ledger 3 goes in
				// the next segment, so that this one stays sealed.
				b, _ = reopenScrub(t, b, false, nil)
			}
			for e := range ids.EntryID(5) {
				mustAdd(t, b, 3, e, e-1, 200)
			}
			total := storedBytes(t, b, 2, 10) + storedBytes(t, b, 3, 5)
			flip := func() { damage(t, path, off+journal.HeaderSize+10, func(p []byte) { p[0] ^= 0x01 }) }
			if whileDown {
				b, reg = reopenScrub(t, b, false, flip)
			} else {
				flip()
			}
			if got := listed(t, b, 2); got != " 0-9" {
				t.Fatalf("before a scrub ledger 2 lists%s, want the damaged entry still listed (nothing read it)", got)
			}

			st, err := b.Scrub(ctx)
			if err != nil || st != (ScrubStats{Entries: 15, Bytes: total, Damaged: 1}) {
				t.Fatalf("scrub: %+v %v; want 15 entries, %d bytes, 1 damaged", st, err, total)
			}
			if passes, bytes, damaged := scrubCounters(t, reg); passes != 1 || bytes != float64(total) || damaged != 1 {
				t.Fatalf("metrics: passes %v, bytes %v, damaged %v", passes, bytes, damaged)
			}
			if got, got3 := listed(t, b, 2), listed(t, b, 3); got != " 0-3 5-9" || got3 != " 0-4" {
				t.Fatalf("after the scrub ledger 2 lists%s and 3 lists%s; want 4 left out, nothing else", got, got3)
			}
			if _, err := b.Read(2, 4); !errors.Is(err, ErrCorruption) {
				t.Fatalf("read of the damaged entry: %v, want corruption", err)
			}
			for e := range ids.EntryID(10) {
				if e != 4 {
					mustRead(t, b, 2, e, 300)
				}
			}
			for e := range ids.EntryID(5) {
				mustRead(t, b, 3, e, 200)
			}
			if st, err := b.Scrub(ctx); err != nil || st.Entries != 14 || st.Damaged != 0 {
				t.Fatalf("second scrub: %+v %v; want the 14 intact entries and the damaged one not again", st, err)
			}

			if _, _, err := b.Fence(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if err := b.Add(ctx, Entry{Ledger: 2, ID: 4, LAC: 3, Payload: payload(2, 4, 300)}); !errors.Is(err, ErrFenced) {
				t.Fatalf("plain add of the damaged entry to the fenced ledger: %v, want fenced", err)
			}
			if got := listed(t, b, 2); got != " 0-3 5-9" {
				t.Fatalf("after a refused add ledger 2 lists%s", got)
			}
			if err := b.Add(ctx, Entry{Ledger: 2, ID: 4, LAC: 3, Payload: payload(2, 4, 300), Recovery: true}); err != nil {
				t.Fatalf("recovery add of the damaged entry: %v", err)
			}
			mustRead(t, b, 2, 4, 300)
			if newPath, newOff, _ := recordFile(t, b, 2, 4); newPath == path && newOff == off {
				t.Fatalf("the copy did not move the entry off its damaged record")
			}
			if got := listed(t, b, 2); got != " 0-9" {
				t.Fatalf("after the copy ledger 2 lists%s, want 0-9", got)
			}
			if st, err := b.Scrub(ctx); err != nil || st.Entries != 15 || st.Damaged != 0 {
				t.Fatalf("scrub after the copy: %+v %v; want 15 entries, none damaged", st, err)
			}
		})
	}
}

// TestAReadOrARestartThatMeetsADamagedRecordLeavesItOutOfTheListing: the
// damage a read answers with CORRUPTION, and the damage the scan at open
// finds, need no scrub pass to be left out of ListEntries.
func TestAReadOrARestartThatMeetsADamagedRecordLeavesItOutOfTheListing(t *testing.T) {
	cfg, reg := scrubConfig(t)
	b := openBookie(t, cfg)
	for e := range ids.EntryID(10) {
		mustAdd(t, b, 2, e, e-1, 300)
	}
	path, off, _ := recordFile(t, b, 2, 4)
	damage(t, path, off+journal.HeaderSize+10, func(p []byte) { p[0] ^= 0x01 })
	if _, err := b.Read(2, 4); !errors.Is(err, ErrCorruption) {
		t.Fatalf("read: %v, want corruption", err)
	}
	if got := listed(t, b, 2); got != " 0-3 5-9" {
		t.Fatalf("after the read ledger 2 lists%s, want 4 left out", got)
	}
	if _, _, damaged := scrubCounters(t, reg); damaged != 0 {
		t.Fatalf("the scrubber counted %v damaged entries; it did not run", damaged)
	}
	b, _ = reopenScrub(t, b, true, nil) // the segment is scanned: the scan finds the damage
	if got := listed(t, b, 2); got != " 0-3 5-9" {
		t.Fatalf("after a restart ledger 2 lists%s, want 4 left out", got)
	}
}

// fakeClock is the scrubber's clock in tests: it moves only when the
// scrubber waits, by what it waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
	waits int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	c.waits++
}

// TestScrubReadsNoFasterThanItsRate: over a pass of a store forty times
// the rate's burst, the scrubber's waits add up to what its rate
// requires for the bytes it read beyond the burst, and not more than the
// whole pass at that rate: counted on a clock that moves only by those
// waits, never timed.
func TestScrubReadsNoFasterThanItsRate(t *testing.T) {
	cfg, _ := scrubConfig(t)
	cfg.JournalFileBytes = 4 << 20
	cfg.ScrubBytesPerSecond = 1 << 20
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	b, err := open(cfg, testLogger(t), hooks{scrubNow: clock.Now, scrubSleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for e := range ids.EntryID(400) {
		mustAdd(t, b, 1, e, e-1, 100<<10)
	}
	st, err := b.Scrub(context.Background())
	if err != nil || st.Entries != 400 || st.Damaged != 0 {
		t.Fatalf("scrub: %+v %v", st, err)
	}
	rate := float64(cfg.ScrubBytesPerSecond)
	least := time.Duration(float64(st.Bytes-scrubBurst) / rate * float64(time.Second))
	most := time.Duration(float64(st.Bytes) / rate * float64(time.Second))
	if clock.slept < least-time.Millisecond || clock.slept > most+time.Millisecond {
		t.Fatalf("read %d bytes at %v bytes/s waiting %v in all (%d waits); want %v..%v", st.Bytes, rate, clock.slept, clock.waits, least, most)
	}
	if clock.waits < 300 {
		t.Fatalf("%d waits for 400 records past the burst; want one for nearly each", clock.waits)
	}
}

// TestCloseDuringAScrubReturnsPromptly: a periodic pass under way over a
// store it would take a minute to read at its rate, and a second pass
// asked for meanwhile (waiting for the first), both end when the bookie
// closes, and Close returns within seconds, the pass unfinished.
func TestCloseDuringAScrubReturnsPromptly(t *testing.T) {
	cfg, _ := scrubConfig(t)
	cfg.JournalFileBytes = 4 << 20
	b := openBookie(t, cfg)
	for e := range ids.EntryID(40) {
		mustAdd(t, b, 1, e, e-1, 100<<10)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Started again on the whole store: its first pass reads 4 MB.
	reg := prometheus.NewRegistry()
	cfg.Registerer, cfg.ScrubInterval, cfg.ScrubBytesPerSecond = reg, time.Millisecond, 64<<10
	b, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, bytes, _ := scrubCounters(t, reg); bytes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scrub pass began")
		}
	}
	asked := make(chan error, 1)
	go func() {
		_, err := b.Scrub(context.Background())
		asked <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s of a scrub pass")
	}
	select {
	case err := <-asked:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the scrub asked for during the pass: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scrub asked for did not end with the bookie")
	}
	if passes, _, _ := scrubCounters(t, reg); passes != 0 {
		t.Fatalf("%v passes completed; the pass under way cannot have finished", passes)
	}
}

// TestScrubPacerWaitsRarelyForSmallRecordsAndKeepsItsRate: records far
// smaller than a rate's 10 ms share go through without a wait each (a
// timer and a wake-up per 1 KiB record would take CPU from the adds), and
// the waits still add up to the rate over the pass.
func TestScrubPacerWaitsRarelyForSmallRecordsAndKeepsItsRate(t *testing.T) {
	const rate, records, size = 16 << 20, 100_000, 1 << 10
	now := time.Unix(1e9, 0)
	p := pacer{rate: rate, burst: scrubBurst, tokens: scrubBurst, last: now}
	waits, waited := 0, time.Duration(0)
	for range records {
		if d := p.take(now, size); d > 0 {
			waits++
			waited += d
			now = now.Add(d)
		}
	}
	least := time.Duration(float64(records*size-scrubBurst) / rate * float64(time.Second))
	if waited < least-minScrubWait || waited > least+minScrubWait {
		t.Fatalf("waited %v for %d bytes at %d bytes/s past a %d-byte burst; want %v within %v", waited, records*size, rate, scrubBurst, least, minScrubWait)
	}
	if most := int(least/minScrubWait) + 1; waits > most {
		t.Fatalf("%d waits for %d records of %d bytes; want at most %d", waits, records, size, most)
	}
}

// TestDamageMarksSurviveRestartsOfASealedSegment: a sealed segment is
// loaded at open from its segment index, its records not read, so a damage
// mark held in memory only was forgotten by a restart and the damaged
// entry listed as stored again, for the ledger check to count as held.
// The marks are stored (DataDir/DAMAGED): after two restarts, the second
// with a line of garbage in the file (dropped, the other marks kept), the
// entry is still left out; once a copy replaces it, a restart drops the
// mark.
func TestDamageMarksSurviveRestartsOfASealedSegment(t *testing.T) {
	ctx := context.Background()
	cfg, _, b, path, off := withLedger2(t)
	b, _ = reopenScrub(t, b, false, nil) // seals ledger 2's segment
	mustAdd(t, b, 3, 0, -1, 200)
	damage(t, path, off+journal.HeaderSize+10, func(p []byte) { p[0] ^= 0x01 })
	if _, err := b.Read(2, 4); !errors.Is(err, ErrCorruption) {
		t.Fatalf("read of the damaged entry: %v, want corruption", err)
	}
	garbage := func() {
		f, err := os.OpenFile(filepath.Join(cfg.DataDir, damagedFile), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("not a mark\n"); err != nil {
			t.Fatal(err)
		}
	}
	for restart, before := range []func(){nil, garbage} {
		b, _ = reopenScrub(t, b, false, before)
		if got := listed(t, b, 2); got != " 0-3 5-9" {
			t.Fatalf("after restart %d ledger 2 lists%s; want the damaged entry 4 still left out", restart+1, got)
		}
	}
	if err := b.Add(ctx, Entry{Ledger: 2, ID: 4, LAC: 3, Payload: payload(2, 4, 300), Recovery: true}); err != nil {
		t.Fatal(err)
	}
	b, _ = reopenScrub(t, b, false, nil)
	if got := listed(t, b, 2); got != " 0-9" {
		t.Fatalf("after the copy and a restart ledger 2 lists%s; want 0-9", got)
	}
	mustRead(t, b, 2, 4, 300)
}
