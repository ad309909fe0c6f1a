package metadata

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/ids"
)

// The internal test can see how many etcd writes the allocator made; it
// uses a real embedded etcd (metatest imports this package, so it starts
// one itself).
func TestLedgerIDRangesMakeOneEtcdWritePerBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", UnsafeNoFsync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := Open(ctx, Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2500
	for range n {
		if _, err := s.NewLedgerID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := s.idReservations.Load(), int64((n+DefaultLedgerIDBatch-1)/DefaultLedgerIDBatch); got != want {
		t.Fatalf("%d ids took %d etcd writes, want %d", n, got, want)
	}
}

func TestListingPagesThroughEveryKeyInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0", UnsafeNoFsync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := Open(ctx, Config{Endpoints: e.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.pageSize = 3
	const n = 10
	for i := range n {
		// 9 < 10 as numbers but not as text: keys must be padded.
		if err := s.CreateLedger(ctx, &Ledger{ID: ids.LedgerID(i*9 + 1), Ensemble: 1, WriteQuorum: 1, AckQuorum: 1}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListLedgers(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("listed %d ledgers (%v), want %d", len(all), err, n)
	}
	for i, l := range all {
		if l.ID != ids.LedgerID(i*9+1) {
			t.Fatalf("position %d holds ledger %d", i, l.ID)
		}
	}
}
