package client

import (
	"context"
	"errors"
	"io"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Compaction describes one partition's (or a topic's) compaction.
type Compaction struct {
	Partition int32 // 0 when the topic is not partitioned
	// Horizon is the last message compacted (nil: the topic has none).
	Horizon *MessageID
	// Messages kept: the latest of each key.
	Messages uint64
}

// CompactTopic compacts topic now (every partition), as Pulsar's compact
// and Kafka's log compaction: its owner keeps the latest message of each
// key up to the last one published, in a ledger of its own that outlives
// the ledgers retention trims. A message with an empty payload removes its
// key (a tombstone); keyless messages are left out. Readers opened with
// ReaderReadCompacted read the compacted messages first. ctx bounds the
// whole compaction (the operation timeout does not: a large topic takes
// its time).
func (a *Admin) CompactTopic(ctx context.Context, topicName string) ([]Compaction, error) {
	parts, err := a.c.partitionNames(ctx, topicName)
	if err != nil {
		return nil, err
	}
	out := make([]Compaction, 0, len(parts))
	for i, p := range parts {
		c := Compaction{Partition: int32(i)}
		err := a.c.ownerNodeLong(ctx, p, true, func(ctx context.Context, b servingpb.BrokerClient) error {
			resp, err := b.CompactTopic(ctx, &servingpb.CompactTopicRequest{Topic: p})
			if err != nil {
				return err
			}
			if h := resp.GetHorizon(); h != nil {
				id := idFromProto(h, int32(i))
				c.Horizon = &id
			}
			c.Messages = resp.GetMessages()
			return nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// partitionNames answers the names of topicName's partitions in order, or
// its own name alone when it is not partitioned.
func (c *Client) partitionNames(ctx context.Context, topicName string) ([]string, error) {
	name, err := topic.Parse(topicName)
	if err != nil {
		return nil, err
	}
	n, err := c.partitions(ctx, name.String())
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []string{name.String()}, nil
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = name.Partition(i).String()
	}
	return parts, nil
}

// ownerNodeLong is ownerNodeOf for a call that ctx alone bounds: only the
// lookup has the operation timeout.
func (c *Client) ownerNodeLong(ctx context.Context, topic string, existingOnly bool, fn func(context.Context, servingpb.BrokerClient) error) error {
	lctx, cancel := c.opContext(ctx)
	addr, err := c.lookupAt(lctx, topic, "", existingOnly)
	cancel()
	if err != nil {
		return err
	}
	return c.callAt(ctx, addr, fn)
}

// readCompacted reads one partition's compacted messages and where the
// rest of it starts (nil: at the earliest message).
func (c *Client) readCompacted(ctx context.Context, partTopic string, partition int32) ([]*Message, *servingpb.MessageId, error) {
	var (
		msgs []*Message
		cont *servingpb.MessageId
	)
	// A reader's compacted read creates the topic as its subscribe would.
	err := c.ownerNodeLong(ctx, partTopic, false, func(ctx context.Context, b servingpb.BrokerClient) error {
		msgs, cont = nil, nil
		st, err := b.ReadCompacted(ctx, &servingpb.ReadCompactedRequest{Topic: partTopic})
		if err != nil {
			return err
		}
		for {
			r, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return errcode.New(errcode.Unavailable, "compacted read of %s ended without its end", partTopic)
			}
			if err != nil {
				return err
			}
			if end := r.GetEnd(); end != nil {
				cont = end.GetContinueFrom()
				return nil
			}
			for _, w := range r.GetMessages().GetMessages() {
				msgs = append(msgs, messageFromProto(w, partTopic, partition))
			}
		}
	})
	return msgs, cont, err
}
