package metadata

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// watchStartTimeout bounds how long WatchOwnership waits for etcd to
// confirm the watch.
const watchStartTimeout = 10 * time.Second

// AcquireOwnership makes o.NodeID the owner of o.Topic iff the topic has no
// owner, in one transaction that creates the key attached to ss's lease.
// It returns the ownership in force afterwards (with its Version) and
// whether it is ss's: true when it was just created, or when the existing
// key is already attached to ss's lease (acquiring twice is harmless).
// ErrSessionLost when ss's lease is gone.
func (s *Store) AcquireOwnership(ctx context.Context, ss *Session, o Ownership) (Ownership, bool, error) {
	if err := checkTopic(o.Topic); err != nil {
		return Ownership{}, false, err
	}
	if ss == nil {
		return Ownership{}, false, errcode.New(errcode.InvalidArgument, "metadata: acquire ownership: nil session")
	}
	val, err := encode(o)
	if err != nil {
		return Ownership{}, false, err
	}
	key := s.keys.ownership(o.Topic)
	resp, err := s.txn(ctx, "acquire ownership", []clientv3.Cmp{versionCmp(key, 0)},
		[]clientv3.Op{clientv3.OpPut(key, val, clientv3.WithLease(ss.id))},
		[]clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return Ownership{}, false, err
	}
	if resp.Succeeded {
		o.Version = resp.Header.Revision
		return o, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 { // deleted between the compare and the get: cannot happen in one txn
		return Ownership{}, false, errcode.New(errcode.Internal, "metadata: ownership of %s vanished inside a transaction", o.Topic)
	}
	var cur Ownership
	if err := decode(kvs[0], &cur); err != nil {
		return Ownership{}, false, err
	}
	cur.Version = kvs[0].ModRevision
	return cur, kvs[0].Lease == int64(ss.id), nil
}

// CountOwnedTopics answers how many topics (partitions counted one by
// one) each serving node owns, by node id.
func (s *Store) CountOwnedTopics(ctx context.Context) (map[string]int, error) {
	all, err := listRecords[Ownership](ctx, s, "list ownerships", s.keys.ownerships())
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, o := range all {
		out[o.NodeID]++
	}
	return out, nil
}

// GetOwnership reads a topic's current owner; ErrNotFound when it has none.
func (s *Store) GetOwnership(ctx context.Context, topic string) (*Ownership, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	kv, err := s.get(ctx, "get ownership", s.keys.ownership(topic))
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, ErrNotFound
	}
	var o Ownership
	if err := decode(kv, &o); err != nil {
		return nil, err
	}
	o.Version = kv.ModRevision
	return &o, nil
}

// ReleaseOwnership deletes the ownership key iff it is still at o.Version:
// ErrBadVersion when someone else owns the topic now; nil when it has no
// owner any more.
func (s *Store) ReleaseOwnership(ctx context.Context, o Ownership) error {
	if err := checkTopic(o.Topic); err != nil {
		return err
	}
	key := s.keys.ownership(o.Topic)
	resp, err := s.txn(ctx, "release ownership",
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", o.Version)},
		[]clientv3.Op{clientv3.OpDelete(key)}, []clientv3.Op{clientv3.OpGet(key, clientv3.WithCountOnly())})
	if err != nil {
		return err
	}
	if !resp.Succeeded && resp.Responses[0].GetResponseRange().Count > 0 {
		return ErrBadVersion
	}
	return nil
}

// WatchOwnership watches a topic's ownership key. It returns once etcd has
// confirmed the watch, so every change after the return is seen: read the
// owner after calling it, not before. The channel receives a value
// (non-blocking send; one pending value at most) on every change or
// deletion of the key, and is closed when ctx ends, the store closes or the
// watch fails (read again to find out which). Cancel ctx to stop the watch.
func (s *Store) WatchOwnership(ctx context.Context, topic string) <-chan struct{} {
	out := make(chan struct{}, 1)
	if checkTopic(topic) != nil {
		close(out)
		return out
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.client.Watch(wctx, s.keys.ownership(topic), clientv3.WithCreatedNotify())
	if !awaitWatchCreated(ctx, wch) {
		cancel()
		close(out)
		return out
	}
	go forwardWatch(wch, out, cancel)
	return out
}

// awaitWatchCreated waits for the watch's created notification.
func awaitWatchCreated(ctx context.Context, wch clientv3.WatchChan) bool {
	timer := time.NewTimer(watchStartTimeout)
	defer timer.Stop()
	select {
	case resp, ok := <-wch:
		return ok && resp.Created && resp.Err() == nil
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

// forwardWatch turns watch responses into signals on out until the watch
// ends, then closes out.
func forwardWatch(wch clientv3.WatchChan, out chan<- struct{}, cancel context.CancelFunc) {
	defer close(out)
	defer cancel()
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			return
		}
		if len(resp.Events) == 0 {
			continue
		}
		select {
		case out <- struct{}{}:
		default:
		}
	}
}
