package tiering

import (
	"context"
	"fmt"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// TopicLedgers is the metadata a TimeFinder reads; metadata.Store is one.
type TopicLedgers interface {
	GetManagedLedger(ctx context.Context, topic string) (*metadata.ManagedLedger, error)
	LedgerGetter
}

// TimeFinder answers the serving tier's question "first entry of topic
// published at or after ts" from the topic's managed ledger and the
// offloaded ledgers' indexes. It has the method set of serving.TimeFinder.
type TimeFinder struct {
	seeker *Seeker
	meta   TopicLedgers
}

// NewTimeFinder returns a TimeFinder over store and meta.
func NewTimeFinder(store Store, meta TopicLedgers) *TimeFinder {
	return &TimeFinder{seeker: NewSeeker(store, meta), meta: meta}
}

// Seeker returns the seeker, for its read counter.
func (f *TimeFinder) Seeker() *Seeker { return f.seeker }

// PositionAt returns the entry holding the first message of topic
// published at or after ts. When every message is older, it returns the
// position one past the topic's last entry. When the answer lies in a
// ledger that is not offloaded, it returns ErrNotOffloaded naming it: the
// caller searches that ledger on its bookies.
func (f *TimeFinder) PositionAt(ctx context.Context, topic string, ts int64) (ids.Position, error) {
	ml, err := f.meta.GetManagedLedger(ctx, topic)
	if err != nil {
		return ids.Position{}, err
	}
	res, err := f.seeker.Seek(ctx, ml.Ledgers, ts)
	switch {
	case err != nil:
		return ids.Position{}, err
	case res.Found:
		return res.ID.Position(), nil
	case res.OnBookies:
		return ids.Position{}, fmt.Errorf("%w: the first entry at or after %d is in ledger %d", ErrNotOffloaded, ts, res.ID.Ledger)
	}
	return pastEnd(ml.Ledgers), nil
}

// pastEnd is the position after the last entry of a ledger list.
func pastEnd(ls []metadata.LedgerInfo) ids.Position {
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].Entries > 0 {
			return ids.Position{Ledger: ls[i].ID, Entry: ids.EntryID(ls[i].Entries)}
		}
	}
	return ids.Position{Entry: ids.NoEntry}
}
