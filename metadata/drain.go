package metadata

import (
	"context"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// Draining bookies. A bookie being decommissioned is marked draining: new
// ledgers and ensemble changes no longer pick it, and the auditor copies
// every closed ledger off it while it still serves reads, so that it can
// be stopped once no ledger names it. The mark outlives the bookie's
// session (it is not leased) and is removed by an explicit undrain.

// drainRecord is the value of a drain key.
type drainRecord struct {
	Since int64 `json:"since"`
}

// SetBookieDraining marks bookie id draining (on) or not. The bookie need
// not be registered: a dead bookie may be drained too.
func (s *Store) SetBookieDraining(ctx context.Context, id string, on bool, nowNanos int64) error {
	if err := checkID("bookie", id, errcode.InvalidArgument); err != nil {
		return err
	}
	if !on {
		_, err := s.txn(ctx, "undrain bookie", nil, []clientv3.Op{clientv3.OpDelete(s.keys.drain(id))}, nil)
		return err
	}
	return s.put(ctx, "drain bookie", s.keys.drain(id), drainRecord{Since: nowNanos})
}

// ListDrainingBookies answers the ids of the bookies marked draining, in
// id order.
func (s *Store) ListDrainingBookies(ctx context.Context) ([]string, error) {
	kvs, err := s.list(ctx, "list draining bookies", s.keys.drains())
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), s.keys.drains()))
	}
	return out, nil
}

// WritableBookies lists the registered bookies that are neither draining
// nor read-only: the ones a ledger client may put in new ensembles
// (ledger.Bookies).
type WritableBookies struct{ *Store }

// ListBookies answers the registered bookies that are neither draining
// nor read-only.
func (w WritableBookies) ListBookies(ctx context.Context) ([]BookieInfo, error) {
	all, err := w.Store.ListBookies(ctx)
	if err != nil {
		return nil, err
	}
	draining, err := w.ListDrainingBookies(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, b := range all {
		if !b.ReadOnly && !slices.Contains(draining, b.ID) {
			out = append(out, b)
		}
	}
	return out, nil
}
