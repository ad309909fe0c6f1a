package ledger

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

func testLedger(e, qw, qa int) *metadata.Ledger {
	var bs []string
	for i := range e {
		bs = append(bs, string(rune('a'+i)))
	}
	return &metadata.Ledger{
		ID: 1, Ensemble: e, WriteQuorum: qw, AckQuorum: qa, State: metadata.LedgerOpen,
		Fragments: []metadata.Fragment{{FirstEntry: 0, Bookies: bs}}, LastEntry: ids.NoEntry, Version: 10,
	}
}

var testTiming = writerTiming{AddTimeout: time.Second, RetryInterval: 100 * time.Millisecond}

func TestWriteSetStripesOverConsecutiveBookies(t *testing.T) {
	f := &metadata.Fragment{Bookies: []string{"a", "b", "c"}}
	for _, tc := range []struct {
		qw   int
		e    ids.EntryID
		want []string
	}{
		{2, 0, []string{"a", "b"}},
		{2, 1, []string{"b", "c"}},
		{2, 2, []string{"c", "a"}},
		{2, 4, []string{"b", "c"}},
		{3, 5, []string{"c", "a", "b"}},
		{1, 7, []string{"b"}},
	} {
		if got := writeSet(f, tc.qw, tc.e); !slices.Equal(got, tc.want) {
			t.Errorf("Qw=%d entry %d: %v, want %v", tc.qw, tc.e, got, tc.want)
		}
	}
}

func TestInWriteSetAgreesWithWriteSet(t *testing.T) {
	for n := 1; n <= 6; n++ {
		f := &metadata.Fragment{Bookies: []string{"a", "b", "c", "d", "e", "f"}[:n]}
		for qw := 1; qw <= n; qw++ {
			for k := range n {
				for e := range ids.EntryID(3 * n) {
					if got, want := inWriteSet(n, qw, k, e), slices.Contains(writeSet(f, qw, e), f.Bookies[k]); got != want {
						t.Fatalf("E=%d Qw=%d bookie %d entry %d: %v, want %v", n, qw, k, e, got, want)
					}
				}
			}
		}
	}
}

func TestFenceQuorumNeedsQwMinusQaPlusOneOfEveryWriteSet(t *testing.T) {
	ens := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		qw, qa int
		fenced string
		want   bool
	}{
		{3, 2, "ab", false}, // write set {c,d,a} has only a
		{3, 2, "ac", false}, // write set {b,c,d} has only c
		{3, 2, "abc", true}, // every write set holds two of them
		{2, 2, "a", false},  // write set {b,c} has none
		{2, 2, "ac", true},  // each pair {a,b},{b,c},{c,d},{d,a} holds one
		{2, 1, "ac", false}, // Qa=1 needs both of each pair
		{2, 1, "abcd", true},
		{4, 4, "a", true},
	} {
		ok := func(b string) bool { return slices.Contains([]rune(tc.fenced), rune(b[0])) }
		if got := fenceQuorum(ens, tc.qw, tc.qa, ok); got != tc.want {
			t.Errorf("Qw=%d Qa=%d fenced %q: %v, want %v", tc.qw, tc.qa, tc.fenced, got, tc.want)
		}
	}
}

func doneIDs(r writerReady) (ok []ids.EntryID, errs []error) {
	for _, d := range r.Done {
		if d.Err != nil {
			errs = append(errs, d.Err)
		} else {
			ok = append(ok, d.Entry)
		}
	}
	return ok, errs
}

func TestWriterConfirmsInEntryOrderAtAckQuorumAndPiggybacksLAC(t *testing.T) {
	w := newWriterState(testLedger(3, 2, 2), testTiming)
	w.append([]byte("p0"))
	w.append([]byte("p1"))
	r := w.ready()
	if len(r.Adds) != 4 || r.Adds[0].Bookie != "a" || r.Adds[1].Bookie != "b" || r.Adds[2].Bookie != "b" || r.Adds[3].Bookie != "c" {
		t.Fatalf("adds %+v, want entry 0 to a,b and entry 1 to b,c", r.Adds)
	}
	w.addResult("b", 1, nil)
	w.addResult("c", 1, nil)
	w.addResult("a", 0, nil)
	if ok, _ := doneIDs(w.ready()); len(ok) != 0 {
		t.Fatalf("confirmed %v before entry 0 had Qa acks", ok)
	}
	w.addResult("c", 0, nil) // c is not in entry 0's write set
	if ok, _ := doneIDs(w.ready()); len(ok) != 0 {
		t.Fatalf("an ack from outside the write set counted: %v", ok)
	}
	w.addResult("b", 0, nil)
	if ok, _ := doneIDs(w.ready()); !slices.Equal(ok, []ids.EntryID{0, 1}) || w.LAC() != 1 {
		t.Fatalf("confirmed %v LAC %d, want [0 1] and 1", ok, w.LAC())
	}
	w.append([]byte("p2"))
	if r := w.ready(); r.Adds[0].LAC != 1 || r.Adds[0].Entry != 2 {
		t.Fatalf("add %+v, want entry 2 carrying LAC 1", r.Adds[0])
	}
}

func TestWriterReplacesAFailedBookieFromLACPlusOneAndResends(t *testing.T) {
	w := newWriterState(testLedger(3, 3, 2), testTiming)
	w.append([]byte("p0"))
	w.append([]byte("p1"))
	w.ready()
	w.addResult("a", 0, nil)
	w.addResult("b", 0, nil)
	if ok, _ := doneIDs(w.ready()); !slices.Equal(ok, []ids.EntryID{0}) {
		t.Fatalf("confirmed %v, want [0]", ok)
	}
	w.bookieFailed("c")
	if r := w.ready(); !r.ListBookies {
		t.Fatal("no bookie listing after a failure")
	}
	w.bookiesListed([]string{"c", "a", "d", "b"}, nil)
	r := w.ready()
	if r.Meta == nil || r.Meta.Put == nil {
		t.Fatal("no metadata update for the ensemble change")
	}
	want := []metadata.Fragment{{FirstEntry: 0, Bookies: []string{"a", "b", "c"}}, {FirstEntry: 1, Bookies: []string{"a", "b", "d"}}}
	if got := r.Meta.Put.Fragments; len(got) != 2 || got[1].FirstEntry != 1 || !slices.Equal(got[1].Bookies, want[1].Bookies) {
		t.Fatalf("fragments %+v, want %+v", got, want)
	}
	if len(r.Adds) != 0 {
		t.Fatalf("sent %+v before the new fragment was recorded", r.Adds)
	}
	w.addResult("a", 1, nil)
	w.addResult("b", 1, nil)
	if ok, _ := doneIDs(w.ready()); len(ok) != 0 {
		t.Fatalf("confirmed %v while the ensemble change is not recorded", ok)
	}
	stored := cloneLedger(r.Meta.Put)
	stored.Version++
	w.metaResult(stored, nil)
	r = w.ready()
	if len(r.Adds) != 1 || r.Adds[0].Bookie != "d" || r.Adds[0].Entry != 1 {
		t.Fatalf("adds %+v after the change, want entry 1 to d", r.Adds)
	}
	if ok, _ := doneIDs(r); !slices.Equal(ok, []ids.EntryID{1}) {
		t.Fatalf("confirmed %v after the change, want [1]", ok)
	}
}

func TestWriterWithoutReplacementKeepsWritingAtAckQuorum(t *testing.T) {
	w := newWriterState(testLedger(3, 3, 2), testTiming)
	w.append([]byte("p0"))
	w.ready()
	w.bookieFailed("c")
	w.ready()
	w.bookiesListed([]string{"a", "b"}, nil)
	if r := w.ready(); r.Meta != nil {
		t.Fatalf("metadata update %+v without a replacement", r.Meta)
	}
	w.addResult("a", 0, nil)
	w.addResult("b", 0, nil)
	if ok, _ := doneIDs(w.ready()); !slices.Equal(ok, []ids.EntryID{0}) {
		t.Fatalf("confirmed %v, want [0]", ok)
	}
	w.tick(200 * time.Millisecond) // retry: list again
	if r := w.ready(); !r.ListBookies {
		t.Fatal("no retry of the ensemble change")
	}
}

// A sole bookie that turns read-only (its disk full) refuses adds and is
// not listed among the writable ones, so it cannot be replaced: the
// writer keeps the entries pending, and once the bookie is listed again
// (writable) sends them again and confirms them, in order, nothing lost.
func TestWriterResendsToAReadOnlyBookieOnceItIsWritableAgain(t *testing.T) {
	w := newWriterState(testLedger(1, 1, 1), testTiming)
	w.append([]byte("p0"))
	w.append([]byte("p1"))
	w.ready()
	w.addResult("a", 0, errcode.New(errcode.BookieReadOnly, "disk full"))
	if r := w.ready(); !r.ListBookies {
		t.Fatal("no bookie listing after a refused add")
	}
	w.bookiesListed(nil, nil) // read-only: not writable
	if r := w.ready(); r.Meta != nil || len(r.Adds) != 0 {
		t.Fatalf("ready %+v while no bookie is writable", r)
	}
	w.tick(200 * time.Millisecond)
	if r := w.ready(); !r.ListBookies {
		t.Fatal("no retry of the ensemble change")
	}
	w.bookiesListed([]string{"a"}, nil) // writable again
	r := w.ready()
	var sent []ids.EntryID
	for _, a := range r.Adds {
		if a.Bookie == "a" {
			sent = append(sent, a.Entry)
		}
	}
	if !slices.Equal(sent, []ids.EntryID{0, 1}) || r.Meta != nil {
		t.Fatalf("sent %v (meta %+v) once the bookie is writable again, want entries 0 and 1 to it, no ensemble change", sent, r.Meta)
	}
	w.addResult("a", 0, nil)
	w.addResult("a", 1, nil)
	if ok, _ := doneIDs(w.ready()); !slices.Equal(ok, []ids.EntryID{0, 1}) {
		t.Fatalf("confirmed %v, want [0 1]", ok)
	}
}

func TestWriterFailsASilentBookieAfterAddTimeout(t *testing.T) {
	w := newWriterState(testLedger(3, 3, 3), testTiming)
	w.append([]byte("p0"))
	w.ready()
	w.tick(500 * time.Millisecond)
	if r := w.ready(); r.ListBookies {
		t.Fatal("failed a bookie before AddTimeout")
	}
	w.addResult("a", 0, nil)
	w.addResult("b", 0, nil)
	w.tick(1100 * time.Millisecond)
	if r := w.ready(); !r.ListBookies || !w.isFailed("c") || w.isFailed("a") || w.isFailed("b") {
		t.Fatalf("after AddTimeout: failed %v, want only c", w.failed)
	}
}

func TestWriterFencedByABookieFailsPendingAndLaterAppends(t *testing.T) {
	w := newWriterState(testLedger(3, 3, 2), testTiming)
	w.append([]byte("p0"))
	w.append([]byte("p1"))
	w.ready()
	w.addResult("a", 0, nil)
	w.addResult("b", 1, errcode.New(errcode.Fenced, "fenced"))
	w.addResult("b", 0, nil)
	w.append([]byte("p2"))
	ok, errs := doneIDs(w.ready())
	if len(ok) != 0 || len(errs) != 3 {
		t.Fatalf("confirmed %v, failed %d; want nothing confirmed and 3 failures", ok, len(errs))
	}
	for _, err := range errs {
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("error %v, want ErrFenced", err)
		}
	}
	w.close()
	if r := w.ready(); !r.CloseDone || !errors.Is(r.CloseErr, ErrFenced) || r.Meta != nil {
		t.Fatalf("close of a fenced writer: %+v", r)
	}
}

func TestWriterIsFencedWhenItsEnsembleChangeFindsTheLedgerInRecovery(t *testing.T) {
	w := newWriterState(testLedger(3, 3, 2), testTiming)
	w.append([]byte("p0"))
	w.ready()
	w.addResult("a", 0, nil)
	w.bookieFailed("b")
	w.ready()
	w.bookiesListed([]string{"d"}, nil)
	w.ready()
	w.metaResult(nil, metadata.ErrBadVersion)
	if r := w.ready(); r.Meta == nil || r.Meta.Put != nil {
		t.Fatalf("lost CAS not followed by a read: %+v", r.Meta)
	}
	inRecovery := testLedger(3, 3, 2)
	inRecovery.State = metadata.LedgerInRecovery
	w.metaResult(inRecovery, nil)
	w.addResult("c", 0, nil) // too late: fenced first
	ok, errs := doneIDs(w.ready())
	if len(ok) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrFenced) {
		t.Fatalf("confirmed %v, failed %v; want entry 0 fenced", ok, errs)
	}
}

func TestWriterCloseRecordsLACAndBytesAfterPendingEntries(t *testing.T) {
	w := newWriterState(testLedger(1, 1, 1), testTiming)
	w.append([]byte("12345"))
	w.ready()
	w.close()
	if r := w.ready(); r.Meta != nil {
		t.Fatal("closed with an entry pending")
	}
	w.append([]byte("late"))
	if _, errs := doneIDs(w.ready()); len(errs) != 1 || !errors.Is(errs[0], ErrLedgerClosed) {
		t.Fatalf("append while closing: %v", errs)
	}
	w.addResult("a", 0, nil)
	r := w.ready()
	if r.Meta == nil || !r.Meta.Close || r.Meta.Put.State != metadata.LedgerClosed || r.Meta.Put.LastEntry != 0 || r.Meta.Put.Bytes != 5 {
		t.Fatalf("close put %+v", r.Meta)
	}
	stored := cloneLedger(r.Meta.Put)
	stored.Version++
	w.metaResult(stored, nil)
	if r := w.ready(); !r.CloseDone || r.CloseErr != nil || r.Closed.LastEntry != 0 {
		t.Fatalf("close result %+v", r)
	}
}

var testRecoveryTiming = recoveryTiming{RequestTimeout: time.Second, RetryInterval: 100 * time.Millisecond, Window: 1}

// recoverTo drives a recovery of an open ledger up to its fence requests.
func recoverTo(t *testing.T, l *metadata.Ledger) *recoveryState {
	t.Helper()
	r := newRecoveryState(l.ID, testRecoveryTiming)
	r.start(0)
	if o := r.ready(); o.Meta == nil || o.Meta.Put != nil {
		t.Fatalf("recovery did not start by reading the metadata: %+v", o)
	}
	r.metaResult(cloneLedger(l), nil)
	o := r.ready()
	if o.Meta == nil || o.Meta.Put == nil || o.Meta.Put.State != metadata.LedgerInRecovery {
		t.Fatalf("recovery did not mark the ledger in-recovery: %+v", o.Meta)
	}
	stored := cloneLedger(o.Meta.Put)
	stored.Version++
	r.metaResult(stored, nil)
	if o := r.ready(); !slices.Equal(o.Fences, l.Fragments[len(l.Fragments)-1].Bookies) {
		t.Fatalf("fences %v, want the last fragment", o.Fences)
	}
	return r
}

func readBookies(o recoveryReady, e ids.EntryID) []string {
	var out []string
	for _, op := range o.Reads {
		if op.Entry == e {
			out = append(out, op.Bookie)
		}
	}
	slices.Sort(out)
	return out
}

func TestRecoveryReadsFromMaxLACReplicatesAndClosesAtTheFirstMissingEntry(t *testing.T) {
	noEntry := errcode.New(errcode.EntryNotFound, "no")
	r := recoverTo(t, testLedger(3, 3, 2))
	r.fenceResult("a", 1, nil)
	if o := r.ready(); len(o.Reads) != 0 {
		t.Fatal("read before the fence quorum")
	}
	r.fenceResult("b", 0, nil)
	o := r.ready()
	if got := readBookies(o, 2); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("reads of entry 2 from %v, want the fenced a, b (from max LAC 1 + 1)", got)
	}
	r.readResult("a", 2, []byte("p2"), nil)
	o = r.ready()
	if len(o.Adds) != 1 || o.Adds[0].Bookie != "c" || !o.Adds[0].Recovery {
		t.Fatalf("adds %+v, want a recovery add to the unfenced c only (b's read is pending)", o.Adds)
	}
	r.readResult("b", 2, nil, noEntry)
	o = r.ready()
	if len(o.Adds) != 1 || o.Adds[0].Bookie != "b" {
		t.Fatalf("adds %+v, want a recovery add to b", o.Adds)
	}
	r.addResult("b", 2, nil)
	if o := r.ready(); len(o.Reads) != 0 {
		t.Fatal("moved on while the add to c is pending")
	}
	r.addResult("c", 2, nil)
	o = r.ready()
	if got := readBookies(o, 3); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("reads of entry 3 from %v", got)
	}
	r.readResult("a", 3, nil, noEntry)
	if o := r.ready(); o.Meta != nil {
		t.Fatal("closed on one negative answer; Qw-Qa+1 = 2 are needed")
	}
	r.readResult("b", 3, nil, noEntry)
	o = r.ready()
	if o.Meta == nil || !o.Meta.Close || o.Meta.Put.State != metadata.LedgerClosed || o.Meta.Put.LastEntry != 2 {
		t.Fatalf("close %+v, want closed at 2", o.Meta)
	}
}

func TestRecoveryOfAClosedLedgerReturnsItUnchanged(t *testing.T) {
	l := testLedger(3, 3, 2)
	l.State, l.LastEntry = metadata.LedgerClosed, 41
	r := newRecoveryState(l.ID, testRecoveryTiming)
	r.start(0)
	r.ready()
	r.metaResult(l, nil)
	if o := r.ready(); !o.Done || o.Err != nil || o.Result.LastEntry != 41 || len(o.Fences) != 0 {
		t.Fatalf("recovery of a closed ledger: %+v", o)
	}
}

func TestConcurrentRecoveriesConvergeOnTheFirstClose(t *testing.T) {
	noEntry := errcode.New(errcode.EntryNotFound, "no")
	r := recoverTo(t, testLedger(3, 3, 2))
	r.fenceResult("a", 4, nil)
	r.fenceResult("b", 4, nil)
	r.ready()
	r.readResult("a", 5, nil, noEntry)
	r.readResult("b", 5, nil, noEntry)
	if o := r.ready(); o.Meta == nil || o.Meta.Put.LastEntry != 4 {
		t.Fatalf("close %+v, want at 4", o.Meta)
	}
	r.metaResult(nil, metadata.ErrBadVersion)
	if o := r.ready(); o.Meta == nil || o.Meta.Put != nil {
		t.Fatal("lost close not followed by a read")
	}
	theirs := testLedger(3, 3, 2)
	theirs.State, theirs.LastEntry, theirs.Version = metadata.LedgerClosed, 4, 99
	r.metaResult(theirs, nil)
	if o := r.ready(); !o.Done || o.Err != nil || o.Result.Version != 99 {
		t.Fatalf("did not adopt the other recovery's close: %+v", o)
	}
}
