package metatest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

// The in-memory twin and the etcd Store must agree on the LedgerStore
// contract; the same script runs against both.
func TestLedgerStoreContractHoldsForMemoryAndEtcd(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T) metadata.LedgerStore{
		"memory": func(*testing.T) metadata.LedgerStore { return metatest.NewMemLedgerStore() },
		"etcd":   func(t *testing.T) metadata.LedgerStore { return metatest.OpenStore(t) },
	} {
		t.Run(name, func(t *testing.T) { checkLedgerStore(t, mk(t)) })
	}
}

func checkLedgerStore(t *testing.T, s metadata.LedgerStore) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id1, err := s.NewLedgerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := s.NewLedgerID(ctx)
	if id1 == 0 || id1 == id2 {
		t.Fatalf("ids %d, %d", id1, id2)
	}
	l := &metadata.Ledger{ID: id1, Ensemble: 2, WriteQuorum: 2, AckQuorum: 1, State: metadata.LedgerOpen}
	if err := s.CreateLedger(ctx, l); err != nil || l.Version == 0 {
		t.Fatalf("create: %v (version %d)", err, l.Version)
	}
	if err := s.CreateLedger(ctx, &metadata.Ledger{ID: id1, Ensemble: 1, WriteQuorum: 1, AckQuorum: 1}); !errors.Is(err, metadata.ErrLedgerExists) || !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatalf("second create: %v", err)
	}
	a, _ := s.GetLedger(ctx, id1)
	b, _ := s.GetLedger(ctx, id1)
	a.State = metadata.LedgerClosed
	if err := s.UpdateLedger(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.State = metadata.LedgerInRecovery
	if err := s.UpdateLedger(ctx, b); !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatalf("stale update: %v", err)
	}
	got, err := s.GetLedger(ctx, id1)
	if err != nil || got.State != metadata.LedgerClosed || got.Version != a.Version {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := s.DeleteLedger(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLedger(ctx, id1); err != metadata.ErrNotFound {
		t.Fatalf("get deleted: %v", err)
	}
}
