package ledger_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// metricValues reads every series of reg, each by its name followed by
// "/value" for each label.
func metricValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, lp := range m.GetLabel() {
				name += "/" + lp.GetValue()
			}
			v[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// gcDeleted answers the copies the collection deleted as of deleted
// ledgers and as over-replicated, and its failures.
func gcDeleted(t *testing.T, reg *prometheus.Registry) (deleted, over, failures float64) {
	t.Helper()
	v := metricValues(t, reg)
	return v["strata_ledger_gc_deleted_copies_total/deleted"], v["strata_ledger_gc_deleted_copies_total/overreplicated"], v["strata_ledger_gc_failures_total"]
}

// stores reports whether tb lists ledger id among those it stores.
func stores(tb *testBookie, id ids.LedgerID) bool {
	held, _ := tb.b.ListLedgers(0)
	return slices.Contains(held, id)
}

// holders answers the bookies of c that store ledger id.
func holders(c *cluster, id ids.LedgerID) []string {
	var out []string
	for _, tb := range c.bookies {
		if stores(tb, id) {
			out = append(out, tb.addr)
		}
	}
	slices.Sort(out)
	return out
}

// ensembleOf answers the bookies l's fragments name, sorted.
func ensembleOf(l *metadata.Ledger) []string {
	var out []string
	for _, f := range l.Fragments {
		for _, b := range f.Bookies {
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out
}

// collector builds an auditor that runs the garbage collection only (no
// ledger check, lost bookies left alone), a pass every interval, with its
// metrics on reg.
func collector(cl *ledger.Client, ledgers ledger.LedgerLister, interval, grace time.Duration, reg prometheus.Registerer) *ledger.Auditor {
	return ledger.NewAuditor(cl, ledgers, ledger.AuditorConfig{CheckInterval: -1, CollectInterval: interval, OverreplicatedGrace: grace, Registerer: reg})
}

// TestABookieThatMissedADeletionHasItsCopyDeletedByTheCollection: a
// ledger deleted while one of its bookies was down (the deletion went on
// without it, as for a bookie lost past the delay) stays on that bookie
// once it is back, as nothing names it; the collection deletes it there,
// leaves every other ledger where it is, and does nothing while its
// process is not the auditing one.
func TestABookieThatMissedADeletionHasItsCopyDeletedByTheCollection(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	gone := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	kept := writeClosed(t, c, cl, ledger.ClusterOptions(), 10)
	w := mustCreate(t, cl, ledger.ClusterOptions())
	defer w.Close(ctx, nil)
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	down := c.bookie(gone.Fragments[0].Bookies[1])
	down.stop()
	c.list.remove(down.addr)
	if err := cl.Delete(ctx, gone); err == nil {
		t.Fatal("a deletion with a bookie down succeeded")
	}
	if err := c.store.DeleteLedger(ctx, gone.ID); err != nil { // as the auditor does once the bookie is lost
		t.Fatal(err)
	}
	down.restart(t)
	c.list.add(down.addr)
	if got := holders(c, gone.ID); !slices.Equal(got, []string{down.addr}) {
		t.Fatalf("the deleted ledger is on %v, want only on the bookie that was down", got)
	}

	keptOn, openOn := holders(c, kept.ID), holders(c, w.ID())
	reg := prometheus.NewRegistry()
	leader := false
	// A new client: the writer's connection to the restarted bookie may
	// still be waiting to reconnect.
	a := ledger.NewAuditor(c.client(t), c.store.(*metadata.Store), ledger.AuditorConfig{CheckInterval: -1, CollectInterval: time.Hour, Registerer: reg,
		Leader: func(context.Context) bool { return leader }})
	a.Round(ctx, time.Now())
	if !stores(down, gone.ID) {
		t.Fatal("a process that does not audit deleted a copy")
	}
	leader = true
	a.Round(ctx, time.Now())
	if got := holders(c, gone.ID); len(got) != 0 {
		t.Fatalf("the deleted ledger is still on %v", got)
	}
	if deleted, over, failures := gcDeleted(t, reg); deleted != 1 || over != 0 || failures != 0 {
		t.Fatalf("deleted %v as deleted, %v as over-replicated, %v failures; want 1, 0, 0", deleted, over, failures)
	}
	if got := holders(c, kept.ID); !slices.Equal(got, keptOn) || !slices.Equal(got, ensembleOf(kept)) {
		t.Fatalf("the closed ledger is on %v, want its ensemble %v", got, ensembleOf(kept))
	}
	if got := holders(c, w.ID()); !slices.Equal(got, openOn) {
		t.Fatalf("the open ledger is on %v, was on %v", got, openOn)
	}
	checkEveryCopy(t, c, kept)
	if _, err := w.AppendSync(ctx, payload(1)); err != nil {
		t.Fatalf("the open ledger after the collection: %v", err)
	}
}

// TestAnOverReplicatedCopyIsDeletedOnlyOnceSeenSoForTheGracePeriod: a
// closed ledger copied off a bookie (a re-replication) leaves that
// bookie's copy over-replicated; the collection keeps it through passes
// until they have seen it so for the grace period, then deletes it, and
// every entry keeps its copies on the bookies the ledger names. With a
// negative grace it is never deleted. The same kind of copy of an open
// ledger, or of one marked for deletion, is left to their own paths.
func TestAnOverReplicatedCopyIsDeletedOnlyOnceSeenSoForTheGracePeriod(t *testing.T) {
	ledger.SetMaxDeletionsPerRound(t, 0) // the marked ledger stays marked
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	spareOf := func(l *metadata.Ledger) string {
		return slices.DeleteFunc(slices.Clone(c.list.addrs), func(b string) bool { return slices.Contains(l.Fragments[0].Bookies, b) })[0]
	}
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 20)
	off := c.bookie(l.Fragments[0].Bookies[0])
	moved, err := cl.Rereplicate(ctx, l.ID, off.addr)
	if err != nil {
		t.Fatal(err)
	}
	// An open ledger whose writer went away and a ledger marked for
	// deletion, each with a bookie replaced in its metadata.
	open := leftOpen(t, c, ledger.ClusterOptions(), 5)
	marked := writeClosed(t, c, cl, ledger.ClusterOptions(), 5)
	marked.Deleting = true
	var left []*testBookie
	for _, x := range []*metadata.Ledger{open, marked} {
		left = append(left, c.bookie(x.Fragments[0].Bookies[0]))
		x.Fragments[0].Bookies[0] = spareOf(x)
		if err := c.store.UpdateLedger(ctx, x); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	never := collector(cl, c.store.(*metadata.Store), time.Minute, -1, prometheus.NewRegistry())
	for _, at := range []time.Duration{0, 48 * time.Hour} {
		never.Round(ctx, start.Add(at))
	}
	reg := prometheus.NewRegistry()
	a := collector(cl, c.store.(*metadata.Store), time.Minute, time.Hour, reg)
	for _, at := range []time.Duration{0, 30 * time.Minute, 59 * time.Minute} {
		a.Round(ctx, start.Add(at))
		if !stores(off, l.ID) {
			t.Fatalf("the over-replicated copy was deleted %v after it was first seen, before the grace period", at)
		}
	}
	if v := metricValues(t, reg)["strata_ledger_gc_overreplicated_copies"]; v != 1 {
		t.Fatalf("%v over-replicated copies seen, want 1 (the open and marked ledgers' are not)", v)
	}
	a.Round(ctx, start.Add(time.Hour))
	if stores(off, l.ID) {
		t.Fatal("the over-replicated copy is still there past the grace period")
	}
	if deleted, over, failures := gcDeleted(t, reg); deleted != 0 || over != 1 || failures != 0 {
		t.Fatalf("deleted %v as deleted, %v as over-replicated, %v failures; want 0, 1, 0", deleted, over, failures)
	}
	checkEveryCopy(t, c, moved)
	a.Round(ctx, start.Add(48*time.Hour))
	for i, x := range []*metadata.Ledger{open, marked} {
		if !stores(left[i], x.ID) {
			t.Fatalf("the copy of the %s ledger (deleting %v) the metadata no longer names was deleted", x.State, x.Deleting)
		}
	}
}

// staleLister answers every ledger's metadata as it was read once.
type staleLister struct{ ledgers []*metadata.Ledger }

func (s staleLister) ListLedgers(context.Context) ([]*metadata.Ledger, error) { return s.ledgers, nil }

// TestALedgerCreatedAfterTheMetadataWasReadIsKept: the collection
// compares what bookies store with a read of every ledger's metadata
// that may be older than a ledger just created and written; that ledger
// is read again before anything is deleted, found, and kept, while a
// deleted one is collected in the same pass.
func TestALedgerCreatedAfterTheMetadataWasReadIsKept(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	deleted := writeClosed(t, c, cl, ledger.ClusterOptions(), 5)
	if err := c.store.DeleteLedger(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	before, err := c.store.(*metadata.Store).ListLedgers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := mustCreate(t, cl, ledger.ClusterOptions())
	defer w.Close(ctx, nil)
	for i := range 5 {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	collector(cl, staleLister{before}, time.Hour, time.Hour, reg).Round(ctx, time.Now())
	if got := holders(c, deleted.ID); len(got) != 0 {
		t.Fatalf("the deleted ledger is still on %v", got)
	}
	if got := holders(c, w.ID()); len(got) != 3 {
		t.Fatalf("the new ledger is on %v, want its three bookies", got)
	}
	if _, err := w.AppendSync(ctx, payload(5)); err != nil {
		t.Fatalf("the new ledger after the collection: %v", err)
	}
	if deleted, _, _ := gcDeleted(t, reg); deleted != 3 {
		t.Fatalf("%v copies deleted, want the deleted ledger's 3", deleted)
	}
}

// watchedStore is a ledger store that records, at each creation and
// compare-and-swap of a ledger's metadata, the bookies that already
// store the ledger and that the stored metadata does not name yet.
type watchedStore struct {
	metadata.LedgerStore
	c          *cluster
	violations atomic.Int64
}

func (s *watchedStore) watch(ctx context.Context, l *metadata.Ledger) {
	named := map[string]bool{}
	if cur, err := s.LedgerStore.GetLedger(ctx, l.ID); err == nil {
		for _, b := range ensembleOf(cur) {
			named[b] = true
		}
	}
	for _, tb := range s.c.bookies {
		if !named[tb.addr] && stores(tb, l.ID) {
			s.violations.Add(1)
		}
	}
}

func (s *watchedStore) CreateLedger(ctx context.Context, l *metadata.Ledger) error {
	s.watch(ctx, l)
	return s.LedgerStore.CreateLedger(ctx, l)
}

func (s *watchedStore) UpdateLedger(ctx context.Context, l *metadata.Ledger) error {
	s.watch(ctx, l)
	return s.LedgerStore.UpdateLedger(ctx, l)
}

// TestAWriterSendsNoEntryToABookieItsMetadataDoesNotNameYet: what the
// collection counts on to take a copy whose metadata is missing as the
// copy of a deleted ledger. A ledger's metadata is stored before any of
// its entries reaches a bookie, and a replacement bookie of an ensemble
// change gets entries only once the metadata names it.
func TestAWriterSendsNoEntryToABookieItsMetadataDoesNotNameYet(t *testing.T) {
	store := &watchedStore{LedgerStore: metatest.OpenStore(t)}
	c := startClusterWith(t, 4, store)
	store.c = c
	ctx := context.Background()
	w := mustCreate(t, c.client(t), ledger.ClusterOptions())
	for i := range 10 {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	failed := c.bookie(first.Fragments[0].Bookies[0])
	failed.stop()
	c.list.remove(failed.addr)
	for i := 10; i < 30; i++ {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Fragments) < 2 {
		t.Fatalf("fragments %+v, want an ensemble change", l.Fragments)
	}
	if n := store.violations.Load(); n != 0 {
		t.Fatalf("%d times a bookie held the ledger before its metadata named it", n)
	}
}

// flakyStore is a metadata store whose ledger listing and reads fail
// while told to.
type flakyStore struct {
	*metadata.Store
	listFails, getFails atomic.Bool
}

var errFlaky = errors.New("etcd unreachable (test)")

func (s *flakyStore) ListLedgers(ctx context.Context) ([]*metadata.Ledger, error) {
	if s.listFails.Load() {
		return nil, errFlaky
	}
	return s.Store.ListLedgers(ctx)
}

func (s *flakyStore) GetLedger(ctx context.Context, id ids.LedgerID) (*metadata.Ledger, error) {
	if s.getFails.Load() {
		return nil, errFlaky
	}
	return s.Store.GetLedger(ctx, id)
}

// TestTheCollectionDeletesNothingWhileTheMetadataOrABookieDoesNotAnswer:
// with etcd out of reach (listing or reading ledgers fails) a round
// deletes nothing; a bookie that cannot be listed is left out of the
// pass, and one that fails a delete keeps its copy; each is collected
// by a later pass once it answers.
func TestTheCollectionDeletesNothingWhileTheMetadataOrABookieDoesNotAnswer(t *testing.T) {
	store := &flakyStore{Store: metatest.OpenStore(t)}
	c := startClusterWith(t, 4, store)
	ctx := context.Background()
	l := writeClosed(t, c, c.client(t), ledger.ClusterOptions(), 5)
	if err := store.DeleteLedger(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	all := ensembleOf(l)
	// Calls to a paused bookie wait for it until the request timeout, and
	// reconnect within 100 ms once it serves again: the test's rounds
	// then meet the bookie as they should, down or back.
	cl := ledger.NewClient(ledger.ClientConfig{RequestTimeout: time.Second, DialOptions: []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 100 * time.Millisecond}}),
	}}, store, c.list, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = cl.Close() })
	reg := prometheus.NewRegistry()
	a := collector(cl, store, time.Minute, time.Hour, reg)
	start := time.Now()
	round := func(at time.Duration, want []string) {
		t.Helper()
		a.Round(ctx, start.Add(at))
		if got := holders(c, l.ID); !slices.Equal(got, want) {
			t.Fatalf("after the round at %v the deleted ledger is on %v, want %v", at, got, want)
		}
	}
	store.listFails.Store(true)
	round(0, all)
	store.listFails.Store(false)
	store.getFails.Store(true)
	unlisted := c.bookie(all[0])
	unlisted.pause()
	round(time.Minute, all) // a pass starts without the paused bookie; no read answers
	store.getFails.Store(false)
	round(2*time.Minute, all[:1]) // the pass goes on
	unlisted.resume(t)

	ledger.SetMaxCollectionsPerRound(t, 0)
	round(3*time.Minute, all[:1]) // a pass lists the copy; the round reads none
	ledger.SetMaxCollectionsPerRound(t, 64)
	unlisted.pause()
	round(4*time.Minute, all[:1]) // its delete fails
	unlisted.resume(t)
	round(5*time.Minute, nil)
	if deleted, over, failures := gcDeleted(t, reg); deleted != 3 || over != 0 || failures != 2 {
		t.Fatalf("deleted %v as deleted, %v as over-replicated, %v failures; want 3, 0, 2", deleted, over, failures)
	}
}

// TestTheCollectionDeletesAFewCopiesARoundAndStartsAPassAnIntervalApart:
// a round deletes at most its bound of copies, the next goes on, a pass
// starts an interval after the previous one began, and a negative
// interval turns the collection off.
func TestTheCollectionDeletesAFewCopiesARoundAndStartsAPassAnIntervalApart(t *testing.T) {
	ledger.SetMaxCollectionsPerRound(t, 2)
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	var ls []*metadata.Ledger
	for range 3 {
		ls = append(ls, writeClosed(t, c, cl, ledger.ClusterOptions(), 3))
	}
	for _, l := range ls {
		if err := c.store.DeleteLedger(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	off := collector(cl, c.store.(*metadata.Store), -1, time.Hour, prometheus.NewRegistry())
	start := time.Now()
	off.Round(ctx, start)
	off.Round(ctx, start.Add(48*time.Hour))
	if got := holders(c, ls[0].ID); len(got) != 3 {
		t.Fatalf("with the collection off the deleted ledger is on %v", got)
	}
	reg := prometheus.NewRegistry()
	a := collector(cl, c.store.(*metadata.Store), time.Hour, time.Hour, reg)
	for i, want := range []float64{2, 4, 6, 8, 9, 9} {
		a.Round(ctx, start.Add(time.Duration(i)*time.Minute))
		if deleted, _, _ := gcDeleted(t, reg); deleted != want {
			t.Fatalf("after round %d: %v copies deleted, want %v", i+1, deleted, want)
		}
	}
	if passes := metricValues(t, reg)["strata_ledger_gc_passes_total"]; passes != 1 {
		t.Fatalf("%v passes within the hour, want 1", passes)
	}
	a.Round(ctx, start.Add(time.Hour))
	if passes := metricValues(t, reg)["strata_ledger_gc_passes_total"]; passes != 2 {
		t.Fatalf("%v passes an hour after the first, want 2", passes)
	}
}

// moveTo stops tb and starts it again on its data directory, listening on
// addr (port 0: a new one) and known by the address it got, as a bookie
// process restarted under another advertised address (a new host name,
// IP or port): the ledgers it holds still name the old one.
func (tb *testBookie) moveTo(t testing.TB, addr string) {
	t.Helper()
	tb.stop()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tb.addr = lis.Addr().String()
	b, err := bookie.Open(testBookieConfig(tb.dir, tb.addr), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(b.ServerOptions()...)
	b.Register(srv)
	tb.b, tb.srv, tb.once = b, srv, sync.Once{}
	go func() { _ = srv.Serve(lis) }()
}

// TestACopyIsKeptWhileItsLedgerNamesABookieThatIsNotRegistered: a
// bookie restarted on its data directory under a new address (standalone
// started with another --bookie-addr, a container with a new host name)
// holds copies of closed ledgers that name only its old address, which
// no bookie is registered under. They are over-replicated by the
// metadata's word, yet the only copies there are (E=Qw=Qa=1 here; with
// every bookie of an ensemble moved, the same): the collection keeps
// them past any grace period, and the bookie started again under its old
// address serves every entry.
func TestACopyIsKeptWhileItsLedgerNamesABookieThatIsNotRegistered(t *testing.T) {
	c := startCluster(t, 1)
	ctx := context.Background()
	l := writeClosed(t, c, c.client(t), ledger.StandaloneOptions(), 10)
	tb := c.bookies[0]
	old := tb.addr
	c.list.remove(old)
	tb.moveTo(t, "127.0.0.1:0")
	c.list.add(tb.addr)

	reg := prometheus.NewRegistry()
	a := collector(c.client(t), c.store.(*metadata.Store), time.Minute, time.Hour, reg)
	start := time.Now()
	for _, at := range []time.Duration{0, time.Hour, 2 * time.Hour, 48 * time.Hour} {
		a.Round(ctx, start.Add(at))
		if !stores(tb, l.ID) {
			t.Fatalf("the only copy of ledger %d, which names %s, was deleted %v after the collection first saw it", l.ID, old, at)
		}
	}
	if _, over, _ := gcDeleted(t, reg); over != 0 {
		t.Fatalf("%v copies deleted as over-replicated, want 0", over)
	}
	c.list.remove(tb.addr)
	tb.moveTo(t, old)
	c.list.add(tb.addr)
	checkEveryCopy(t, c, l)
}

// TestOverReplicatedCopiesAreTimedAFewAtATimeAndAllCollectedInTheEnd: the
// clocks of over-replicated copies are bounded (maxOverClocks), so their
// memory does not grow with every such copy; a copy past the bound is
// timed by a later pass, once timed ones are deleted: kept longer, never
// deleted sooner, and collected in the end.
func TestOverReplicatedCopiesAreTimedAFewAtATimeAndAllCollectedInTheEnd(t *testing.T) {
	ledger.SetMaxOverClocks(t, 1)
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	var off *testBookie
	var moved []ids.LedgerID
	for try := 0; len(moved) < 3 && try < 30; try++ {
		l := writeClosed(t, c, cl, ledger.ClusterOptions(), 5)
		if off == nil {
			off = c.bookie(l.Fragments[0].Bookies[0])
		} else if !slices.Contains(l.Fragments[0].Bookies, off.addr) {
			continue // the first ledger's bookie holds no copy of this one
		}
		if _, err := cl.Rereplicate(ctx, l.ID, off.addr); err != nil {
			t.Fatal(err)
		}
		moved = append(moved, l.ID)
	}
	if len(moved) < 3 {
		t.Fatalf("only %d of 30 ledgers had a copy on %s to move off it", len(moved), off.addr)
	}
	held := func() int {
		n := 0
		for _, id := range moved {
			if stores(off, id) {
				n++
			}
		}
		return n
	}
	reg := prometheus.NewRegistry()
	a := collector(cl, c.store.(*metadata.Store), time.Minute, time.Hour, reg)
	start := time.Now()
	for h := range 2 * len(moved) {
		a.Round(ctx, start.Add(time.Duration(h)*time.Hour))
		if v := metricValues(t, reg)["strata_ledger_gc_overreplicated_copies"]; v > 1 {
			t.Fatalf("%v over-replicated copies timed at once, want at most the bound of 1", v)
		}
		// One copy is deleted an hour after it was first timed, and the
		// next is timed by the pass after: one copy goes every two hours.
		if want := len(moved) - (h+1)/2; held() < want {
			t.Fatalf("after %dh %d copies left, want at least %d: a copy was deleted before it had been timed for the grace period", h, held(), want)
		}
	}
	if n := held(); n != 0 {
		t.Fatalf("%d over-replicated copies left after %d hours, want all collected", n, 2*len(moved))
	}
}
