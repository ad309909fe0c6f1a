package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// writeClosed writes n entries to a new ledger with opts, waits for every
// acknowledgement and for every copy, and closes it. An append is
// acknowledged at Qa copies, and a close does not wait for the others
// (as BookKeeper's does not): waiting here makes every entry start with
// Qw copies, which the tests of copies count on.
func writeClosed(t *testing.T, c *cluster, cl *ledger.Client, opts ledger.CreateOptions, n int) *metadata.Ledger {
	t.Helper()
	w := mustCreate(t, cl, opts)
	a := newAcks()
	for i := range n {
		w.Append(payload(i), a.done(payload(i)))
	}
	waitFor(t, "every append acknowledged", func() bool { _, _, count := a.snapshot(); return count == n })
	if _, errs, _ := a.snapshot(); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	waitForCopies(t, c, w.ID(), ids.EntryID(n-1), nil)
	l, err := w.Close(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitForCopies waits until every bookie of the write sets of entries
// 0..last of ledger id holds the entry, but those down says are down.
func waitForCopies(t *testing.T, c *cluster, id ids.LedgerID, last ids.EntryID, down func(string) bool) {
	t.Helper()
	l, err := c.store.GetLedger(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every copy of every entry written", func() bool {
		for e := ids.EntryID(0); e <= last; e++ {
			f := l.FragmentFor(e)
			for i := 0; i < l.WriteQuorum; i++ {
				b := f.Bookies[(int(e)%len(f.Bookies)+i)%len(f.Bookies)]
				if down != nil && down(b) {
					continue
				}
				tb := c.bookie(b)
				if tb == nil {
					return false
				}
				if _, err := tb.b.Read(l.ID, e); err != nil {
					return false
				}
			}
		}
		return true
	})
}

// checkEveryCopy checks that every bookie of every entry's write set holds
// the entry, byte-identical.
func checkEveryCopy(t *testing.T, c *cluster, l *metadata.Ledger) {
	t.Helper()
	for e := ids.EntryID(0); e <= l.LastEntry; e++ {
		f := l.FragmentFor(e)
		n := len(f.Bookies)
		for i := 0; i < l.WriteQuorum; i++ {
			b := f.Bookies[(int(e)%n+i)%n]
			tb := c.bookie(b)
			if tb == nil {
				t.Fatalf("entry %d: bookie %s of its write set is not in the cluster", e, b)
			}
			got, err := tb.b.Read(l.ID, e)
			if err != nil || !bytes.Equal(got.Payload, payload(int(e))) {
				t.Fatalf("entry %d on %s: %q %v", e, b, got.Payload, err)
			}
		}
	}
}

// TestRereplicateMovesAClosedLedgerOffALostBookieWithEveryCopy: once a
// bookie is lost for good, re-replication copies every entry it held of a
// striped closed ledger (E=3, Qw=2) to other bookies and records them, so
// every entry has Qw copies again and the lost bookie is in no fragment.
func TestRereplicateMovesAClosedLedgerOffALostBookieWithEveryCopy(t *testing.T) {
	c := startCluster(t, 5)
	cl := c.client(t)
	ctx := context.Background()
	l := writeClosed(t, c, cl, ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2}, 300)
	lost := l.Fragments[0].Bookies[1]
	c.bookie(lost).stop()
	c.list.remove(lost)

	got, err := cl.Rereplicate(ctx, l.ID, lost)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got.Fragments {
		if slices.Contains(f.Bookies, lost) {
			t.Fatalf("the lost bookie is still in %+v", got.Fragments)
		}
	}
	stored, err := c.store.GetLedger(ctx, l.ID)
	if err != nil || stored.Version != got.Version || stored.State != metadata.LedgerClosed || stored.LastEntry != l.LastEntry {
		t.Fatalf("stored %+v %v, want what Rereplicate answered, still closed at %d", stored, err, l.LastEntry)
	}
	c.bookies = slices.DeleteFunc(c.bookies, func(tb *testBookie) bool { return tb.addr == lost })
	checkEveryCopy(t, c, stored)
	again, err := cl.Rereplicate(ctx, l.ID, lost)
	if err != nil || again.Version != stored.Version {
		t.Fatalf("a second re-replication changed %+v %v", again, err)
	}
}

// TestRereplicateRefusesOpenLedgersAndChangesNothingWithoutASpare: an open
// ledger is its writer's, and with no bookie outside the ensemble nothing
// is copied or recorded.
func TestRereplicateRefusesOpenLedgersAndChangesNothingWithoutASpare(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.ClusterOptions())
	open, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Rereplicate(ctx, w.ID(), open.Fragments[0].Bookies[0]); !errors.Is(err, ledger.ErrLedgerNotClosed) {
		t.Fatalf("an open ledger: %v, want ErrLedgerNotClosed", err)
	}
	if _, err := w.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 20)
	lost := l.Fragments[0].Bookies[2]
	c.bookie(lost).stop()
	c.list.remove(lost)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cl.Rereplicate(rctx, l.ID, lost); !errors.Is(err, ledger.ErrNotEnoughBookies) {
		t.Fatalf("no spare: %v, want ErrNotEnoughBookies", err)
	}
	if stored, err := c.store.GetLedger(ctx, l.ID); err != nil || stored.Version != l.Version {
		t.Fatalf("the refused re-replication changed the metadata: %+v %v", stored, err)
	}
}

// TestAuditorRereplicatesClosedLedgersOfABookieLostPastTheDelay: the
// auditor leaves a missing bookie alone until it has been gone for the
// delay (it may be restarting), then copies every closed ledger off it,
// leaves open ledgers to their writers, and does nothing while it is not
// the leader.
func TestAuditorRereplicatesClosedLedgersOfABookieLostPastTheDelay(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	store := c.store.(*metadata.Store)
	var closed []*metadata.Ledger
	for range 3 {
		closed = append(closed, writeClosed(t, c, cl, ledger.ClusterOptions(), 30))
	}
	w := mustCreate(t, cl, ledger.ClusterOptions())
	defer w.Close(ctx, nil)
	lost := closed[0].Fragments[0].Bookies[0]
	c.bookie(lost).stop()
	c.list.remove(lost)

	leader := false
	a := ledger.NewAuditor(cl, store, ledger.AuditorConfig{Delay: time.Hour, Leader: func(context.Context) bool { return leader }})
	start := time.Now()
	if n := a.Round(ctx, start.Add(2*time.Hour)); n != 0 {
		t.Fatalf("a follower re-replicated %d ledgers", n)
	}
	leader = true
	if n := a.Round(ctx, start); n != 0 {
		t.Fatalf("re-replicated %d ledgers the moment the bookie went missing", n)
	}
	want := 0
	for _, l := range closed {
		if slices.ContainsFunc(l.Fragments, func(f metadata.Fragment) bool { return slices.Contains(f.Bookies, lost) }) {
			want++
		}
	}
	if n := a.Round(ctx, start.Add(2*time.Hour)); n != want {
		t.Fatalf("re-replicated %d ledgers past the delay, want %d", n, want)
	}
	c.bookies = slices.DeleteFunc(c.bookies, func(tb *testBookie) bool { return tb.addr == lost })
	for _, l := range closed {
		got, err := c.store.GetLedger(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range got.Fragments {
			if slices.Contains(f.Bookies, lost) {
				t.Fatalf("ledger %d still names the lost bookie: %+v", l.ID, got.Fragments)
			}
		}
		checkEveryCopy(t, c, got)
	}
	if open, err := c.store.GetLedger(ctx, w.ID()); err != nil || open.State != metadata.LedgerOpen {
		t.Fatalf("the open ledger: %+v %v, want it left to its writer", open, err)
	}
}

// TestAuditorLeavesAReadOnlyBookiesLedgersAlone: a bookie whose disk is
// full is left out of the writable bookies (as metadata.WritableBookies
// does) but stays registered; the auditor, told the registered ones, does
// not count it lost and copies nothing off it, however long it stays so.
// Copies made off it would leave its own behind, never deleted, and its
// disk full for good.
func TestAuditorLeavesAReadOnlyBookiesLedgersAlone(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	var closed []*metadata.Ledger
	for range 3 {
		closed = append(closed, writeClosed(t, c, cl, ledger.ClusterOptions(), 10))
	}
	registered := &bookieList{addrs: slices.Clone(c.list.addrs)}
	readOnly := closed[0].Fragments[0].Bookies[0]
	c.list.remove(readOnly)
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Minute,
		Registered: registered})
	start := time.Now()
	for _, at := range []time.Duration{0, time.Hour, 2 * time.Hour} {
		if n := a.Round(ctx, start.Add(at)); n != 0 {
			t.Fatalf("copied %d ledgers off a registered read-only bookie", n)
		}
	}
	for _, l := range closed {
		got, err := c.store.GetLedger(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Fragments[0].Bookies, l.Fragments[0].Bookies) {
			t.Fatalf("ledger %d's ensemble changed: %+v", l.ID, got.Fragments)
		}
	}
}

// TestAuditorCopiesEveryClosedLedgerOffADrainingBookieAtOnce: a bookie
// being decommissioned is copied off in the first round, with no delay and
// no lost-bookie delay configured, while it still runs; afterwards no
// closed ledger names it and every entry has its copies elsewhere.
func TestAuditorCopiesEveryClosedLedgerOffADrainingBookieAtOnce(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	var closed []*metadata.Ledger
	for range 4 {
		closed = append(closed, writeClosed(t, c, cl, ledger.ClusterOptions(), 25))
	}
	draining := closed[0].Fragments[0].Bookies[1]
	c.list.remove(draining) // what metadata.WritableBookies does for a draining bookie
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{
		Draining: func(context.Context) ([]string, error) { return []string{draining}, nil }})
	want := 0
	for _, l := range closed {
		if slices.ContainsFunc(l.Fragments, func(f metadata.Fragment) bool { return slices.Contains(f.Bookies, draining) }) {
			want++
		}
	}
	if n := a.Round(ctx, time.Now()); n != want {
		t.Fatalf("copied %d ledgers off the draining bookie, want %d", n, want)
	}
	for _, l := range closed {
		got, err := c.store.GetLedger(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range got.Fragments {
			if slices.Contains(f.Bookies, draining) {
				t.Fatalf("ledger %d still names the draining bookie: %+v", l.ID, got.Fragments)
			}
		}
		checkEveryCopy(t, c, got)
	}
	if n := a.Round(ctx, time.Now()); n != 0 {
		t.Fatalf("a second round copied %d more", n)
	}
}

// countingLister counts the full scans of the ledgers.
type countingLister struct {
	*metadata.Store
	scans int
}

func (c *countingLister) ListLedgers(ctx context.Context) ([]*metadata.Ledger, error) {
	c.scans++
	return c.Store.ListLedgers(ctx)
}

// TestAuditorReadsEveryLedgerOnlyWhenABookieMayNeedCopying: while every
// bookie stays live and none drains, rounds after the first do not read
// every ledger's metadata; a bookie going away makes the next round read
// them, and it keeps reading while it times the lost bookie.
func TestAuditorReadsEveryLedgerOnlyWhenABookieMayNeedCopying(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	lister := &countingLister{Store: c.store.(*metadata.Store)}
	a := ledger.NewAuditor(cl, lister, ledger.AuditorConfig{Delay: time.Hour})
	now := time.Now()
	for i := range 3 {
		a.Round(ctx, now.Add(time.Duration(i)*time.Second))
	}
	if lister.scans != 1 {
		t.Fatalf("%d scans in three quiet rounds, want 1", lister.scans)
	}
	lost := l.Fragments[0].Bookies[0]
	c.bookie(lost).stop()
	c.list.remove(lost)
	a.Round(ctx, now.Add(5*time.Second))
	a.Round(ctx, now.Add(6*time.Second))
	if lister.scans != 3 {
		t.Fatalf("%d scans after a bookie went away, want 3 (one per round while it is timed)", lister.scans)
	}
	if n := a.Round(ctx, now.Add(2*time.Hour)); n != 1 {
		t.Fatalf("re-replicated %d ledgers past the delay, want 1", n)
	}
}

// TestAuditorLeavesLedgersWhoseOffloadCompletedAlone: the object store
// holds a verified copy of an offloaded ledger, so a lost bookie of its
// ensemble is no reason to copy it.
func TestAuditorLeavesLedgersWhoseOffloadCompletedAlone(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	l.Offload = &metadata.Offload{State: metadata.OffloadComplete}
	if err := c.store.UpdateLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	lost := l.Fragments[0].Bookies[0]
	c.bookie(lost).stop()
	c.list.remove(lost)
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour})
	now := time.Now()
	a.Round(ctx, now)
	if n := a.Round(ctx, now.Add(2*time.Hour)); n != 0 {
		t.Fatalf("re-replicated %d offloaded ledgers", n)
	}
	if got, err := c.store.GetLedger(ctx, l.ID); err != nil || got.Version != l.Version {
		t.Fatalf("the offloaded ledger changed: %+v %v", got, err)
	}
}

// TestAnOpenLedgerOfATopicNobodyOwnsIsRecoveredAndCopiedOffALostBookie: a
// ledger left open by a writer that went away (its topic now unowned) and
// naming a bookie lost past the delay is recovered by the auditor and
// copied off that bookie, every acknowledged entry with all its copies.
// Left open, it kept the lost bookie named, and its entries a copy short,
// until something looked the topic up. A topic that is owned keeps its
// open ledger for its writer.
func TestAnOpenLedgerOfATopicNobodyOwnsIsRecoveredAndCopiedOffALostBookie(t *testing.T) {
	c := startCluster(t, 4)
	ctx := context.Background()
	opts := ledger.ClusterOptions()
	opts.Topic = "public/default/idle"
	open := leftOpen(t, c, opts, 20)
	lost := open.Fragments[0].Bookies[0]
	c.bookie(lost).stop()
	c.list.remove(lost)

	cl := c.client(t)
	owned := true
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour,
		Unowned: func(_ context.Context, topic string) (bool, error) { return topic == opts.Topic && !owned, nil }})
	start := time.Now()
	a.Round(ctx, start)
	a.Round(ctx, start.Add(2*time.Hour))
	if l, err := c.store.GetLedger(ctx, open.ID); err != nil || l.State != metadata.LedgerOpen {
		t.Fatalf("an owned topic's open ledger: %+v, %v; want left open", l, err)
	}
	owned = false
	if n := a.Round(ctx, start.Add(3*time.Hour)); n != 1 {
		t.Fatalf("re-replicated %d ledgers, want 1", n)
	}
	l, err := c.store.GetLedger(ctx, open.ID)
	if err != nil || l.State != metadata.LedgerClosed || l.LastEntry != 19 {
		t.Fatalf("ledger after the audit: %+v, %v; want closed at 19", l, err)
	}
	for _, f := range l.Fragments {
		if slices.Contains(f.Bookies, lost) {
			t.Fatalf("the lost bookie is still in %+v", l.Fragments)
		}
	}
	c.bookies = slices.DeleteFunc(c.bookies, func(tb *testBookie) bool { return tb.addr == lost })
	checkEveryCopy(t, c, l)
}

// TestAnAbandonedLedgerThatCannotBeRecoveredDoesNotStopTheAuditor: the
// recovery of an open ledger of a topic nobody owns is bounded, so one
// that cannot finish (Qa = Qw = 2 with one of its two bookies lost: the
// entry after the last confirmed can be neither completed nor ruled out)
// leaves the round to go on, and the next; it used to hold the auditor
// for good.
func TestAnAbandonedLedgerThatCannotBeRecoveredDoesNotStopTheAuditor(t *testing.T) {
	c := startCluster(t, 4)
	ctx := context.Background()
	l := leftOpen(t, c, ledger.CreateOptions{Ensemble: 2, WriteQuorum: 2, AckQuorum: 2, Topic: "public/default/stuck"}, 20)
	lost := l.Fragments[0].Bookies[0]
	c.bookie(lost).stop()
	c.list.remove(lost)
	a := ledger.NewAuditor(c.client(t), c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, RecoverTimeout: 500 * time.Millisecond,
		Unowned: func(context.Context, string) (bool, error) { return true, nil }})
	start := time.Now()
	for i, at := range []time.Time{start, start.Add(2 * time.Hour), start.Add(3 * time.Hour)} {
		done := make(chan struct{})
		go func() { a.Round(ctx, at); close(done) }()
		waitFor(t, fmt.Sprintf("audit round %d to end", i+1), func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
	}
}

// TestRereplicationPassesOverASpareThatDeletedTheLedger: a bookie that
// deleted a ledger (as the garbage collection does with an over-replicated
// copy) keeps a tombstone that refuses adds to it, so it cannot take the
// ledger's entries when it is later a spare for it. Re-replication takes
// another spare, and with none left fails as having no spare, changing
// nothing. It used to pick at random, and to fail every round it picked
// the one that deleted the ledger.
func TestRereplicationPassesOverASpareThatDeletedTheLedger(t *testing.T) {
	c := startCluster(t, 5)
	cl := c.client(t)
	ctx := context.Background()
	for range 8 { // each picked the tombstone with a chance of one in two
		l := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
		ensemble := l.Fragments[0].Bookies
		var spares []string
		for _, tb := range c.bookies {
			if !slices.Contains(ensemble, tb.addr) {
				spares = append(spares, tb.addr)
			}
		}
		if err := c.bookie(spares[0]).b.Delete(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
		got, err := cl.Rereplicate(ctx, l.ID, ensemble[0])
		if err != nil {
			t.Fatalf("ledger %d with spare %s tombstoned: %v", l.ID, spares[0], err)
		}
		if b := got.Fragments[0].Bookies[0]; b != spares[1] {
			t.Fatalf("ledger %d: %s replaced %s, want the spare without a tombstone, %s", l.ID, b, ensemble[0], spares[1])
		}
		checkEveryCopy(t, c, got)
	}

	c = startCluster(t, 4)
	cl = c.client(t)
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	spare := slices.DeleteFunc(slices.Clone(c.list.addrs), func(b string) bool { return slices.Contains(l.Fragments[0].Bookies, b) })[0]
	if err := c.bookie(spare).b.Delete(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Rereplicate(ctx, l.ID, l.Fragments[0].Bookies[0]); !errors.Is(err, ledger.ErrNotEnoughBookies) {
		t.Fatalf("the only spare tombstoned: %v, want ErrNotEnoughBookies", err)
	}
	if stored, err := c.store.GetLedger(ctx, l.ID); err != nil || stored.Version != l.Version {
		t.Fatalf("the refused re-replication changed the metadata: %+v %v", stored, err)
	}
}

// leftOpen writes entries 0..n-1 to a new ledger of opts on c with a
// client that then goes away, as a writer's process that dies, and
// answers the ledger's metadata: still open.
func leftOpen(t *testing.T, c *cluster, opts ledger.CreateOptions, n int) *metadata.Ledger {
	t.Helper()
	ctx := context.Background()
	gone := c.client(t)
	w := mustCreate(t, gone, opts)
	for i := range n {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = gone.Close()
	l, err := c.store.GetLedger(ctx, w.ID())
	if err != nil || l.State != metadata.LedgerOpen {
		t.Fatalf("ledger %+v, %v; want open", l, err)
	}
	return l
}
