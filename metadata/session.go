package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mq/strata/internal/errcode"
)

// MaxSessionTTL bounds a session's lease TTL.
const MaxSessionTTL = time.Hour

// Session is an etcd lease kept alive in the background. Keys attached to
// it (node and bookie registrations, topic ownership) vanish when it is
// closed or when its lease expires because keep-alives stopped reaching
// etcd. The owner of a Session must Close it.
type Session struct {
	client  *clientv3.Client
	id      clientv3.LeaseID
	timeout time.Duration
	cancel  context.CancelFunc
	done    chan struct{} // closed when the keep-alive stops
	once    sync.Once
}

// NewSession grants a lease of ttl (rounded up to whole seconds; etcd may
// raise a very short one to its minimum) and keeps it alive until Close or
// until etcd no longer knows it. ctx bounds only the grant.
func (s *Store) NewSession(ctx context.Context, ttl time.Duration) (*Session, error) {
	if ttl <= 0 || ttl > MaxSessionTTL {
		return nil, errcode.New(errcode.InvalidArgument, "metadata: session TTL %v not in (0, %v]", ttl, MaxSessionTTL)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	rctx, cancel := s.reqCtx(ctx)
	grant, err := s.client.Grant(rctx, secs)
	cancel()
	if err != nil {
		return nil, s.etcdErr(ctx, "grant lease", err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	ka, err := s.client.KeepAlive(kctx, grant.ID)
	if err != nil {
		kcancel()
		return nil, s.etcdErr(ctx, "keep lease alive", err)
	}
	ss := &Session{client: s.client, id: grant.ID, timeout: s.cfg.RequestTimeout, cancel: kcancel, done: make(chan struct{})}
	go ss.run(ka)
	s.log.Debug("session started", "lease", int64(grant.ID), "ttl_s", grant.TTL)
	return ss, nil
}

// run drains keep-alive responses; the channel closes when the lease is
// lost or expired, the keep-alive is cancelled, or the client closes.
func (ss *Session) run(ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(ss.done)
	for range ka {
	}
}

// Done is closed when the session ends: its lease was lost or expired, its
// store's client closed, or Close was called. Keys attached to it may be
// gone, or be about to go, once it is closed.
func (ss *Session) Done() <-chan struct{} { return ss.done }

// LeaseID returns the session's etcd lease id.
func (ss *Session) LeaseID() int64 { return int64(ss.id) }

// Close stops the keep-alive, waits for it to end and revokes the lease, so
// every key attached to it vanishes now rather than at expiry. Closing a
// session whose lease is already gone is not an error.
func (ss *Session) Close() error {
	var err error
	ss.once.Do(func() {
		ss.cancel()
		<-ss.done
		ctx, cancel := context.WithTimeout(context.Background(), ss.timeout)
		defer cancel()
		if _, rerr := ss.client.Revoke(ctx, ss.id); rerr != nil && !leaseGone(rerr) {
			err = fmt.Errorf("metadata: revoke lease %x: %w: %w", int64(ss.id), errUnavailable, rerr)
		}
	})
	return err
}

// leaseGone reports errors that mean there is nothing left to revoke.
func leaseGone(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, rpctypes.ErrLeaseNotFound) ||
		status.Code(err) == codes.Canceled
}
