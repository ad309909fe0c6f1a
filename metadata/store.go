package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/strata-mq/strata/internal/errcode"
)

// Limits of what the store writes.
const (
	// MaxRecordBytes bounds one record's JSON (etcd refuses requests over
	// 1.5 MiB by default).
	MaxRecordBytes = 1 << 20
	// maxTxnOps is etcd's default limit of operations per transaction
	// (--max-txn-ops); no transaction of this package exceeds it.
	maxTxnOps = 128
	// listPageSize is how many keys one range read of a listing returns.
	listPageSize = 500
	// slowRequest is the duration above which an etcd request is logged.
	slowRequest = time.Second
)

// errUnavailable classifies every failure to reach etcd in time.
var errUnavailable = errcode.New(errcode.Unavailable, "metadata: etcd unavailable")

// errTimeout classifies a request cut short by the caller's own deadline.
var errTimeout = errcode.New(errcode.Timeout, "metadata: deadline exceeded")

// ErrSessionLost is returned for a write attached to a session whose lease
// etcd no longer knows (it expired or was revoked): start a new session.
var ErrSessionLost = errcode.New(errcode.Unavailable, "metadata: session lease lost")

// ErrRecordTooLarge is returned for a record over MaxRecordBytes; nothing is
// written.
var ErrRecordTooLarge = errcode.New(errcode.InvalidArgument, "metadata: record too large")

// Store is the etcd-backed metadata store. It is safe for concurrent use.
type Store struct {
	client *clientv3.Client
	cfg    Config
	keys   keys
	log    *slog.Logger
	// pageSize is how many keys one range read of a listing returns.
	pageSize int64

	ids struct {
		sync.Mutex
		next, limit uint64 // reserved, not yet handed out: [next, limit)
	}
	// idReservations counts the etcd writes made to reserve ledger ids.
	idReservations atomic.Int64
}

// Open connects to etcd and checks that it answers within RequestTimeout.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
		Context:     context.Background(),
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: connect to etcd %v: %w: %w", cfg.Endpoints, errUnavailable, err)
	}
	s := &Store{client: client, cfg: cfg, keys: keys{prefix: cfg.Prefix}, log: cfg.Logger, pageSize: listPageSize}
	if _, err := s.get(ctx, "open", s.keys.ledgerIDs()); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the etcd client. Sessions and watches made through the
// store end with it; ledger ids reserved but not handed out are lost.
func (s *Store) Close() error { return s.client.Close() }

// Client returns the underlying etcd client.
func (s *Store) Client() *clientv3.Client { return s.client }

// reqCtx bounds one etcd request by RequestTimeout.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// warnIfSlow logs an etcd request that took longer than slowRequest.
func (s *Store) warnIfSlow(op string, start time.Time) {
	if took := time.Since(start); took > slowRequest {
		s.log.Warn("slow etcd request", "op", op, "took", took)
	}
}

// etcdErr classifies a failed etcd request: the caller's own cancellation
// stays as it is, the caller's own deadline is errcode.Timeout, a lost
// lease is ErrSessionLost, anything else is errcode.Unavailable.
func (s *Store) etcdErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("metadata: %s: %w: %w", op, errTimeout, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("metadata: %s: %w", op, ctx.Err())
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("metadata: %s: %w: %w", op, ErrSessionLost, err)
	}
	return fmt.Errorf("metadata: %s: %w: %w", op, errUnavailable, err)
}

// get reads one key; nil when absent.
func (s *Store) get(ctx context.Context, op, key string) (*mvccpb.KeyValue, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	defer s.warnIfSlow(op, time.Now())
	resp, err := s.client.Get(rctx, key)
	if err != nil {
		return nil, s.etcdErr(ctx, op, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// list reads every key under prefix, in key order, a page at a time.
func (s *Store) list(ctx context.Context, op, prefix string) ([]*mvccpb.KeyValue, error) {
	var out []*mvccpb.KeyValue
	end := clientv3.GetPrefixRangeEnd(prefix)
	from, rev := prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(s.pageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev)) // one consistent snapshot
		}
		page, more, r, err := s.listPage(ctx, op, from, opts)
		if err != nil {
			return nil, err
		}
		out, rev = append(out, page...), r
		if !more || len(page) == 0 {
			return out, nil
		}
		from = string(page[len(page)-1].Key) + "\x00"
	}
}

func (s *Store) listPage(ctx context.Context, op, from string, opts []clientv3.OpOption) ([]*mvccpb.KeyValue, bool, int64, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, from, opts...)
	if err != nil {
		return nil, false, 0, s.etcdErr(ctx, op, err)
	}
	return resp.Kvs, resp.More, resp.Header.Revision, nil
}

// txn runs one transaction.
func (s *Store) txn(ctx context.Context, op string, cmps []clientv3.Cmp, then, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	defer s.warnIfSlow(op, time.Now())
	resp, err := s.client.Txn(rctx).If(cmps...).Then(then...).Else(els...).Commit()
	if err != nil {
		return nil, s.etcdErr(ctx, op, err)
	}
	return resp, nil
}

// versionCmp is the compare-and-swap condition of a write at version:
// 0 means "must not exist", anything else "still at this mod revision".
func versionCmp(key string, version int64) clientv3.Cmp {
	if version == 0 {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", version)
}

// casPut writes v at key iff the key is at version (0: absent) and returns
// the new version; ErrBadVersion when it lost.
func (s *Store) casPut(ctx context.Context, op, key string, v any, version int64, opts ...clientv3.OpOption) (int64, error) {
	val, err := encode(v)
	if err != nil {
		return 0, err
	}
	resp, err := s.txn(ctx, op, []clientv3.Cmp{versionCmp(key, version)}, []clientv3.Op{clientv3.OpPut(key, val, opts...)}, nil)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, ErrBadVersion
	}
	return resp.Header.Revision, nil
}

// encode marshals a record and enforces MaxRecordBytes.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("metadata: encode %T: %w", v, err)
	}
	if len(b) > MaxRecordBytes {
		return "", fmt.Errorf("%w: %T is %d bytes, limit %d", ErrRecordTooLarge, v, len(b), MaxRecordBytes)
	}
	return string(b), nil
}

// decode unmarshals a stored record; a record that does not parse is
// corruption of the metadata.
func decode(kv *mvccpb.KeyValue, v any) error {
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return &errcode.Error{Code: errcode.Corruption, Message: fmt.Sprintf("metadata: key %q: %v", kv.Key, err)}
	}
	return nil
}
