package metadata

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// RegisterNode records a live serving node under ss's lease: the record
// vanishes with the session. A registration of the same id replaces the
// previous one (a restarted node need not wait for its old lease to expire).
func (s *Store) RegisterNode(ctx context.Context, ss *Session, n NodeInfo) error {
	if err := checkID("node", n.ID, errcode.InvalidArgument); err != nil {
		return err
	}
	return s.putLeased(ctx, "register node", s.keys.node(n.ID), n, ss)
}

// DeregisterNode removes serving node id's record before its session ends:
// a node shutting down, so that lookups stop placing topics on it while it
// hands its own over.
func (s *Store) DeregisterNode(ctx context.Context, id string) error {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if _, err := s.client.Delete(rctx, s.keys.node(id)); err != nil {
		return s.etcdErr(ctx, "deregister node", err)
	}
	return nil
}

// ListNodes returns the registered live serving nodes, in id order.
func (s *Store) ListNodes(ctx context.Context) ([]NodeInfo, error) {
	return listRecords[NodeInfo](ctx, s, "list nodes", s.keys.nodes())
}

// RegisterBookie records a live bookie under ss's lease, like RegisterNode.
func (s *Store) RegisterBookie(ctx context.Context, ss *Session, b BookieInfo) error {
	if err := checkID("bookie", b.ID, errcode.InvalidArgument); err != nil {
		return err
	}
	return s.putLeased(ctx, "register bookie", s.keys.bookie(b.ID), b, ss)
}

// ListBookies returns the registered live bookies, in id order.
func (s *Store) ListBookies(ctx context.Context) ([]BookieInfo, error) {
	return listRecords[BookieInfo](ctx, s, "list bookies", s.keys.bookies())
}

// putLeased writes a record attached to ss's lease, whatever was there.
func (s *Store) putLeased(ctx context.Context, op, key string, v any, ss *Session) error {
	if ss == nil {
		return errcode.New(errcode.InvalidArgument, "metadata: %s: nil session", op)
	}
	return s.put(ctx, op, key, v, clientv3.WithLease(ss.id))
}

// put writes a record unconditionally.
func (s *Store) put(ctx context.Context, op, key string, v any, opts ...clientv3.OpOption) error {
	val, err := encode(v)
	if err != nil {
		return err
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if _, err := s.client.Put(rctx, key, val, opts...); err != nil {
		return s.etcdErr(ctx, op, err)
	}
	return nil
}

// listRecords decodes every record under prefix.
func listRecords[T any](ctx context.Context, s *Store, op, prefix string) ([]T, error) {
	kvs, err := s.list(ctx, op, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := decode(kv, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
