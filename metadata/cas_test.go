package metadata_test

import (
	"errors"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// oneWins checks that of two racing writes from the same version exactly
// one succeeded and the other got ErrBadVersion, and returns which won.
func oneWins(t *testing.T, r raced) (aWon bool) {
	t.Helper()
	ea, eb := r.a, r.b
	switch {
	case ea == nil && errors.Is(eb, metadata.ErrBadVersion):
		return true
	case eb == nil && errors.Is(ea, metadata.ErrBadVersion):
		return false
	}
	t.Fatalf("want exactly one winner and one ErrBadVersion, got %v and %v", ea, eb)
	return false
}

func TestUpdateLedgerConcurrentWritersOneWinsOtherBadVersion(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	id, err := s1.NewLedgerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := &metadata.Ledger{ID: id, Ensemble: 3, WriteQuorum: 2, AckQuorum: 2, State: metadata.LedgerOpen}
	if err := s1.CreateLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	a, _ := s1.GetLedger(ctx, id)
	b, _ := s2.GetLedger(ctx, id)
	a.State, b.State = metadata.LedgerClosed, metadata.LedgerInRecovery
	aWon := oneWins(t, race(func() error { return s1.UpdateLedger(ctx, a) }, func() error { return s2.UpdateLedger(ctx, b) }))
	got, err := s1.GetLedger(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[bool]metadata.LedgerState{true: metadata.LedgerClosed, false: metadata.LedgerInRecovery}[aWon]
	if got.State != want {
		t.Fatalf("stored state %q, want the winner's %q", got.State, want)
	}
	if winner := map[bool]*metadata.Ledger{true: a, false: b}[aWon]; winner.Version != got.Version {
		t.Fatalf("winner's Version %d, stored %d", winner.Version, got.Version)
	}
	if errcode.CodeOf(metadata.ErrBadVersion) != errcode.BadVersion {
		t.Fatal("ErrBadVersion does not carry errcode.BadVersion")
	}
}

func TestCreateLedgerTwiceFailsWithLedgerExists(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	mk := func() *metadata.Ledger {
		return &metadata.Ledger{ID: 42, Ensemble: 1, WriteQuorum: 1, AckQuorum: 1, State: metadata.LedgerOpen}
	}
	r := race(func() error { return s1.CreateLedger(ctx, mk()) }, func() error { return s2.CreateLedger(ctx, mk()) })
	oneWins(t, r)
	ea, eb := r.a, r.b
	if !errors.Is(ea, metadata.ErrLedgerExists) && !errors.Is(eb, metadata.ErrLedgerExists) {
		t.Fatalf("want ErrLedgerExists, got %v / %v", ea, eb)
	}
}

func TestUpdateOfDeletedLedgerFailsBadVersion(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, _ := twoStores(t)
	l := &metadata.Ledger{ID: 7, Ensemble: 1, WriteQuorum: 1, AckQuorum: 1, State: metadata.LedgerOpen}
	if err := s.CreateLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLedger(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLedger(ctx, 7); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.GetLedger(ctx, 7); err != metadata.ErrNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.UpdateLedger(ctx, l); !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatalf("update after delete: %v", err)
	}
}

func TestPutManagedLedgerConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	const topic = "public/default/ml"
	// Creation: both see "absent" (Version 0).
	a, _ := s1.GetManagedLedger(ctx, topic)
	b, _ := s2.GetManagedLedger(ctx, topic)
	if a.Version != 0 || len(a.Ledgers) != 0 || a.Topic != topic {
		t.Fatalf("absent managed ledger: %+v", a)
	}
	a.Ledgers = []metadata.LedgerInfo{{ID: 1}}
	b.Ledgers = []metadata.LedgerInfo{{ID: 2}}
	oneWins(t, race(func() error { return s1.PutManagedLedger(ctx, a) }, func() error { return s2.PutManagedLedger(ctx, b) }))

	// Update: both read the same version.
	a, _ = s1.GetManagedLedger(ctx, topic)
	b, _ = s2.GetManagedLedger(ctx, topic)
	a.Ledgers = append(a.Ledgers, metadata.LedgerInfo{ID: 10})
	b.Ledgers = append(b.Ledgers, metadata.LedgerInfo{ID: 20})
	aWon := oneWins(t, race(func() error { return s1.PutManagedLedger(ctx, a) }, func() error { return s2.PutManagedLedger(ctx, b) }))
	got, _ := s1.GetManagedLedger(ctx, topic)
	want := map[bool]ids.LedgerID{true: 10, false: 20}[aWon]
	if len(got.Ledgers) != 2 || got.Ledgers[1].ID != want {
		t.Fatalf("stored %+v, want the winner's ledger %d last", got.Ledgers, want)
	}
}

func TestPutCursorConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	const topic = "public/default/c"
	mk := func(e ids.EntryID) *metadata.Cursor {
		return &metadata.Cursor{Topic: topic, Subscription: "sub", Type: "shared", MarkDelete: ids.Position{Ledger: 1, Entry: e}}
	}
	oneWins(t, race(func() error { return s1.PutCursor(ctx, mk(1)) }, func() error { return s2.PutCursor(ctx, mk(2)) }))

	a, err := s1.GetCursor(ctx, topic, "sub")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s2.GetCursor(ctx, topic, "sub")
	a.MarkDelete.Entry, b.MarkDelete.Entry = 100, 200
	aWon := oneWins(t, race(func() error { return s1.PutCursor(ctx, a) }, func() error { return s2.PutCursor(ctx, b) }))
	got, _ := s1.GetCursor(ctx, topic, "sub")
	if want := map[bool]ids.EntryID{true: 100, false: 200}[aWon]; got.MarkDelete.Entry != want {
		t.Fatalf("stored mark-delete %v, want the winner's %d", got.MarkDelete, want)
	}
}

func TestSetNamespacePolicyWithVersionConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	const ns = "public/default"
	if err := s1.SetNamespacePolicy(ctx, ns, metadata.DefaultNamespacePolicy()); err != nil {
		t.Fatal(err)
	}
	a, _ := s1.GetNamespacePolicy(ctx, ns)
	b, _ := s2.GetNamespacePolicy(ctx, ns)
	if a.Version == 0 {
		t.Fatal("stored policy has no version")
	}
	a.TTLMs, b.TTLMs = 1000, 2000
	aWon := oneWins(t, race(func() error { return s1.SetNamespacePolicy(ctx, ns, a) }, func() error { return s2.SetNamespacePolicy(ctx, ns, b) }))
	got, _ := s1.GetNamespacePolicy(ctx, ns)
	if want := map[bool]int64{true: 1000, false: 2000}[aWon]; got.TTLMs != want {
		t.Fatalf("stored ttl %d, want the winner's %d", got.TTLMs, want)
	}
}

func TestCreateTopicConcurrentCreatorsOneWinsOtherTopicExists(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	r := race(
		func() error { return s1.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t", Partitions: 3}) },
		func() error { return s2.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t", Partitions: 5}) })
	ea, eb := r.a, r.b
	if (ea == nil) == (eb == nil) {
		t.Fatalf("want one winner, got %v / %v", ea, eb)
	}
	if !errors.Is(ea, metadata.ErrTopicExists) && !errors.Is(eb, metadata.ErrTopicExists) {
		t.Fatalf("want ErrTopicExists, got %v / %v", ea, eb)
	}
	got, err := s1.GetTopic(ctx, "public/default/t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.GetTopic(ctx, "public/default/t-partition-3"); (got.Partitions == 3) != errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("partitions of the loser were written: winner has %d, partition 3: %v", got.Partitions, err)
	}
}

func TestReleaseOwnershipAfterTakeoverFailsBadVersion(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	ss1, ss2 := newSession(t, s1, 10e9), newSession(t, s2, 10e9)
	const topic = "public/default/o"
	mine, ok, err := s1.AcquireOwnership(ctx, ss1, metadata.Ownership{Topic: topic, NodeID: "n1"})
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := ss1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s2.AcquireOwnership(ctx, ss2, metadata.Ownership{Topic: topic, NodeID: "n2"}); err != nil || !ok {
		t.Fatalf("takeover: %v %v", ok, err)
	}
	if err := s1.ReleaseOwnership(ctx, mine); !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatalf("stale release: %v", err)
	}
	o, err := s1.GetOwnership(ctx, topic)
	if err != nil || o.NodeID != "n2" {
		t.Fatalf("owner after stale release: %+v %v", o, err)
	}
}

func TestDeleteTopicConcurrentDeletersOneWinsOtherNotFound(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s1, s2 := twoStores(t)
	const name = "public/default/gone"
	if err := s1.CreateTopic(ctx, &metadata.Topic{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	r := race(func() error { return s1.DeleteTopic(ctx, name) }, func() error { return s2.DeleteTopic(ctx, name) })
	if (r.a == nil) == (r.b == nil) {
		t.Fatalf("want one winner, got %v / %v", r.a, r.b)
	}
	if loser := errors.Join(r.a, r.b); !errors.Is(loser, metadata.ErrTopicNotFound) {
		t.Fatalf("loser: %v, want ErrTopicNotFound", loser)
	}
}
