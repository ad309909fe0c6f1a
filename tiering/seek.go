package tiering

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync/atomic"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/segment"
)

// LedgerGetter reads a ledger's metadata; metadata.LedgerStore is one.
type LedgerGetter interface {
	GetLedger(ctx context.Context, id ids.LedgerID) (*metadata.Ledger, error)
}

// Seeker answers "which is the first message published at or after time
// T" for a topic whose older ledgers are offloaded: a search over the
// ledgers' publish-time ranges (from the managed ledger), then over the
// record batches' ranges (from the ledger's metadata), then one range GET
// of one record batch. Safe for concurrent use.
type Seeker struct {
	store   Store
	ledgers LedgerGetter
	reads   atomic.Int64
	metrics *Metrics
}

// NewSeeker returns a seeker reading ledger metadata from ledgers.
func NewSeeker(store Store, ledgers LedgerGetter) *Seeker {
	return &Seeker{store: store, ledgers: ledgers, metrics: NewMetrics(nil)}
}

// WithMetrics makes the seeker count its reads in m and returns it.
func (s *Seeker) WithMetrics(m *Metrics) *Seeker {
	s.metrics = m
	return s
}

// ObjectReads returns how many object reads all seeks made.
func (s *Seeker) ObjectReads() int64 { return s.reads.Load() }

// SeekResult is the outcome of a seek.
type SeekResult struct {
	// ID is the first message with publish time >= T, when Found.
	ID    ids.MessageID
	Found bool
	// OnBookies is set when the message, if any, is in a ledger that is
	// not offloaded (still open, or closed and not yet offloaded): ID.Ledger
	// names it and ID.Entry is NoEntry; the caller searches it on the
	// bookies.
	OnBookies bool
	// ObjectReads is how many object-store reads this seek made.
	ObjectReads int
}

// Seek finds the first message, in log order, whose publish time is at
// or after t (unix nanoseconds). ledgers is the topic's managed-ledger
// list, in order. Found is false, and OnBookies false, when every message
// is older than t.
//
// The result is exact for any publish times, ordered or not: ledgers and
// batches are searched by the running maximum of their ranges, so the
// first one whose maximum reaches t holds the first message at or after t.
// Empty ledgers are skipped; an open ledger's range counts as unbounded.
func (s *Seeker) Seek(ctx context.Context, ledgers []metadata.LedgerInfo, t int64) (SeekResult, error) {
	var res SeekResult
	maxes := runningMax(len(ledgers), func(i int) int64 { return ledgerMax(&ledgers[i]) })
	for i := sort.Search(len(maxes), func(i int) bool { return maxes[i] >= t }); i < len(ledgers); i++ {
		li := &ledgers[i]
		if ledgerMax(li) < t {
			continue
		}
		if !li.Closed || !li.Offloaded {
			res.ID, res.OnBookies = ids.MessageID{Ledger: li.ID, Entry: ids.NoEntry}, true
			return res, nil
		}
		id, found, err := s.seekLedger(ctx, li.ID, t, &res)
		if err != nil || found || res.OnBookies {
			// OnBookies: the record has no complete offload though the
			// list says offloaded; its messages may be the answer, so the
			// caller searches it on the bookies rather than skip it.
			res.ID, res.Found = id, found
			return res, err
		}
		// The summary's range reached t but no batch did: the summary was
		// wider than the data. Go on to the next ledger.
	}
	return res, nil
}

// ledgerMax is the newest publish time li may hold: unbounded while it is
// open, or when its metadata records none (0, unknown, as the serving tier
// reads it: a ledger closed by recovery whose entries were all damaged),
// so that its objects are searched rather than the ledger skipped.
func ledgerMax(li *metadata.LedgerInfo) int64 {
	switch {
	case li.Closed && li.Entries == 0:
		return math.MinInt64
	case !li.Closed || li.LastPublishTime == 0:
		return math.MaxInt64
	}
	return li.LastPublishTime
}

func runningMax(n int, at func(int) int64) []int64 {
	out := make([]int64, n)
	m := int64(math.MinInt64)
	for i := range out {
		m = max(m, at(i))
		out[i] = m
	}
	return out
}

// seekLedger finds the first message at or after t in one offloaded
// ledger: a search over its batch index, then one batch read.
func (s *Seeker) seekLedger(ctx context.Context, id ids.LedgerID, t int64, res *SeekResult) (ids.MessageID, bool, error) {
	l, err := s.ledgers.GetLedger(ctx, id)
	if err != nil {
		return ids.MessageID{}, false, fmt.Errorf("tiering: seek: ledger %d: %w", id, err)
	}
	if l.Offload == nil || (l.Offload.State != metadata.OffloadComplete && l.Offload.State != metadata.OffloadDeleted) {
		res.OnBookies = true
		return ids.MessageID{Ledger: id, Entry: ids.NoEntry}, false, nil
	}
	type ref struct {
		seg *metadata.Segment
		b   metadata.BatchIndex
	}
	var batches []ref
	for i := range l.Offload.Segments {
		for _, b := range l.Offload.Segments[i].Batches {
			batches = append(batches, ref{&l.Offload.Segments[i], b})
		}
	}
	maxes := runningMax(len(batches), func(i int) int64 { return batches[i].b.LastPublishTime })
	i := sort.Search(len(maxes), func(i int) bool { return maxes[i] >= t })
	if i == len(batches) {
		return ids.MessageID{}, false, nil
	}
	res.ObjectReads++
	s.reads.Add(1)
	s.metrics.seekReads.Inc()
	msg, found, err := segment.FindTime(ctx, indexedRanges{s.store}, batches[i].seg.Key, batches[i].b, t)
	if err != nil {
		return ids.MessageID{}, false, err
	}
	if !found {
		return ids.MessageID{}, false, fmt.Errorf("%w: batch %s@%d has no row at or after its max publish time", ErrCorruption, batches[i].seg.Key, batches[i].b.Offset)
	}
	return msg, true, nil
}
