package metadata

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// MaxPartitions bounds a partitioned topic's partition count, so that its
// creation is one etcd transaction (one compare and one put per record,
// within etcd's default of 128 operations).
const MaxPartitions = maxTxnOps - 1

// topicsPerDeleteTxn is how many topics one delete transaction removes
// (three operations each: record, managed ledger, cursors).
// The first also deletes the topic's policy, grants and schemas.
const topicsPerDeleteTxn = (maxTxnOps - 3) / 3

// PartitionName returns the name of partition i of topic name.
func PartitionName(name string, i int) string { return fmt.Sprintf("%s-partition-%d", name, i) }

// CreateTopic creates t and, when t.Partitions > 0, one record per
// partition (PartitionOf set), all in one transaction: ErrTopicExists if
// any of them exists, and then nothing is written. Sets t.Version and
// t.CreatedAt (when zero).
func (s *Store) CreateTopic(ctx context.Context, t *Topic) error {
	if err := s.checkNewTopic(t); err != nil {
		return err
	}
	if t.CreatedAt == 0 {
		t.CreatedAt = time.Now().UnixNano()
	}
	records := []*Topic{t}
	for i := range t.Partitions {
		records = append(records, &Topic{Name: PartitionName(t.Name, i), PartitionOf: t.Name, CreatedAt: t.CreatedAt})
	}
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for _, r := range records {
		val, err := encode(r)
		if err != nil {
			return err
		}
		k := s.keys.topic(r.Name)
		cmps = append(cmps, versionCmp(k, 0))
		puts = append(puts, clientv3.OpPut(k, val))
	}
	resp, err := s.txn(ctx, "create topic", cmps, puts, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return ErrTopicExists
	}
	t.Version = resp.Header.Revision
	return nil
}

func (s *Store) checkNewTopic(t *Topic) error {
	if err := checkTopic(t.Name); err != nil {
		return err
	}
	if t.Partitions < 0 || t.Partitions > MaxPartitions {
		return errcode.New(errcode.InvalidArgument, "metadata: %d partitions, want 0 to %d", t.Partitions, MaxPartitions)
	}
	if t.PartitionOf != "" {
		return errcode.New(errcode.InvalidArgument, "metadata: partition records are created with their topic")
	}
	return nil
}

// GetTopic reads a topic (or partition) record; ErrTopicNotFound if absent.
func (s *Store) GetTopic(ctx context.Context, name string) (*Topic, error) {
	if err := checkTopic(name); err != nil {
		return nil, err
	}
	kv, err := s.get(ctx, "get topic", s.keys.topic(name))
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, ErrTopicNotFound
	}
	var t Topic
	if err := decode(kv, &t); err != nil {
		return nil, err
	}
	t.Version = kv.ModRevision
	return &t, nil
}

// ListTopics lists the topics of namespace ("tenant/namespace"), or of every
// namespace when it is "", in name order. Partition records are left out:
// a partitioned topic appears once, with its Partitions count.
func (s *Store) ListTopics(ctx context.Context, namespace string) ([]*Topic, error) {
	if namespace != "" {
		if err := checkNamespace(namespace); err != nil {
			return nil, err
		}
	}
	kvs, err := s.list(ctx, "list topics", s.keys.topics(namespace))
	if err != nil {
		return nil, err
	}
	var out []*Topic
	for _, kv := range kvs {
		var t Topic
		if err := decode(kv, &t); err != nil {
			return nil, err
		}
		if t.PartitionOf != "" {
			continue
		}
		t.Version = kv.ModRevision
		out = append(out, &t)
	}
	return out, nil
}

// DeleteTopic deletes a topic, its partitions, and the managed ledgers and
// cursors of all of them; ErrTopicNotFound if the topic does not exist
// (also when a concurrent delete wins), ErrBadVersion if it was re-created
// while this call ran.
// The topic and up to topicsPerDeleteTxn-1 partitions go in one
// transaction, conditional on the topic record not having changed since it
// was read; the partitions beyond go in further transactions. Ledger
// records and ownership keys are left alone: ledgers belong to whoever
// deletes their data, ownership to its owner's session.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	t, err := s.GetTopic(ctx, name)
	if err != nil {
		return err
	}
	names := []string{name}
	for i := range t.Partitions {
		names = append(names, PartitionName(name, i))
	}
	first := min(len(names), topicsPerDeleteTxn)
	key := s.keys.topic(name)
	cmps := []clientv3.Cmp{versionCmp(key, t.Version)}
	// A partition has no policy of its own: only the topic's goes.
	ops := append(s.deleteTopicOps(names[:first]), clientv3.OpDelete(s.keys.topicPolicy(name)),
		clientv3.OpDelete(s.keys.topicPermissions(name), clientv3.WithPrefix()),
		clientv3.OpDelete(s.keys.schemas(name), clientv3.WithPrefix()))
	resp, err := s.txn(ctx, "delete topic", cmps, ops,
		[]clientv3.Op{clientv3.OpGet(key, clientv3.WithCountOnly())})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return ErrTopicNotFound // a concurrent delete won
		}
		return ErrBadVersion // deleted and created again meanwhile
	}
	for rest := names[first:]; len(rest) > 0; {
		n := min(len(rest), topicsPerDeleteTxn)
		if _, err := s.txn(ctx, "delete partitions", nil, s.deleteTopicOps(rest[:n]), nil); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

func (s *Store) deleteTopicOps(names []string) []clientv3.Op {
	var ops []clientv3.Op
	for _, n := range names {
		ops = append(ops,
			clientv3.OpDelete(s.keys.topic(n)),
			clientv3.OpDelete(s.keys.managedLedger(n)),
			clientv3.OpDelete(s.keys.cursors(n), clientv3.WithPrefix()))
	}
	return ops
}

// AddPartitions raises partitioned topic name's partition count to n, as
// Pulsar's update-partitioned-topic (partitions are only ever added: a key's
// partition is its hash modulo the count, so it moves for some keys). In
// one transaction, conditional on the topic record not having changed: the
// record, one record per new partition, and on every new partition a
// cursor for each of subs at its very start, so that an existing
// subscription misses nothing written to a new partition before its
// consumers find it. ErrTopicNotFound, ErrBadVersion on a concurrent
// change, a TopicExists error when a record of a new partition or its
// cursor exists already, an InvalidArgument error when name is not partitioned, n is not
// above the current count or over MaxPartitions, or the operations do not
// fit one transaction (add fewer partitions at once).
func (s *Store) AddPartitions(ctx context.Context, name string, n int, subs []Cursor) error {
	t, err := s.GetTopic(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case t.PartitionOf != "" || t.Partitions == 0:
		return errcode.New(errcode.InvalidArgument, "metadata: %s is not a partitioned topic", name)
	case n <= t.Partitions || n > MaxPartitions:
		return errcode.New(errcode.InvalidArgument, "metadata: %s has %d partitions; want more, at most %d", name, t.Partitions, MaxPartitions)
	case 1+(n-t.Partitions)*(1+len(subs)) > maxTxnOps:
		return errcode.New(errcode.InvalidArgument, "metadata: adding %d partitions with %d subscriptions takes more than %d operations; add fewer at once",
			n-t.Partitions, len(subs), maxTxnOps)
	}
	old := t.Partitions
	t.Partitions = n
	val, err := encode(t)
	if err != nil {
		return err
	}
	key := s.keys.topic(name)
	cmps := []clientv3.Cmp{versionCmp(key, t.Version)}
	puts := []clientv3.Op{clientv3.OpPut(key, val)}
	put := func(key string, v any) error {
		val, err := encode(v)
		if err != nil {
			return err
		}
		cmps = append(cmps, versionCmp(key, 0))
		puts = append(puts, clientv3.OpPut(key, val))
		return nil
	}
	for i := old; i < n; i++ {
		p := &Topic{Name: PartitionName(name, i), PartitionOf: name, CreatedAt: time.Now().UnixNano()}
		if err := put(s.keys.topic(p.Name), p); err != nil {
			return err
		}
		for _, sub := range subs {
			if err := checkCursorKey(p.Name, sub.Subscription); err != nil {
				return err
			}
			c := &Cursor{Topic: p.Name, Subscription: sub.Subscription, Type: sub.Type,
				MarkDelete: ids.Position{Entry: ids.NoEntry}, UpdatedAt: p.CreatedAt}
			if err := put(s.keys.cursor(c.Topic, c.Subscription), c); err != nil {
				return err
			}
		}
	}
	resp, err := s.txn(ctx, "add partitions", cmps, puts, nil)
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if now, err := s.GetTopic(ctx, name); err == nil && now.Version == t.Version {
			// Not a concurrent change: a record where a new one goes, which
			// no retry would get past.
			return errcode.New(errcode.TopicExists, "metadata: records of %s's partitions %d to %d or their cursors exist already", name, old, n-1)
		}
		return ErrBadVersion
	}
	return nil
}
