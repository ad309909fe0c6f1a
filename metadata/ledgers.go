package metadata

import (
	"context"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// firstLedgerID is the first id ever handed out; 0 is never a ledger.
const firstLedgerID = 1

// ErrLedgerExists is returned by CreateLedger for an id already in use. It
// carries errcode.BadVersion, so errors.Is(err, ErrBadVersion) holds too.
var ErrLedgerExists = errcode.New(errcode.BadVersion, "metadata: ledger exists")

var _ LedgerStore = (*Store)(nil)

// NewLedgerID hands out a cluster-unique ledger id. Ids come from a range
// of Config.LedgerIDBatch ids reserved in etcd with one compare-and-swap, so
// most calls do not touch etcd. Ids are unique across stores and restarts;
// the unused rest of a range is skipped, never reused.
func (s *Store) NewLedgerID(ctx context.Context) (ids.LedgerID, error) {
	s.ids.Lock()
	defer s.ids.Unlock()
	if s.ids.next >= s.ids.limit {
		if err := s.reserveIDsLocked(ctx); err != nil {
			return 0, err
		}
	}
	id := s.ids.next
	s.ids.next++
	return ids.LedgerID(id), nil
}

// NewLedgerIDAfter is NewLedgerID for an id greater than after: a topic's
// next ledger, so that message ids grow along the topic although each
// store hands out ids from a range of its own (a new owner's range may lie
// below the previous owner's). When the rest of this store's range is not
// above after, it is skipped and a new range reserved, which lies above
// every id reserved so far.
func (s *Store) NewLedgerIDAfter(ctx context.Context, after ids.LedgerID) (ids.LedgerID, error) {
	s.ids.Lock()
	defer s.ids.Unlock()
	if s.ids.next <= uint64(after) {
		s.ids.next = s.ids.limit
	}
	if s.ids.next >= s.ids.limit {
		if err := s.reserveIDsLocked(ctx); err != nil {
			return 0, err
		}
	}
	if s.ids.next <= uint64(after) {
		return 0, &errcode.Error{Code: errcode.Corruption, Message: fmt.Sprintf("metadata: ledger id counter %d is not above ledger %d, which exists", s.ids.next, after)}
	}
	id := s.ids.next
	s.ids.next++
	return ids.LedgerID(id), nil
}

// reserveIDsLocked moves the shared counter forward by one batch and takes
// the batch, retrying when another store moved it first.
func (s *Store) reserveIDsLocked(ctx context.Context) error {
	key := s.keys.ledgerIDs()
	for {
		kv, err := s.get(ctx, "reserve ledger ids", key)
		if err != nil {
			return err
		}
		from, version := uint64(firstLedgerID), int64(0)
		if kv != nil {
			if from, err = strconv.ParseUint(string(kv.Value), 10, 64); err != nil {
				return &errcode.Error{Code: errcode.Corruption, Message: "metadata: ledger id counter: " + err.Error()}
			}
			version = kv.ModRevision
		}
		to := from + uint64(s.cfg.LedgerIDBatch)
		put := clientv3.OpPut(key, strconv.FormatUint(to, 10))
		resp, err := s.txn(ctx, "reserve ledger ids", []clientv3.Cmp{versionCmp(key, version)}, []clientv3.Op{put}, nil)
		if err != nil {
			return err
		}
		s.idReservations.Add(1)
		if resp.Succeeded {
			s.ids.next, s.ids.limit = from, to
			s.log.Debug("reserved ledger ids", "from", from, "to", to)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// CreateLedger stores l, which must not exist yet (ErrLedgerExists), and
// sets l.Version. l.CreatedAt is set when zero.
func (s *Store) CreateLedger(ctx context.Context, l *Ledger) error {
	if err := checkLedger(l); err != nil {
		return err
	}
	if l.CreatedAt == 0 {
		l.CreatedAt = time.Now().UnixNano()
	}
	rev, err := s.casPut(ctx, "create ledger", s.keys.ledger(l.ID), l, 0)
	if err == ErrBadVersion {
		return ErrLedgerExists
	}
	if err != nil {
		return err
	}
	l.Version = rev
	return nil
}

// GetLedger reads a ledger's metadata with its Version; ErrNotFound if absent.
func (s *Store) GetLedger(ctx context.Context, id ids.LedgerID) (*Ledger, error) {
	kv, err := s.get(ctx, "get ledger", s.keys.ledger(id))
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, ErrNotFound
	}
	var l Ledger
	if err := decode(kv, &l); err != nil {
		return nil, err
	}
	l.Version = kv.ModRevision
	return &l, nil
}

// UpdateLedger writes l iff the stored record is still at l.Version
// (ErrBadVersion otherwise, also when it was deleted or l.Version is 0) and
// sets l.Version to the new version.
func (s *Store) UpdateLedger(ctx context.Context, l *Ledger) error {
	if err := checkLedger(l); err != nil {
		return err
	}
	if l.Version == 0 {
		return ErrBadVersion
	}
	rev, err := s.casPut(ctx, "update ledger", s.keys.ledger(l.ID), l, l.Version)
	if err != nil {
		return err
	}
	l.Version = rev
	return nil
}

// DeleteLedger removes a ledger's metadata. Deleting an absent ledger is
// not an error.
func (s *Store) DeleteLedger(ctx context.Context, id ids.LedgerID) error {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if _, err := s.client.Delete(rctx, s.keys.ledger(id)); err != nil {
		return s.etcdErr(ctx, "delete ledger", err)
	}
	return nil
}

// ListLedgers returns every ledger's metadata, in id order.
func (s *Store) ListLedgers(ctx context.Context) ([]*Ledger, error) {
	kvs, err := s.list(ctx, "list ledgers", s.keys.ledgers())
	if err != nil {
		return nil, err
	}
	out := make([]*Ledger, 0, len(kvs))
	for _, kv := range kvs {
		var l Ledger
		if err := decode(kv, &l); err != nil {
			return nil, err
		}
		l.Version = kv.ModRevision
		out = append(out, &l)
	}
	return out, nil
}

// checkLedger rejects a record that cannot be a ledger's.
func checkLedger(l *Ledger) error {
	switch {
	case l == nil || l.ID == 0:
		return errcode.New(errcode.InvalidArgument, "metadata: ledger without an id")
	case l.Ensemble < 1 || l.WriteQuorum < 1 || l.AckQuorum < 1 ||
		l.Ensemble < l.WriteQuorum || l.WriteQuorum < l.AckQuorum:
		return errcode.New(errcode.InvalidArgument, "metadata: ledger %d: want E >= Qw >= Qa >= 1, got %d/%d/%d",
			l.ID, l.Ensemble, l.WriteQuorum, l.AckQuorum)
	}
	return nil
}
