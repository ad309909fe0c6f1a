package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// testBookie is a real bookie served over gRPC on a loopback port.
type testBookie struct {
	addr string
	dir  string
	b    *bookie.Bookie
	srv  *grpc.Server
	once sync.Once
}

func (tb *testBookie) stop() {
	tb.once.Do(func() {
		tb.srv.Stop()
		_ = tb.b.Close()
	})
}

// pause stops serving tb's gRPC port, as a bookie process that is down
// (its data stays); resume serves it again on the same address.
func (tb *testBookie) pause() { tb.srv.Stop() }

func (tb *testBookie) resume(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(tb.b.ServerOptions()...)
	tb.b.Register(srv)
	tb.srv = srv
	go func() { _ = srv.Serve(lis) }() // not tb.srv: a later restart replaces it
}

// restart starts a stopped tb again on its data directory and address,
// as a bookie process restarted: it reads its index from its files.
func (tb *testBookie) restart(t testing.TB) {
	t.Helper()
	b, err := bookie.Open(testBookieConfig(tb.dir, tb.addr), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tb.b, tb.once = b, sync.Once{}
	tb.resume(t)
}

// testBookieConfig is the config of a test bookie in dir with id: no
// periodic scrub, so that a test finds damage only when it scrubs.
func testBookieConfig(dir, id string) bookie.Config {
	return bookie.Config{DataDir: dir, ID: id, ScrubInterval: -1}
}

// startBookie starts a bookie whose id is its listening address.
func startBookie(t testing.TB) *testBookie {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	dir := t.TempDir()
	b, err := bookie.Open(testBookieConfig(dir, addr), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(b.ServerOptions()...)
	b.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	tb := &testBookie{addr: addr, dir: dir, b: b, srv: srv}
	t.Cleanup(tb.stop)
	return tb
}

// bookieList is a Bookies whose members the test controls.
type bookieList struct {
	mu    sync.Mutex
	addrs []string
}

func (l *bookieList) ListBookies(context.Context) ([]metadata.BookieInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []metadata.BookieInfo
	for _, a := range l.addrs {
		out = append(out, metadata.BookieInfo{ID: a, Addr: a})
	}
	return out, nil
}

func (l *bookieList) add(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = append(l.addrs, addr)
}

func (l *bookieList) remove(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = slices.DeleteFunc(l.addrs, func(a string) bool { return a == addr })
}

type cluster struct {
	store   metadata.LedgerStore
	bookies []*testBookie
	list    *bookieList
}

func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, metatest.OpenStore(t))
}

func startClusterWith(t testing.TB, n int, store metadata.LedgerStore) *cluster {
	t.Helper()
	c := &cluster{store: store, list: &bookieList{}}
	for range n {
		tb := startBookie(t)
		c.bookies = append(c.bookies, tb)
		c.list.addrs = append(c.list.addrs, tb.addr)
	}
	return c
}

func (c *cluster) client(t testing.TB) *ledger.Client {
	t.Helper()
	cl := ledger.NewClient(ledger.ClientConfig{
		AddTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second, MaxInFlight: 500, RetryInterval: 100 * time.Millisecond, TickInterval: 20 * time.Millisecond,
	}, c.store, c.list, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func (c *cluster) bookie(addr string) *testBookie {
	for _, tb := range c.bookies {
		if tb.addr == addr {
			return tb
		}
	}
	return nil
}

func payload(e int) []byte {
	return []byte(fmt.Sprintf("entry %06d %s", e, bytes.Repeat([]byte("x"), e%97)))
}

// acks records the outcome of async appends.
type acks struct {
	mu    sync.Mutex
	ok    map[ids.EntryID][]byte
	errs  []error
	order []ids.EntryID
	count int
}

func newAcks() *acks { return &acks{ok: map[ids.EntryID][]byte{}} }

func (a *acks) done(p []byte) func(ids.EntryID, error) {
	return func(e ids.EntryID, err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.count++
		if err != nil {
			a.errs = append(a.errs, err)
			return
		}
		a.ok[e] = p
		a.order = append(a.order, e)
	}
}

func (a *acks) snapshot() (ok map[ids.EntryID][]byte, errs []error, count int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps(a.ok), slices.Clone(a.errs), a.count
}

func maps(m map[ids.EntryID][]byte) map[ids.EntryID][]byte {
	out := make(map[ids.EntryID][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkReadable reads every acknowledged entry back through a fresh client.
func checkReadable(t *testing.T, cl *ledger.Client, l *metadata.Ledger, ok map[ids.EntryID][]byte) {
	t.Helper()
	if l.LastEntry < 0 {
		if len(ok) > 0 {
			t.Fatalf("ledger closed empty, %d entries were acknowledged", len(ok))
		}
		return
	}
	got, err := cl.Read(context.Background(), l, 0, l.LastEntry)
	if err != nil {
		t.Fatalf("read 0..%d: %v", l.LastEntry, err)
	}
	if len(got) != int(l.LastEntry+1) {
		t.Fatalf("read %d entries, want %d", len(got), l.LastEntry+1)
	}
	for e, p := range ok {
		if e > l.LastEntry {
			t.Fatalf("entry %d was acknowledged but the ledger ends at %d", e, l.LastEntry)
		}
		if !bytes.Equal(got[e].Payload, p) {
			t.Fatalf("entry %d reads %q, acknowledged %q", e, got[e].Payload, p)
		}
	}
}

func TestStandaloneLedgerAppendsReadsAndCloses(t *testing.T) {
	c := startCluster(t, 1)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.StandaloneOptions())
	for i := range 50 {
		e, err := w.AppendSync(ctx, payload(i))
		if err != nil || e != ids.EntryID(i) {
			t.Fatalf("append %d: entry %d, %v", i, e, err)
		}
	}
	lm, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	// The bookie learns the LAC from the adds (piggy-backed): the last one
	// carries 48.
	if lac, err := cl.ReadLAC(ctx, lm); err != nil || lac < 48 {
		t.Fatalf("ReadLAC = %d, %v; want ≥ 48", lac, err)
	}
	l, err := w.Close(ctx, func(l *metadata.Ledger) { l.Topic = "t/n/x"; l.LastEntry = 1000 })
	if err != nil {
		t.Fatal(err)
	}
	if l.State != metadata.LedgerClosed || l.LastEntry != 49 || l.Topic != "t/n/x" || l.Bytes == 0 {
		t.Fatalf("closed ledger %+v", l)
	}
	ok := map[ids.EntryID][]byte{}
	for i := range 50 {
		ok[ids.EntryID(i)] = payload(i)
	}
	checkReadable(t, c.client(t), l, ok)
	if _, err := w.AppendSync(ctx, []byte("late")); !errors.Is(err, ledger.ErrLedgerClosed) {
		t.Fatalf("append after close: %v, want ErrLedgerClosed", err)
	}
}

func TestWaitLACReturnsOnceTheWriterAdvances(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.ClusterOptions())
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	lm, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan ids.EntryID, 1)
	go func() {
		lac, err := c.client(t).WaitLAC(ctx, lm, 0, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- lac
	}()
	for i := 1; i < 5; i++ {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if lac := <-got; lac < 1 {
		t.Fatalf("WaitLAC answered %d, want > 0", lac)
	}
}

// appendStoppingABookie appends n entries and, once 50 are acknowledged a
// quarter of the way in, stops the bookie victim (and drops it from the live
// list). Every append must succeed; it returns the acknowledged entries.
func appendStoppingABookie(t *testing.T, c *cluster, w *ledger.Writer, victim string, n int) map[ids.EntryID][]byte {
	t.Helper()
	a := newAcks()
	for i := range n {
		if i == n/4 {
			waitFor(t, "the first acks", func() bool { ok, _, _ := a.snapshot(); return len(ok) >= 50 })
			c.list.remove(victim)
			c.bookie(victim).stop()
		}
		p := payload(i)
		w.Append(p, a.done(p))
	}
	waitFor(t, "every append to complete", func() bool { _, _, count := a.snapshot(); return count == n })
	ok, errs, _ := a.snapshot()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(errs), errs[0])
	}
	return ok
}

// A bookie of the ensemble stops in the middle of a stream of appends: the
// writer replaces it with the spare bookie, records a new fragment, and every
// acknowledged entry is readable after close.
func TestEnsembleChangeOnBookieStopLosesNoAcknowledgedEntry(t *testing.T) {
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.ClusterOptions())
	first, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	victim := first.Fragments[0].Bookies[1]
	const n = 400
	ok := appendStoppingABookie(t, c, w, victim, n)
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Fragments) < 2 || slices.Contains(l.Fragments[len(l.Fragments)-1].Bookies, victim) {
		t.Fatalf("no ensemble change away from %s: %+v", victim, l.Fragments)
	}
	if l.LastEntry != n-1 {
		t.Fatalf("closed at %d, want %d", l.LastEntry, n-1)
	}
	checkReadable(t, c.client(t), l, ok)
}

// With no spare bookie, a stopped ensemble member cannot be replaced: the
// writer keeps writing to the other two (Qa = 2), and a recovery by another
// client while that bookie is still down closes the ledger with every
// acknowledged entry.
func TestBookieStopWithoutSpareKeepsWritingAndRecoveryWorksWithoutIt(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.ClusterOptions())
	victim := c.bookies[2].addr
	const n = 300
	ok := appendStoppingABookie(t, c, w, victim, n)
	l, err := c.client(t).Recover(ctx, w.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.LastEntry != n-1 {
		t.Fatalf("recovered up to %d, want %d", l.LastEntry, n-1)
	}
	checkReadable(t, c.client(t), l, ok)
}

// A second client recovers the ledger while the first still writes: the
// first gets ErrFenced, and every entry it had acknowledged is in the
// recovered ledger with the same bytes.
func TestRecoveryWhileWritingFencesTheWriterAndKeepsItsAckedEntries(t *testing.T) {
	c := startCluster(t, 3)
	writer := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, writer, ledger.ClusterOptions())
	a := newAcks()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := payload(i)
			w.Append(p, a.done(p))
		}
	}()
	waitFor(t, "the first acks", func() bool { ok, _, _ := a.snapshot(); return len(ok) >= 100 })
	t.Logf("%v: recovering", time.Now())
	recovered, err := c.client(t).Recover(ctx, w.ID(), func(l *metadata.Ledger) { l.Topic = "recovered" })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: recovered at %d", time.Now(), recovered.LastEntry)
	waitFor(t, "the writer to be fenced", func() bool { _, errs, _ := a.snapshot(); return len(errs) > 0 })
	t.Logf("%v: fenced", time.Now())
	close(stop)
	wg.Wait()
	if _, err := w.Close(ctx, nil); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("Close of the fenced writer: %v, want ErrFenced", err)
	}
	ok, errs, _ := a.snapshot()
	if !errors.Is(errs[0], ledger.ErrFenced) {
		t.Fatalf("first append error %v, want ErrFenced", errs[0])
	}
	if recovered.State != metadata.LedgerClosed || recovered.Topic != "recovered" {
		t.Fatalf("recovered %+v", recovered)
	}
	checkReadable(t, c.client(t), recovered, ok)
	again, err := c.client(t).Recover(ctx, w.ID(), nil)
	if err != nil || again.LastEntry != recovered.LastEntry || again.Version != recovered.Version {
		t.Fatalf("second Recover = %+v, %v; want the first one's close", again, err)
	}
}

func TestDeleteRemovesTheLedgerFromBookiesAndMetadata(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.ClusterOptions())
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.GetLedger(ctx, l.ID); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("metadata after delete: %v", err)
	}
	if _, err := cl.Read(ctx, l, 0, 0); err == nil {
		t.Fatal("read after delete succeeded")
	}
}

// deletedWithABookieDown starts a cluster of n bookies, writes and closes a
// ledger, takes the first bookie of its ensemble down with down, and
// deletes the ledger, which must fail. It answers the cluster, the client,
// the ledger and the bookie taken down.
func deletedWithABookieDown(t *testing.T, n int, down func(c *cluster, bookie string)) (*cluster, *ledger.Client, *metadata.Ledger, string) {
	t.Helper()
	c := startCluster(t, n)
	cl := c.client(t)
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 20)
	b := l.Fragments[0].Bookies[0]
	down(c, b)
	if err := cl.Delete(context.Background(), l); err == nil {
		t.Fatal("delete with a bookie down succeeded")
	}
	return c, cl, l, b
}

// TestDeletionABookieDownLeftHalfDoneIsFinishedByTheAuditor: a delete
// while one bookie of the ensemble is down deletes the others' copies,
// fails, and leaves the metadata marked; the auditor's next round, the
// bookie back, deletes its copy and the metadata. Before the mark, the
// ledger was forgotten: its copies and metadata stayed for good.
func TestDeletionABookieDownLeftHalfDoneIsFinishedByTheAuditor(t *testing.T) {
	c, cl, l, addr := deletedWithABookieDown(t, 3, func(c *cluster, b string) { c.bookie(b).pause() })
	ctx := context.Background()
	down := c.bookie(addr)
	marked, err := c.store.GetLedger(ctx, l.ID)
	if err != nil || !marked.Deleting {
		t.Fatalf("metadata after the failed delete: %+v, %v; want it marked", marked, err)
	}
	for _, b := range l.Fragments[0].Bookies[1:] {
		if _, err := c.bookie(b).b.Read(l.ID, 0); err == nil {
			t.Fatalf("bookie %s still holds the ledger", b)
		}
	}
	down.resume(t)
	// The client may still be backing off from the bookie's old
	// connection: rounds retry, a minute apart in the auditor's clock (it
	// reads every ledger again at most once a minute for deletions).
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour})
	at := time.Now()
	waitFor(t, "an audit round to finish the deletion", func() bool {
		at = at.Add(2 * time.Minute)
		a.Round(ctx, at)
		_, err := c.store.GetLedger(ctx, l.ID)
		return errors.Is(err, metadata.ErrNotFound)
	})
	if _, err := down.b.Read(l.ID, 0); err == nil {
		t.Fatal("the bookie that was down still holds the ledger")
	}
}

// TestALedgerMarkedForDeletionIsNotReReplicated: re-replication leaves a
// ledger being deleted alone: a copy made for it would be named by no
// record once the deletion finishes, and stay on the spare for good.
func TestALedgerMarkedForDeletionIsNotReReplicated(t *testing.T) {
	c, cl, l, down := deletedWithABookieDown(t, 4, func(c *cluster, b string) { c.bookie(b).pause(); c.list.remove(b) })
	ctx := context.Background()
	got, err := cl.Rereplicate(ctx, l.ID, down)
	if err != nil || !got.Deleting || !slices.Contains(got.Fragments[0].Bookies, down) {
		t.Fatalf("re-replication of a ledger being deleted: %+v, %v; want it left as it is", got, err)
	}
	for _, tb := range c.bookies {
		if tb.addr == down {
			continue
		}
		if _, err := tb.b.Read(l.ID, 0); err == nil {
			t.Fatalf("bookie %s holds a copy of the ledger being deleted", tb.addr)
		}
	}
}

// TestDeletionIsFinishedWithoutABookieLostForGood: a ledger marked for
// deletion that names a bookie lost past the auditor's delay is deleted
// without it (its copy went with it), so the lost bookie stops being
// counted.
func TestDeletionIsFinishedWithoutABookieLostForGood(t *testing.T) {
	c, cl, l, _ := deletedWithABookieDown(t, 3, func(c *cluster, b string) { c.bookie(b).stop(); c.list.remove(b) })
	ctx := context.Background()
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour})
	start := time.Now()
	a.Round(ctx, start)
	if _, err := c.store.GetLedger(ctx, l.ID); err != nil {
		t.Fatalf("deleted before the bookie counted as lost: %v", err)
	}
	a.Round(ctx, start.Add(2*time.Hour))
	if _, err := c.store.GetLedger(ctx, l.ID); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("metadata once the bookie is lost past the delay: %v", err)
	}
}

// TestMarkedDeletionsAreTriedInTurnSoOneThatCannotFinishBlocksNone: with
// one try a round, a marked ledger whose bookie stays down does not keep a
// later marked ledger, which could finish, from being tried: each round
// starts after the last one tried.
func TestMarkedDeletionsAreTriedInTurnSoOneThatCannotFinishBlocksNone(t *testing.T) {
	ledger.SetMaxDeletionsPerRound(t, 1)
	c := startCluster(t, 4)
	cl := c.client(t)
	ctx := context.Background()
	// Ensembles of 3 of the 4 bookies, chosen at random: the stuck ledger
	// needs a bookie the free one does not name.
	stuck := writeClosed(t, c, cl, ledger.ClusterOptions(), 5)
	var free *metadata.Ledger
	var down string
	for down == "" {
		free = writeClosed(t, c, cl, ledger.ClusterOptions(), 5)
		for _, b := range stuck.Fragments[0].Bookies {
			if !slices.Contains(free.Fragments[0].Bookies, b) {
				down = b
			}
		}
	}
	// Both marked, as a failed delete leaves them; only the first names the
	// bookie that then stays down.
	for _, l := range []*metadata.Ledger{stuck, free} {
		cur, err := c.store.GetLedger(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		cur.Deleting = true
		if err := c.store.UpdateLedger(ctx, cur); err != nil {
			t.Fatal(err)
		}
	}
	c.bookie(down).pause()
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour})
	start := time.Now()
	for i := range 2 { // a minute apart: marked ledgers are scanned again every minute
		a.Round(ctx, start.Add(time.Duration(i)*2*time.Minute))
	}
	if _, err := c.store.GetLedger(ctx, free.ID); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("the ledger that could be deleted, after two rounds: %v", err)
	}
	if l, err := c.store.GetLedger(ctx, stuck.ID); err != nil || !l.Deleting {
		t.Fatalf("the ledger whose bookie is down: %+v, %v; want still marked", l, err)
	}
}

func TestCreateRejectsBadQuorumsAndTooFewBookies(t *testing.T) {
	c := startCluster(t, 1)
	cl := c.client(t)
	ctx := context.Background()
	if _, err := cl.Create(ctx, ledger.CreateOptions{Ensemble: 2, WriteQuorum: 3, AckQuorum: 1}); !errors.Is(err, ledger.ErrInvalidArgument) {
		t.Fatalf("E < Qw: %v", err)
	}
	if _, err := cl.Create(ctx, ledger.ClusterOptions()); !errors.Is(err, ledger.ErrNotEnoughBookies) {
		t.Fatalf("3 of 1 bookies: %v", err)
	}
}

func TestBadInputGetsTypedErrorsAndChangesNothing(t *testing.T) {
	c := startClusterWith(t, 1, metatest.NewMemLedgerStore())
	cl := ledger.NewClient(ledger.ClientConfig{MaxEntryBytes: 100}, c.store, c.list, nil)
	t.Cleanup(func() { _ = cl.Close() })
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.StandaloneOptions())
	if _, err := w.AppendSync(ctx, make([]byte, 101)); errcode.CodeOf(err) != errcode.MessageTooLarge {
		t.Fatalf("oversize append: %v, want MESSAGE_TOO_LARGE", err)
	}
	if e, err := w.AppendSync(ctx, []byte("ok")); err != nil || e != 0 {
		t.Fatalf("append after a rejected one: %d, %v; want entry 0", e, err)
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]ids.EntryID{{-1, 0}, {1, 0}, {0, 1}} {
		if _, err := cl.Read(ctx, l, r[0], r[1]); !errors.Is(err, ledger.ErrInvalidArgument) {
			t.Fatalf("read %d..%d of a ledger closed at 0: %v, want ErrInvalidArgument", r[0], r[1], err)
		}
	}
	if _, err := cl.Recover(ctx, 12345, nil); !errors.Is(err, ledger.ErrLedgerNotFound) {
		t.Fatalf("recover of an unknown ledger: %v, want ErrLedgerNotFound", err)
	}
	if _, err := cl.WaitLAC(ctx, &metadata.Ledger{ID: l.ID, Fragments: l.Fragments}, 0, -time.Second); !errors.Is(err, ledger.ErrInvalidArgument) {
		t.Fatalf("WaitLAC with a negative timeout: %v", err)
	}
}

// Client.Close stops every writer: pending and later appends fail with
// ErrLedgerClosed and the ledger stays open, for a recovery to close.
func TestClientCloseStopsWritersAndLeavesTheLedgerToRecovery(t *testing.T) {
	c := startClusterWith(t, 1, metatest.NewMemLedgerStore())
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.StandaloneOptions())
	if _, err := w.AppendSync(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AppendSync(ctx, payload(1)); !errors.Is(err, ledger.ErrLedgerClosed) {
		t.Fatalf("append after Client.Close: %v, want ErrLedgerClosed", err)
	}
	l, err := c.store.GetLedger(ctx, w.ID())
	if err != nil || l.State != metadata.LedgerOpen {
		t.Fatalf("ledger after Client.Close: %+v, %v; want still open", l, err)
	}
	l, err = c.client(t).Recover(ctx, w.ID(), nil)
	if err != nil || l.LastEntry != 0 {
		t.Fatalf("recovered %+v, %v; want closed at 0", l, err)
	}
}

func TestWaitLACWithoutProgressReturnsAfterTheTimeout(t *testing.T) {
	c := startClusterWith(t, 1, metatest.NewMemLedgerStore())
	cl := c.client(t)
	ctx := context.Background()
	w := mustCreate(t, cl, ledger.StandaloneOptions())
	for i := range 3 {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.store.GetLedger(ctx, w.ID())
	if err != nil {
		t.Fatal(err)
	}
	lac, err := cl.WaitLAC(ctx, l, 5, 50*time.Millisecond)
	if err != nil || lac != 1 {
		t.Fatalf("WaitLAC past the end: %d, %v; want the bookie's LAC 1 (piggy-backed on entry 2)", lac, err)
	}
}

// With E > Qw each bookie holds only the entries of its write sets: reads
// and recovery must ask the right bookies, entry by entry.
func TestStripedLedgerReadsAndRecoversFromEachEntrysWriteSet(t *testing.T) {
	c := startClusterWith(t, 3, metatest.NewMemLedgerStore())
	cl := c.client(t)
	ctx := context.Background()
	w, err := cl.Create(ctx, ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	ok := map[ids.EntryID][]byte{}
	for i := range 60 {
		e, err := w.AppendSync(ctx, payload(i))
		if err != nil {
			t.Fatal(err)
		}
		ok[e] = payload(i)
	}
	l, err := c.client(t).Recover(ctx, w.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.LastEntry != 59 {
		t.Fatalf("recovered up to %d, want 59", l.LastEntry)
	}
	checkReadable(t, c.client(t), l, ok)
	if _, err := w.AppendSync(ctx, payload(60)); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("append after recovery: %v, want ErrFenced", err)
	}
}

// mustCreate creates a ledger with opts or fails the test.
func mustCreate(t *testing.T, cl *ledger.Client, opts ledger.CreateOptions) *ledger.Writer {
	t.Helper()
	w, err := cl.Create(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCloseRightAfterAppendsWaitsForThem: appends that returned before
// Close was called are written and confirmed, not failed as closed, and
// the ledger closes after the last of them.
func TestCloseRightAfterAppendsWaitsForThem(t *testing.T) {
	c := startCluster(t, 1)
	cl := c.client(t)
	ctx := context.Background()
	for round := range 20 {
		w := mustCreate(t, cl, ledger.StandaloneOptions())
		var mu sync.Mutex
		var errs []error
		const n = 50
		for i := range n {
			w.Append(payload(i), func(_ ids.EntryID, err error) {
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		l, err := w.Close(ctx, nil)
		if err != nil || l.LastEntry != n-1 {
			t.Fatalf("round %d: close: %+v %v, want the ledger closed at %d", round, l, err, n-1)
		}
		mu.Lock()
		if len(errs) > 0 {
			t.Fatalf("round %d: %d appends failed, one: %v", round, len(errs), errs[0])
		}
		mu.Unlock()
	}
}

// TestReadAnswersTheEntriesBeforeOneThatCannotBeRead: a read over a range
// whose later entry no bookie can serve answers the readable entries
// before it, and a read from that entry answers the error. A read threw
// the good prefix away, so a reader waiting on a damaged entry never got
// the messages before it.
func TestReadAnswersTheEntriesBeforeOneThatCannotBeRead(t *testing.T) {
	c := startClusterWith(t, 2, metatest.NewMemLedgerStore())
	cl := c.client(t)
	ctx := context.Background()
	// Striped over two bookies, one copy each: entry e lives on one bookie
	// only, the odd entries on the other one.
	w := mustCreate(t, cl, ledger.CreateOptions{Ensemble: 2, WriteQuorum: 1, AckQuorum: 1})
	for i := range 6 {
		if _, err := w.AppendSync(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := w.Close(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.bookie(writeSetOf(l, 1)).stop()
	got, err := cl.Read(ctx, l, 0, 5)
	if err != nil || len(got) != 1 || got[0].ID != 0 || !bytes.Equal(got[0].Payload, payload(0)) {
		t.Fatalf("read 0..5 with entry 1 unreadable: %d entries, %v; want entry 0", len(got), err)
	}
	if got, err := cl.Read(ctx, l, 1, 5); err == nil {
		t.Fatalf("read from the unreadable entry answered %d entries", len(got))
	}
}

// writeSetOf is the one bookie holding entry e of a ledger with Qw = 1.
func writeSetOf(l *metadata.Ledger, e ids.EntryID) string {
	f := l.FragmentFor(e)
	return f.Bookies[int(e)%len(f.Bookies)]
}
