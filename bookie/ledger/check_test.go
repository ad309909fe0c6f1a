package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// checkMetrics reads the ledger check's counters off reg.
func checkMetrics(t *testing.T, reg *prometheus.Registry) (checked, missing, copied, failures float64) {
	t.Helper()
	v := metricValues(t, reg)
	return v["strata_ledger_check_ledgers_total"], v["strata_ledger_check_missing_entries_total"],
		v["strata_ledger_check_copied_entries_total"], v["strata_ledger_check_failures_total"]
}

// holds answers the entries 0..last that tb stores, and fails the test on
// any read error but a missing entry or ledger, or on bytes that differ
// from what was written.
func holds(t *testing.T, tb *testBookie, id ids.LedgerID, last ids.EntryID) []ids.EntryID {
	t.Helper()
	var out []ids.EntryID
	for e := ids.EntryID(0); e <= last; e++ {
		got, err := tb.b.Read(id, e)
		if errors.Is(err, bookie.ErrEntryNotFound) || errors.Is(err, bookie.ErrLedgerNotFound) {
			continue
		}
		if err != nil || !bytes.Equal(got.Payload, payload(int(e))) {
			t.Fatalf("entry %d on %s: %q %v", e, tb.addr, got.Payload, err)
		}
		out = append(out, e)
	}
	return out
}

// shouldHold answers the entries 0..l.LastEntry whose write sets hold b.
func shouldHold(l *metadata.Ledger, b string) []ids.EntryID {
	var out []ids.EntryID
	for e := ids.EntryID(0); e <= l.LastEntry; e++ {
		f := l.FragmentFor(e)
		for i := range l.WriteQuorum {
			if f.Bookies[(int(e)%len(f.Bookies)+i)%len(f.Bookies)] == b {
				out = append(out, e)
			}
		}
	}
	return out
}

// TestEntriesWrittenWhileABookieWasDownAreCopiedBackToIt: with no spare
// bookie, a bookie of the ensemble down while entries are written misses
// them (the writer goes on at Qa copies), and a closed ledger kept them
// one copy short for good. The auditor's ledger check leaves the bookie
// alone while it is down; once it is restarted (its index read from its
// files) the check copies back exactly the entries of its write sets it
// misses, byte-identical, and nothing else, without changing the
// metadata; a later pass finds nothing more to copy.
func TestEntriesWrittenWhileABookieWasDownAreCopiedBackToIt(t *testing.T) {
	for _, opts := range []ledger.CreateOptions{
		ledger.ClusterOptions(),                     // E=3 Qw=3 Qa=2
		{Ensemble: 3, WriteQuorum: 2, AckQuorum: 1}, // striped
	} {
		t.Run(fmt.Sprintf("E=%d,Qw=%d,Qa=%d", opts.Ensemble, opts.WriteQuorum, opts.AckQuorum), func(t *testing.T) {
			c := startCluster(t, 3)
			ctx := context.Background()
			l, down, _ := writtenWithABookieDown(t, c, opts)
			if len(l.Fragments) != 1 || l.LastEntry != 199 {
				t.Fatalf("closed ledger %+v, want one fragment up to 199", l)
			}

			reg := prometheus.NewRegistry()
			a := ledger.NewAuditor(c.client(t), c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, CheckInterval: time.Hour, Registerer: reg})
			start := time.Now()
			a.Round(ctx, start)
			if checked, missing, copied, failures := checkMetrics(t, reg); checked != 1 || missing != 0 || copied != 0 || failures != 0 {
				t.Fatalf("a check with the bookie down: checked %v, missing %v, copied %v, failures %v; want it left alone", checked, missing, copied, failures)
			}

			down.restart(t)
			c.list.add(down.addr)
			want := shouldHold(l, down.addr)
			before := holds(t, down, l.ID, l.LastEntry)
			short := len(want) - len(before)
			if short < 100 {
				t.Fatalf("the restarted bookie misses %d entries of its write sets, want at least 100", short)
			}
			a.Round(ctx, start.Add(2*time.Hour)) // a new pass
			if got := holds(t, down, l.ID, l.LastEntry); !slices.Equal(got, want) {
				t.Fatalf("after the check the bookie holds %d entries, want the %d of its write sets: %v", len(got), len(want), got)
			}
			if checked, missing, copied, failures := checkMetrics(t, reg); checked != 2 || missing != float64(short) || copied != float64(short) || failures != 0 {
				t.Fatalf("checked %v, missing %v, copied %v, failures %v; want 2, %d, %d, 0", checked, missing, copied, failures, short, short)
			}
			checkEveryCopy(t, c, l)
			for _, tb := range c.bookies {
				if got := holds(t, tb, l.ID, l.LastEntry); !slices.Equal(got, shouldHold(l, tb.addr)) {
					t.Fatalf("bookie %s holds %v, want the entries of its write sets only", tb.addr, got)
				}
			}
			if stored, err := c.store.GetLedger(ctx, l.ID); err != nil || stored.Version != l.Version {
				t.Fatalf("the check changed the metadata: %+v %v", stored, err)
			}
			a.Round(ctx, start.Add(4*time.Hour))
			if checked, missing, _, _ := checkMetrics(t, reg); checked != 3 || missing != float64(short) {
				t.Fatalf("a later pass: checked %v, missing %v; want 3 and nothing more missing", checked, missing)
			}
		})
	}
}

// TestALedgerWithEveryCopyIsLeftAloneByTheCheck: closed ledgers whose
// entries all have their Qw copies, striped or not, are checked and
// nothing is copied; open ledgers, ledgers being deleted and offloaded
// ledgers whose bookie copies were deleted are not checked.
func TestALedgerWithEveryCopyIsLeftAloneByTheCheck(t *testing.T) {
	ledger.SetMaxDeletionsPerRound(t, 0) // the marked ledger stays marked through the round
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	whole := []*metadata.Ledger{
		writeClosed(t, c, cl, ledger.ClusterOptions(), 30),
		writeClosed(t, c, cl, ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2}, 30),
		writeClosed(t, c, cl, ledger.CreateOptions{Ensemble: 4, WriteQuorum: 2, AckQuorum: 1}, 30),
	}
	offloaded := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	if err := cl.DeleteCopies(ctx, offloaded); err != nil {
		t.Fatal(err)
	}
	offloaded.Offload = &metadata.Offload{State: metadata.OffloadDeleted}
	if err := c.store.UpdateLedger(ctx, offloaded); err != nil {
		t.Fatal(err)
	}
	deleting := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	deleting.Deleting = true
	if err := c.store.UpdateLedger(ctx, deleting); err != nil {
		t.Fatal(err)
	}
	w := mustCreate(t, cl, ledger.ClusterOptions())
	defer w.Close(ctx, nil)
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, Registerer: reg})
	a.Round(ctx, time.Now())
	if checked, missing, copied, failures := checkMetrics(t, reg); checked != float64(len(whole)) || missing != 0 || copied != 0 || failures != 0 {
		t.Fatalf("checked %v, missing %v, copied %v, failures %v; want %d, 0, 0, 0", checked, missing, copied, failures, len(whole))
	}
	for _, l := range whole {
		for _, tb := range c.bookies {
			if got := holds(t, tb, l.ID, l.LastEntry); !slices.Equal(got, shouldHold(l, tb.addr)) {
				t.Fatalf("ledger %d: bookie %s holds %v, want the entries of its write sets only", l.ID, tb.addr, got)
			}
		}
	}
}

// TestTheCheckGoesThroughAFewLedgersARoundAndStartsAPassAnIntervalApart:
// a round checks at most its bound of ledgers, the next round goes on
// after them, a pass that is over waits for the interval, and a negative
// interval turns the check off.
func TestTheCheckGoesThroughAFewLedgersARoundAndStartsAPassAnIntervalApart(t *testing.T) {
	ledger.SetMaxChecksPerRound(t, 2)
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	for range 5 {
		writeClosed(t, c, cl, ledger.ClusterOptions(), 3)
	}
	reg := prometheus.NewRegistry()
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, CheckInterval: time.Hour, Registerer: reg})
	start := time.Now()
	for i, want := range []float64{2, 4, 5, 5, 5} {
		a.Round(ctx, start.Add(time.Duration(i)*time.Minute))
		if checked, _, _, _ := checkMetrics(t, reg); checked != want {
			t.Fatalf("after round %d: %v ledgers checked, want %v", i+1, checked, want)
		}
	}
	a.Round(ctx, start.Add(time.Hour))
	if checked, _, _, _ := checkMetrics(t, reg); checked != 7 {
		t.Fatalf("an interval after the first pass: %v ledgers checked, want 7", checked)
	}

	reg = prometheus.NewRegistry()
	off := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, CheckInterval: -1, Registerer: reg})
	off.Round(ctx, start)
	off.Round(ctx, start.Add(48*time.Hour))
	if checked, _, _, _ := checkMetrics(t, reg); checked != 0 {
		t.Fatalf("with the check off: %v ledgers checked", checked)
	}
}

// TestTheCheckCopiesBackWhatItCanPastEntriesNoBookieHolds: an entry whose
// every copy is gone cannot be copied back, and the check goes on past it
// with the entries after it instead of stopping there every pass. E=3
// Qw=2 Qa=1: bookie b misses the entries written while it was down, then
// bookie c comes back with an empty disk, so the entries whose write set
// is {b, c} written meanwhile are on no bookie; every other entry ends up
// on both bookies of its write set.
func TestTheCheckCopiesBackWhatItCanPastEntriesNoBookieHolds(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	l, b, open := writtenWithABookieDown(t, c, ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 1})
	cb := c.bookie(open.Fragments[0].Bookies[2])
	b.restart(t)
	c.list.add(b.addr)
	cb.stop()
	if err := os.RemoveAll(cb.dir); err != nil {
		t.Fatal(err)
	}
	cb.restart(t)

	reg := prometheus.NewRegistry()
	a := ledger.NewAuditor(c.client(t), c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, Registerer: reg})
	a.Round(ctx, time.Now())
	gone := func(e ids.EntryID) bool { return e >= 20 && e%3 == 1 } // write set {b, c}
	for _, tb := range c.bookies {
		want := slices.DeleteFunc(shouldHold(l, tb.addr), gone)
		if got := holds(t, tb, l.ID, l.LastEntry); !slices.Equal(got, want) {
			t.Fatalf("bookie %s holds %d entries, want the %d of its write sets that one bookie held: %v", tb.addr, len(got), len(want), got)
		}
	}
	if _, missing, copied, failures := checkMetrics(t, reg); failures != 2 || missing-copied != 2*60 {
		t.Fatalf("missing %v, copied %v, failures %v; want the 60 entries no bookie holds missing on both bookies, and each bookie's check failed", missing, copied, failures)
	}
}

// A read is reported as finding the entry on no bookie only when every
// bookie of its write set said so: one saying so beside one that could not
// be reached is a failure the ledger check retries, not an entry it logs
// as lost and copies past.
func TestAnEntryIsOnNoBookieOnlyWhenEveryBookieOfItsWriteSetSaysSo(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	w := mustCreate(t, c.client(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 0's write set is the ensemble's first two bookies.
	x, y := c.bookie(l.Fragments[0].Bookies[0]), c.bookie(l.Fragments[0].Bookies[1])
	wipe := func(tb *testBookie) {
		tb.stop()
		if err := os.RemoveAll(tb.dir); err != nil {
			t.Fatal(err)
		}
		tb.restart(t)
	}
	wipe(y)
	x.pause()
	_, err = c.client(t).Read(ctx, l, 0, 0)
	if err == nil || errors.Is(err, ledger.ErrOnNoBookie) {
		t.Fatalf("read with one bookie unreachable and the other without the entry: %v, want a failure that is not 'on no bookie'", err)
	}
	x.resume(t)
	wipe(x)
	_, err = c.client(t).Read(ctx, l, 0, 0)
	if !errors.Is(err, ledger.ErrOnNoBookie) || !errors.Is(err, ledger.ErrEntryNotFound) {
		t.Fatalf("read with neither bookie holding the entry: %v, want it on no bookie", err)
	}
}

// writtenWithABookieDown writes entries 0..19 of a ledger of opts on c,
// waits for every copy, stops the ensemble's second bookie (down, taken
// off the bookie list so that no ensemble change replaces it), writes
// entries 20..199 and closes the ledger once every copy but down's is
// written. It answers the closed ledger, down (stopped) and the ledger's
// record while it was open.
func writtenWithABookieDown(t *testing.T, c *cluster, opts ledger.CreateOptions) (l *metadata.Ledger, down *testBookie, open *metadata.Ledger) {
	t.Helper()
	ctx := context.Background()
	w := mustCreate(t, c.client(t), opts)
	for i := range 20 {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	open, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitForCopies(t, c, w.ID(), 19, nil)
	down = c.bookie(open.Fragments[0].Bookies[1])
	c.list.remove(down.addr)
	down.stop()
	for i := 20; i < 200; i++ {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	// With Qa=1 an entry is acknowledged before its second copy is
	// written: only the down bookie's copies are to be missing.
	waitForCopies(t, c, w.ID(), 199, func(b string) bool { return b == down.addr })
	if l, err = w.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return l, down, open
}
