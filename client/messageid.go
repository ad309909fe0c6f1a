package client

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-mq/strata/serving/servingpb"
)

// MessageID names one message: the entry (ledger, entry) that holds it and its
// index in the entry's batch. Ids order messages within one topic partition.
type MessageID struct {
	Ledger uint64
	Entry  int64
	Batch  int32
	// Partition is the partition index of a message of a partitioned topic
	// (0 otherwise). It is not part of String: a parsed id has Partition 0,
	// so set it before acknowledging or seeking on a partitioned topic.
	Partition int32
	// retry marks a message of a consumer's retry-letter topic, so that
	// acknowledgements and nacks of it go there (RetryLetterPolicy).
	retry bool
}

// String returns "ledger:entry:batch".
func (id MessageID) String() string {
	return strconv.FormatUint(id.Ledger, 10) + ":" + strconv.FormatInt(id.Entry, 10) + ":" + strconv.FormatInt(int64(id.Batch), 10)
}

// Less orders ids by ledger, entry, then batch index (partition ignored).
func (id MessageID) Less(o MessageID) bool {
	if id.Ledger != o.Ledger {
		return id.Ledger < o.Ledger
	}
	if id.Entry != o.Entry {
		return id.Entry < o.Entry
	}
	return id.Batch < o.Batch
}

// ParseMessageID parses "ledger:entry:batch" (or "ledger:entry", batch 0).
// Bad input gives an error matching ErrInvalidArgument.
func ParseMessageID(s string) (MessageID, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 2 && len(parts) != 3 {
		return MessageID{}, invalidArg("message id %q: want ledger:entry:batch", s)
	}
	l, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return MessageID{}, invalidArg("message id %q: ledger: %v", s, err)
	}
	e, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || e < -1 {
		return MessageID{}, invalidArg("message id %q: bad entry", s)
	}
	id := MessageID{Ledger: l, Entry: e}
	if len(parts) == 3 {
		b, err := strconv.ParseInt(parts[2], 10, 32)
		if err != nil || b < 0 {
			return MessageID{}, invalidArg("message id %q: bad batch index", s)
		}
		id.Batch = int32(b)
	}
	return id, nil
}

// MarshalText encodes the id as String does.
func (id MessageID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the form String writes.
func (id *MessageID) UnmarshalText(b []byte) error {
	p, err := ParseMessageID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

func (id MessageID) proto() *servingpb.MessageId {
	return &servingpb.MessageId{Ledger: id.Ledger, Entry: id.Entry, Batch: id.Batch}
}

func idFromProto(p *servingpb.MessageId, partition int32) MessageID {
	if p == nil {
		return MessageID{Partition: partition}
	}
	return MessageID{Ledger: p.GetLedger(), Entry: p.GetEntry(), Batch: p.GetBatch(), Partition: partition}
}

var _ fmt.Stringer = MessageID{}
