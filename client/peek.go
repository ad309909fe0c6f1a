package client

import (
	"context"
	"errors"
	"time"
)

// peekEntryWait bounds the wait for more messages of the last entry of a
// partition once its first message was read: they come in the same
// response, so they are buffered already when there are any.
const peekEntryWait = 200 * time.Millisecond

// Peek returns up to n messages of subscription's backlog, from its
// mark-delete position on, partition after partition, without consuming
// them, as Pulsar's peek-messages: for looking at what a subscription is
// stuck on (a poison message, say) before skipping it with ResetCursor or
// leaving it to a dead-letter policy. It reads through a non-durable
// reader per partition, up to the partition's last entry when it started.
// Messages acknowledged individually past the mark-delete position appear
// too. ErrSubscriptionNotFound when the topic has no such subscription.
func (a *Admin) Peek(ctx context.Context, topicName, subscription string, n int) ([]*Message, error) {
	if n < 1 {
		return nil, invalidArg("peek: count must be positive")
	}
	parts, err := a.partitionNames(ctx, topicName)
	if err != nil {
		return nil, err
	}
	var out []*Message
	found := false
	for i, part := range parts {
		if len(out) >= n {
			break
		}
		msgs, ok, err := a.peekPartition(ctx, part, subscription, n-len(out))
		if err != nil {
			return nil, err
		}
		found = found || ok
		for _, m := range msgs {
			m.ID.Partition = int32(i)
		}
		out = append(out, msgs...)
	}
	if !found {
		return nil, ErrSubscriptionNotFound
	}
	return out, nil
}

// peekPartition reads up to n messages of one partition's subscription
// backlog; ok is false when the partition has no such subscription.
func (a *Admin) peekPartition(ctx context.Context, part, subscription string, n int) (msgs []*Message, ok bool, err error) {
	st, err := a.TopicStats(ctx, part)
	if err != nil {
		return nil, false, err
	}
	var md *MessageID
	for _, s := range st.Subscriptions {
		if s.Name == subscription {
			id := s.MarkDelete
			md = &id
		}
	}
	if md == nil {
		return nil, false, nil
	}
	// Positions are ordered by their ledger's place in the topic (ledger
	// ids need not increase along it), unknown ledgers (trimmed) first.
	place := func(id MessageID) [2]int64 {
		for i, l := range st.Ledgers {
			if l.Ledger == id.Ledger {
				return [2]int64{int64(i), id.Entry}
			}
		}
		return [2]int64{-1, id.Entry}
	}
	after := func(a, b [2]int64) bool { return a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) }
	// The last entry now: reading stops there, or it would wait for more.
	last := [2]int64{-1, -1}
	for i, l := range st.Ledgers {
		if l.Entries > 0 {
			last = [2]int64{int64(i), l.Entries - 1}
		}
	}
	start := MessageID{Ledger: md.Ledger, Entry: md.Entry + 1}
	if last[0] < 0 || after(place(start), last) {
		return nil, true, nil
	}
	r, err := a.c.NewReader(ctx, part, ReaderStartMessageID(start))
	if err != nil {
		return nil, true, err
	}
	defer r.Close()
	atLast := false
	for len(msgs) < n {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if atLast {
			rctx, cancel = context.WithTimeout(ctx, peekEntryWait)
		}
		m, err := r.Next(rctx)
		cancel()
		if err != nil {
			if atLast && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // the last entry has no more messages
			}
			return nil, true, err
		}
		if after(place(m.ID), last) {
			break // published after the peek began
		}
		msgs = append(msgs, m)
		atLast = place(m.ID) == last
	}
	return msgs, true, nil
}
