package metadata_test

import (
	"sync"
	"testing"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// A topic that moves from one node to another gets its next ledger from the
// new owner's store, whose reserved range may lie below the old owner's:
// NewLedgerIDAfter still hands out an id above the topic's newest ledger,
// so message ids grow along the topic.
func TestNewLedgerIDAfterIsAboveTheGivenIDWhateverTheStoresRange(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	eps := metatest.StartEtcd(t)
	var low, high *metadata.Store
	for _, s := range []**metadata.Store{&low, &high} {
		st, err := metadata.Open(ctx, metadata.Config{Endpoints: eps, LedgerIDBatch: 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		*s = st
	}
	lowFirst, err := low.NewLedgerID(ctx) // reserves the first range
	if err != nil {
		t.Fatal(err)
	}
	prev, err := high.NewLedgerID(ctx) // the next range, above it
	if err != nil {
		t.Fatal(err)
	}
	if prev <= lowFirst {
		t.Fatalf("the second store's first id %d is not above the first's %d", prev, lowFirst)
	}
	for range 3 { // ownership moving back and forth
		for _, s := range []*metadata.Store{low, high} {
			id, err := s.NewLedgerIDAfter(ctx, prev)
			if err != nil {
				t.Fatal(err)
			}
			if id <= prev {
				t.Fatalf("NewLedgerIDAfter(%d) = %d", prev, id)
			}
			prev = id
		}
	}
	// Within a store's range it takes the next id, reserving nothing new.
	id, err := high.NewLedgerIDAfter(ctx, prev-1)
	if err != nil {
		t.Fatal(err)
	}
	if id != prev+1 {
		t.Fatalf("NewLedgerIDAfter(%d) on the store that handed out %d: %d, want %d", prev-1, prev, id, prev+1)
	}
}

func TestLedgerIDsUniqueAcrossConcurrentStores(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	eps := metatest.StartEtcd(t)
	var stores []*metadata.Store
	for range 2 {
		s, err := metadata.Open(ctx, metadata.Config{Endpoints: eps, LedgerIDBatch: 7})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const perWorker, workersPerStore = 150, 3
	var (
		mu   sync.Mutex
		seen = map[ids.LedgerID]bool{}
		wg   sync.WaitGroup
	)
	for _, s := range stores {
		for range workersPerStore {
			wg.Go(func() {
				for range perWorker {
					id, err := s.NewLedgerID(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[id] || id == 0 {
						t.Errorf("ledger id %d handed out twice (or zero)", id)
					}
					seen[id] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if want := len(stores) * workersPerStore * perWorker; len(seen) != want {
		t.Fatalf("%d distinct ids, want %d", len(seen), want)
	}
}

func TestLedgerIDsNotReusedAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cfg := metadata.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0"}
	allocate := func(n int) []ids.LedgerID {
		e, err := metadata.StartEmbedded(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		s, err := metadata.Open(ctx, metadata.Config{Endpoints: e.Endpoints()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out []ids.LedgerID
		for range n {
			id, err := s.NewLedgerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		return out
	}
	before := allocate(10) // most of the first range is never handed out
	after := allocate(10)
	seen := map[ids.LedgerID]bool{}
	for _, id := range append(before, after...) {
		if seen[id] {
			t.Fatalf("ledger id %d reused after a restart (before %v, after %v)", id, before, after)
		}
		seen[id] = true
	}
}

func TestLedgerRoundTripAndList(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	var created []*metadata.Ledger
	for range 3 {
		id, err := s.NewLedgerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l := &metadata.Ledger{ID: id, Ensemble: 3, WriteQuorum: 3, AckQuorum: 2, State: metadata.LedgerOpen, Topic: "public/default/x",
			Fragments: []metadata.Fragment{{FirstEntry: 0, Bookies: []string{"a:1", "b:1", "c:1"}}}}
		if err := s.CreateLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
		if l.Version == 0 || l.CreatedAt == 0 {
			t.Fatalf("create did not set Version/CreatedAt: %+v", l)
		}
		created = append(created, l)
	}
	l := created[1]
	l.State, l.LastEntry, l.Bytes = metadata.LedgerClosed, 41, 4200
	if err := s.UpdateLedger(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLedger(ctx, l.ID)
	if err != nil || got.State != metadata.LedgerClosed || got.LastEntry != 41 || got.Version != l.Version || len(got.Fragments[0].Bookies) != 3 {
		t.Fatalf("get: %+v %v", got, err)
	}
	all, err := s.ListLedgers(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d %v", len(all), err)
	}
	for i, l := range all {
		if l.ID != created[i].ID {
			t.Fatalf("list order: got %d at %d, want %d", l.ID, i, created[i].ID)
		}
	}
}

func TestCreateLedgerRejectsBadQuorums(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	for _, l := range []*metadata.Ledger{
		{ID: 0, Ensemble: 1, WriteQuorum: 1, AckQuorum: 1},
		{ID: 1, Ensemble: 2, WriteQuorum: 3, AckQuorum: 1},
		{ID: 1, Ensemble: 3, WriteQuorum: 2, AckQuorum: 3},
		{ID: 1, Ensemble: 0, WriteQuorum: 0, AckQuorum: 0},
	} {
		if err := s.CreateLedger(ctx, l); err == nil {
			t.Fatalf("accepted %+v", l)
		}
	}
	if all, _ := s.ListLedgers(ctx); len(all) != 0 {
		t.Fatalf("a rejected ledger was stored: %+v", all[0])
	}
}
