package metadata

import (
	"context"
	"time"

	topicname "github.com/strata-mq/strata/internal/topic"
)

// GetManagedLedger reads a topic's ledger list. A topic that has none yet
// gets an empty record with Version 0, ready for PutManagedLedger.
func (s *Store) GetManagedLedger(ctx context.Context, topic string) (*ManagedLedger, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	kv, err := s.get(ctx, "get managed ledger", s.keys.managedLedger(topic))
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return &ManagedLedger{Topic: topic}, nil
	}
	var ml ManagedLedger
	if err := decode(kv, &ml); err != nil {
		return nil, err
	}
	ml.Version = kv.ModRevision
	return &ml, nil
}

// PutManagedLedger writes ml iff the stored record is still at ml.Version
// (0: must not exist yet); ErrBadVersion otherwise. Sets ml.Version.
func (s *Store) PutManagedLedger(ctx context.Context, ml *ManagedLedger) error {
	if err := checkTopic(ml.Topic); err != nil {
		return err
	}
	rev, err := s.casPut(ctx, "put managed ledger", s.keys.managedLedger(ml.Topic), ml, ml.Version)
	if err != nil {
		return err
	}
	ml.Version = rev
	return nil
}

// GetCursor reads a subscription's cursor; ErrNotFound if absent.
func (s *Store) GetCursor(ctx context.Context, topic, sub string) (*Cursor, error) {
	if err := checkCursorKey(topic, sub); err != nil {
		return nil, err
	}
	kv, err := s.get(ctx, "get cursor", s.keys.cursor(topic, sub))
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, ErrNotFound
	}
	var c Cursor
	if err := decode(kv, &c); err != nil {
		return nil, err
	}
	c.Version = kv.ModRevision
	return &c, nil
}

// PutCursor writes c iff the stored cursor is still at c.Version (0: must
// not exist yet); ErrBadVersion otherwise. Sets c.Version, and c.UpdatedAt
// when zero.
func (s *Store) PutCursor(ctx context.Context, c *Cursor) error {
	if err := checkCursorKey(c.Topic, c.Subscription); err != nil {
		return err
	}
	if c.UpdatedAt == 0 {
		c.UpdatedAt = time.Now().UnixNano()
	}
	rev, err := s.casPut(ctx, "put cursor", s.keys.cursor(c.Topic, c.Subscription), c, c.Version)
	if err != nil {
		return err
	}
	c.Version = rev
	return nil
}

// ListCursors returns a topic's cursors, in subscription order.
func (s *Store) ListCursors(ctx context.Context, topic string) ([]*Cursor, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	kvs, err := s.list(ctx, "list cursors", s.keys.cursors(topic))
	if err != nil {
		return nil, err
	}
	out := make([]*Cursor, 0, len(kvs))
	for _, kv := range kvs {
		var c Cursor
		if err := decode(kv, &c); err != nil {
			return nil, err
		}
		c.Version = kv.ModRevision
		out = append(out, &c)
	}
	return out, nil
}

// DeleteCursor removes a subscription's cursor. Deleting an absent cursor
// is not an error.
func (s *Store) DeleteCursor(ctx context.Context, topic, sub string) error {
	if err := checkCursorKey(topic, sub); err != nil {
		return err
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if _, err := s.client.Delete(rctx, s.keys.cursor(topic, sub)); err != nil {
		return s.etcdErr(ctx, "delete cursor", err)
	}
	return nil
}

func checkCursorKey(topic, sub string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	return topicname.CheckSubscription(sub)
}
