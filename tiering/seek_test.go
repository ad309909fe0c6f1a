package tiering

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/segment"
)

// memLedgers is an in-memory LedgerGetter.
type memLedgers map[ids.LedgerID]*metadata.Ledger

func (m memLedgers) GetLedger(_ context.Context, id ids.LedgerID) (*metadata.Ledger, error) {
	l, ok := m[id]
	if !ok {
		return nil, metadata.ErrNotFound
	}
	return l, nil
}

type msgTime struct {
	id ids.MessageID
	t  int64
}

// seekTopic offloads ledgers whose entries have the given publish times and
// returns the managed-ledger list, the ledger metadata, and every message in
// log order.
func seekTopic(t *testing.T, store Store, times [][]int64, r *rand.Rand) ([]metadata.LedgerInfo, memLedgers, []msgTime) {
	t.Helper()
	ctx := context.Background()
	src := &memSource{entries: map[ids.LedgerID][][]byte{}}
	o, err := NewOffloader(store, src, OffloaderConfig{
		MaxSegmentBytes: 2500, Segment: segment.Config{MaxBatchRows: 4}, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var infos []metadata.LedgerInfo
	ledgers := memLedgers{}
	var all []msgTime
	for li, ts := range times {
		id := ids.LedgerID(10 + li)
		l := &metadata.Ledger{ID: id, State: metadata.LedgerClosed, LastEntry: ids.EntryID(len(ts) - 1), Topic: "t/n/seek"}
		info := metadata.LedgerInfo{ID: id, Entries: int64(len(ts)), Closed: true, Offloaded: true}
		for e, pt := range ts {
			b := &entry.Batch{ProducerName: "p", PublishTime: pt}
			for i := 0; i < 1+r.IntN(3); i++ {
				b.Messages = append(b.Messages, entry.Message{SequenceID: uint64(i), Payload: []byte{byte(i)}})
				all = append(all, msgTime{ids.MessageID{Ledger: id, Entry: ids.EntryID(e), Batch: int32(i)}, pt})
			}
			src.entries[id] = append(src.entries[id], entry.Encode(b))
			if e == 0 || pt < info.FirstPublishTime {
				info.FirstPublishTime = pt
			}
			info.LastPublishTime = max(info.LastPublishTime, pt)
		}
		off, err := o.Offload(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		l.Offload = off
		ledgers[id] = l
		infos = append(infos, info)
	}
	return infos, ledgers, all
}

// schedule draws publish times for k ledgers: non-decreasing with ties and
// gaps between ledgers, some ledgers empty; or, when ordered is false, any
// order.
func schedule(r *rand.Rand, ordered bool) [][]int64 {
	out := make([][]int64, 1+r.IntN(5))
	t := int64(100)
	for i := range out {
		t += r.Int64N(50) // gap between ledgers
		n := r.IntN(30)
		if r.IntN(5) == 0 {
			n = 0
		}
		for e := 0; e < n; e++ {
			if ordered {
				t += r.Int64N(4) // steps of 0 make ties
				out[i] = append(out[i], t)
			} else {
				out[i] = append(out[i], 100+r.Int64N(400))
			}
		}
	}
	return out
}

func firstAtOrAfter(all []msgTime, t int64) (ids.MessageID, bool) {
	for _, m := range all {
		if m.t >= t {
			return m.id, true
		}
	}
	return ids.MessageID{}, false
}

func TestSeekFindsExactlyTheFirstMessageAtOrAfterT(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(2026, 11))
	for round := 0; round < 16; round++ {
		ordered := round%4 != 3
		store := mustDir(t)
		infos, ledgers, all := seekTopic(t, store, schedule(r, ordered), r)
		s := NewSeeker(store, ledgers)
		probes := []int64{-1 << 62, 0, 1 << 62}
		for _, m := range all {
			probes = append(probes, m.t-1, m.t, m.t+1)
		}
		for _, pt := range probes {
			want, wantFound := firstAtOrAfter(all, pt)
			res, err := s.Seek(ctx, infos, pt)
			if err != nil {
				t.Fatalf("round %d t=%d: %v", round, pt, err)
			}
			if res.Found != wantFound || res.ID != want || res.OnBookies {
				t.Fatalf("round %d (ordered=%v) t=%d: got %+v, want %v found=%v", round, ordered, pt, res, want, wantFound)
			}
			if res.ObjectReads > 1 {
				t.Fatalf("round %d t=%d: %d object reads, want at most 1", round, pt, res.ObjectReads)
			}
		}
	}
}

func TestSeekPastClosedLedgersPointsAtTheLedgerOnBookies(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	r := rand.New(rand.NewPCG(1, 2))
	infos, ledgers, _ := seekTopic(t, store, [][]int64{{10, 20, 30}, {40, 50}}, r)
	s := NewSeeker(store, ledgers)
	// A closed ledger not yet offloaded, then the open one.
	infos = append(infos,
		metadata.LedgerInfo{ID: 90, Entries: 5, Closed: true, FirstPublishTime: 60, LastPublishTime: 70},
		metadata.LedgerInfo{ID: 91})
	for pt, want := range map[int64]ids.LedgerID{55: 90, 70: 90, 71: 91, 1 << 60: 91} {
		res, err := s.Seek(ctx, infos, pt)
		if err != nil || !res.OnBookies || res.Found || res.ID.Ledger != want || res.ObjectReads != 0 {
			t.Fatalf("t=%d: %+v %v, want ledger %d on bookies", pt, res, err, want)
		}
	}
	res, err := s.Seek(ctx, infos, 45)
	if err != nil || !res.Found || res.ID.Ledger != 11 || res.ID.Entry != 1 || res.ID.Batch != 0 {
		t.Fatalf("t=45: %+v %v", res, err)
	}
	if s.ObjectReads() != 1 {
		t.Fatalf("seeker counted %d reads, want 1", s.ObjectReads())
	}
}

func TestSeekOnCorruptBatchIsTypedCorruption(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	r := rand.New(rand.NewPCG(3, 4))
	infos, ledgers, _ := seekTopic(t, store, [][]int64{{10, 20, 30, 40, 50, 60}}, r)
	seg := ledgers[10].Offload.Segments[0]
	data, _ := store.Get(ctx, seg.Key, 0, -1)
	data[seg.Batches[0].Offset+40] ^= 0x10
	put(t, store, seg.Key, data)
	if _, err := NewSeeker(store, ledgers).Seek(ctx, infos, 5); errcode.CodeOf(err) != errcode.Corruption {
		t.Fatalf("seek into corrupt batch: %v", err)
	}
}

// memTopic adds a managed ledger to memLedgers.
type memTopic struct {
	memLedgers
	ml *metadata.ManagedLedger
}

func (m memTopic) GetManagedLedger(_ context.Context, topic string) (*metadata.ManagedLedger, error) {
	if topic != m.ml.Topic {
		return &metadata.ManagedLedger{Topic: topic}, nil
	}
	return m.ml, nil
}

func TestTimeFinderReturnsTheEntryOfTheFirstMessageAtOrAfterT(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	r := rand.New(rand.NewPCG(5, 6))
	infos, ledgers, all := seekTopic(t, store, [][]int64{{10, 20, 20, 30}, {40, 50}}, r)
	f := NewTimeFinder(store, memTopic{ledgers, &metadata.ManagedLedger{Topic: "t/n/seek", Ledgers: infos}})
	for _, ts := range []int64{0, 10, 11, 20, 21, 35, 50} {
		want, _ := firstAtOrAfter(all, ts)
		p, err := f.PositionAt(ctx, "t/n/seek", ts)
		if err != nil || p != want.Position() {
			t.Fatalf("ts=%d: %v %v, want %v", ts, p, err, want.Position())
		}
	}
	p, err := f.PositionAt(ctx, "t/n/seek", 51)
	if err != nil || p != (ids.Position{Ledger: 11, Entry: 2}) {
		t.Fatalf("past the end: %v %v", p, err)
	}
	infos = append(infos, metadata.LedgerInfo{ID: 99})
	f = NewTimeFinder(store, memTopic{ledgers, &metadata.ManagedLedger{Topic: "t/n/seek", Ledgers: infos}})
	if _, err := f.PositionAt(ctx, "t/n/seek", 51); !errors.Is(err, ErrNotOffloaded) {
		t.Fatalf("answer on bookies: %v", err)
	}
}

// The etcd metadata store serves a TimeFinder directly.
var _ TopicLedgers = (*metadata.Store)(nil)

// A ledger the managed ledger lists as offloaded but whose record has no
// complete offload (the two views disagree) is where the search stops: the
// caller is sent to its bookies. The seek went on to the next ledger and
// answered a message there, Found and OnBookies both set, so a seek, a
// cursor reset or a TTL expiry skipped every message of that ledger.
func TestSeekStopsAtALedgerListedOffloadedWhoseRecordIsNot(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	r := rand.New(rand.NewPCG(7, 8))
	infos, ledgers, _ := seekTopic(t, store, [][]int64{{10, 20, 30}, {40, 50, 60}}, r)
	notYet := ledgers[10]
	ledgers[10] = &metadata.Ledger{ID: notYet.ID, State: metadata.LedgerClosed, LastEntry: notYet.LastEntry,
		Offload: &metadata.Offload{State: metadata.OffloadStarted}}
	for _, pt := range []int64{5, 20, 30} {
		res, err := NewSeeker(store, ledgers).Seek(ctx, infos, pt)
		if err != nil || !res.OnBookies || res.Found || res.ID.Ledger != 10 || res.ID.Entry != ids.NoEntry {
			t.Fatalf("t=%d: %+v %v, want ledger 10 on the bookies", pt, res, err)
		}
	}
	// Past that ledger the search goes on as before.
	res, err := NewSeeker(store, ledgers).Seek(ctx, infos, 45)
	if err != nil || !res.Found || res.OnBookies || res.ID.Ledger != 11 || res.ID.Entry != 1 {
		t.Fatalf("t=45: %+v %v", res, err)
	}
	f := NewTimeFinder(store, memTopic{ledgers, &metadata.ManagedLedger{Topic: "t/n/seek", Ledgers: infos}})
	if p, err := f.PositionAt(ctx, "t/n/seek", 20); !errors.Is(err, ErrNotOffloaded) {
		t.Fatalf("time finder: %v %v, want ErrNotOffloaded naming ledger 10", p, err)
	}
}

// TestSeekSearchesAClosedLedgerWhosePublishTimesAreUnknown: a closed ledger
// whose metadata records no publish times (0, as the serving tier reads
// it: unknown) may hold the answer; the seek searches its objects rather
// than take 0 as its newest time and skip it.
func TestSeekSearchesAClosedLedgerWhosePublishTimesAreUnknown(t *testing.T) {
	ctx := context.Background()
	store := mustDir(t)
	r := rand.New(rand.NewPCG(9, 10))
	infos, ledgers, _ := seekTopic(t, store, [][]int64{{10, 20, 30}, {40, 50, 60}}, r)
	infos[0].FirstPublishTime, infos[0].LastPublishTime = 0, 0
	res, err := NewSeeker(store, ledgers).Seek(ctx, infos, 20)
	if err != nil || !res.Found || res.ID.Ledger != infos[0].ID || res.ID.Entry != 1 {
		t.Fatalf("t=20 in a ledger of unknown times: %+v %v; want ledger %d entry 1", res, err, infos[0].ID)
	}
}
