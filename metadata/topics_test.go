package metadata_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func TestCreatePartitionedTopicCreatesEachPartition(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	tp := &metadata.Topic{Name: "acme/orders/events", Partitions: 4}
	if err := s.CreateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if tp.Version == 0 || tp.CreatedAt == 0 {
		t.Fatalf("create did not set Version/CreatedAt: %+v", tp)
	}
	for i := range 4 {
		p, err := s.GetTopic(ctx, fmt.Sprintf("acme/orders/events-partition-%d", i))
		if err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
		if p.PartitionOf != tp.Name || p.Partitions != 0 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	if _, err := s.GetTopic(ctx, "acme/orders/events-partition-4"); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("partition 4: %v", err)
	}
	got, err := s.GetTopic(ctx, tp.Name)
	if err != nil || got.Partitions != 4 || got.Version != tp.Version {
		t.Fatalf("get: %+v %v", got, err)
	}
}

func TestCreateTopicConflictingWithAPartitionWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t-partition-2"}); err != nil {
		t.Fatal(err)
	}
	err := s.CreateTopic(ctx, &metadata.Topic{Name: "public/default/t", Partitions: 3})
	if !errors.Is(err, metadata.ErrTopicExists) || errcode.CodeOf(err) != errcode.TopicExists {
		t.Fatalf("got %v, want ErrTopicExists", err)
	}
	for _, n := range []string{"public/default/t", "public/default/t-partition-0", "public/default/t-partition-1"} {
		if _, err := s.GetTopic(ctx, n); !errors.Is(err, metadata.ErrTopicNotFound) {
			t.Fatalf("%s written by a failed create: %v", n, err)
		}
	}
}

func TestListTopicsByNamespaceExcludesPartitions(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	for _, tp := range []*metadata.Topic{
		{Name: "a/x/one"}, {Name: "a/x/two", Partitions: 3}, {Name: "a/xy/three"}, {Name: "b/x/four"},
	} {
		if err := s.CreateTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ns string) []string {
		ts, err := s.ListTopics(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tp := range ts {
			out = append(out, fmt.Sprintf("%s:%d", tp.Name, tp.Partitions))
		}
		return out
	}
	if got := fmt.Sprint(names("a/x")); got != "[a/x/one:0 a/x/two:3]" {
		t.Fatalf("a/x: %s", got)
	}
	if got := fmt.Sprint(names("")); got != "[a/x/one:0 a/x/two:3 a/xy/three:0 b/x/four:0]" {
		t.Fatalf("all: %s", got)
	}
	if got := names("c/none"); len(got) != 0 {
		t.Fatalf("empty namespace: %v", got)
	}
	if _, err := s.ListTopics(ctx, "not-a-namespace"); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("bad namespace: %v", err)
	}
}

func TestDeleteTopicRemovesPartitionsManagedLedgersAndCursors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const name = "public/default/del"
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: "public/default/del2"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, name + "-partition-0", name + "-partition-1", "public/default/del2"} {
		if err := s.PutManagedLedger(ctx, &metadata.ManagedLedger{Topic: n, Ledgers: []metadata.LedgerInfo{{ID: 1}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCursor(ctx, &metadata.Cursor{Topic: n, Subscription: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteTopic(ctx, name); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, name + "-partition-0", name + "-partition-1"} {
		if _, err := s.GetTopic(ctx, n); !errors.Is(err, metadata.ErrTopicNotFound) {
			t.Fatalf("%s survived: %v", n, err)
		}
		if ml, _ := s.GetManagedLedger(ctx, n); ml.Version != 0 {
			t.Fatalf("%s managed ledger survived", n)
		}
		if cs, _ := s.ListCursors(ctx, n); len(cs) != 0 {
			t.Fatalf("%s cursors survived", n)
		}
	}
	// A topic whose name starts with the deleted one's is untouched.
	if _, err := s.GetTopic(ctx, "public/default/del2"); err != nil {
		t.Fatalf("neighbour topic: %v", err)
	}
	if cs, _ := s.ListCursors(ctx, "public/default/del2"); len(cs) != 1 {
		t.Fatalf("neighbour's cursors: %d", len(cs))
	}
	if err := s.DeleteTopic(ctx, name); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestDeleteTopicWithMaxPartitionsSpansTransactions(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const name = "public/default/wide"
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: name, Partitions: metadata.MaxPartitions}); err != nil {
		t.Fatal(err)
	}
	last := metadata.PartitionName(name, metadata.MaxPartitions-1)
	if err := s.PutCursor(ctx, &metadata.Cursor{Topic: last, Subscription: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopic(ctx, last); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("last partition survived: %v", err)
	}
	if cs, _ := s.ListCursors(ctx, last); len(cs) != 0 {
		t.Fatal("last partition's cursor survived")
	}
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: name, Partitions: metadata.MaxPartitions + 1}); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("too many partitions: %v", err)
	}
}

func TestBadTopicNamesRejected(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	for _, n := range []string{"", "bare", "a/b", "a/b/c/d", "a/b/c d", "a/../c", "a/b/"} {
		if err := s.CreateTopic(ctx, &metadata.Topic{Name: n}); errcode.CodeOf(err) != errcode.InvalidTopicName {
			t.Errorf("create %q: %v", n, err)
		}
		if _, err := s.GetTopic(ctx, n); errcode.CodeOf(err) != errcode.InvalidTopicName {
			t.Errorf("get %q: %v", n, err)
		}
	}
	for _, sub := range []string{"", "a/b"} {
		err := s.PutCursor(ctx, &metadata.Cursor{Topic: "public/default/t", Subscription: sub})
		if errcode.CodeOf(err) != errcode.InvalidSubscription {
			t.Errorf("cursor %q: %v", sub, err)
		}
	}
	if ts, _ := s.ListTopics(ctx, ""); len(ts) != 0 {
		t.Fatalf("a rejected topic was stored: %+v", ts[0])
	}
}

func TestCorruptRecordsAreCorruptionErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	for _, k := range []string{"/strata/topics/public/default/bad", "/strata/cursors/public/default/bad/s", "/strata/ledger-ids"} {
		if _, err := s.Client().Put(ctx, k, "{garbage"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetTopic(ctx, "public/default/bad"); errcode.CodeOf(err) != errcode.Corruption {
		t.Errorf("topic: %v", err)
	}
	if _, err := s.ListCursors(ctx, "public/default/bad"); errcode.CodeOf(err) != errcode.Corruption {
		t.Errorf("cursors: %v", err)
	}
	if _, err := s.NewLedgerID(ctx); errcode.CodeOf(err) != errcode.Corruption {
		t.Errorf("ledger id counter: %v", err)
	}
}

// Adding partitions writes the new partitions and, on each, a cursor for
// every given subscription at the partition's start; only increases of a
// partitioned topic are allowed, and a leftover record in the way writes
// nothing.
func TestAddPartitionsCreatesPartitionsAndTheirSubscriptions(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const name = "public/default/grow"
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: name, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	subs := []metadata.Cursor{{Subscription: "billing", Type: "shared"}, {Subscription: "audit", Type: "exclusive"}}
	for _, bad := range []int{1, 2, metadata.MaxPartitions + 1} {
		if err := s.AddPartitions(ctx, name, bad, subs); errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Fatalf("to %d partitions: got %v, want InvalidArgument", bad, err)
		}
	}
	if err := s.AddPartitions(ctx, "public/default/grow-partition-0", 3, nil); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a partition: got %v, want InvalidArgument", err)
	}
	if err := s.AddPartitions(ctx, name, 4, subs); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTopic(ctx, name); err != nil || got.Partitions != 4 {
		t.Fatalf("topic: %+v %v", got, err)
	}
	for i := 2; i < 4; i++ {
		p := metadata.PartitionName(name, i)
		if rec, err := s.GetTopic(ctx, p); err != nil || rec.PartitionOf != name {
			t.Fatalf("%s: %+v %v", p, rec, err)
		}
		for _, sub := range subs {
			c, err := s.GetCursor(ctx, p, sub.Subscription)
			if err != nil || c.Type != sub.Type || c.MarkDelete.Entry != -1 || c.MarkDelete.Ledger != 0 {
				t.Fatalf("cursor %s on %s: %+v %v", sub.Subscription, p, c, err)
			}
		}
	}
	// A cursor already stored where a new one would go: nothing is written.
	if err := s.PutCursor(ctx, &metadata.Cursor{Topic: metadata.PartitionName(name, 5), Subscription: "billing"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPartitions(ctx, name, 6, subs); errcode.CodeOf(err) != errcode.TopicExists {
		t.Fatalf("over a leftover cursor: got %v, want TopicExists", err)
	}
	if got, _ := s.GetTopic(ctx, name); got.Partitions != 4 {
		t.Fatalf("partitions %d after a failed add, want 4", got.Partitions)
	}
	if _, err := s.GetTopic(ctx, metadata.PartitionName(name, 4)); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("partition 4 written by a failed add: %v", err)
	}
}
