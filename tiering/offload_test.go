package tiering

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering/miniotest"
	"github.com/strata-mq/strata/tiering/segment"
)

// memSource is an in-memory EntrySource: the entries of closed ledgers.
type memSource struct {
	entries map[ids.LedgerID][][]byte
	// before, when set, runs before each ReadEntries call (fault injection).
	before func(call int)
	calls  atomic.Int64
}

func (m *memSource) ReadEntries(_ context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]Entry, error) {
	if m.before != nil {
		m.before(int(m.calls.Add(1)))
	}
	es := m.entries[l.ID]
	if first < 0 || int(last) >= len(es) {
		return nil, errcode.New(errcode.EntryNotFound, "no entries [%d,%d]", first, last)
	}
	out := make([]Entry, 0, last-first+1)
	for e := first; e <= last; e++ {
		out = append(out, Entry{ID: e, Payload: es[e]})
	}
	return out, nil
}

// testLedger makes a closed ledger of n entries with 1..maxMsgs messages of
// up to maxPayload bytes; publish times rise by step from t0.
func testLedger(src *memSource, id ids.LedgerID, n, maxMsgs, maxPayload int, t0, step int64, seed uint64) (*metadata.Ledger, []*entry.Batch) {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	batches := make([]*entry.Batch, n)
	payloads := make([][]byte, n)
	for e := range batches {
		b := &entry.Batch{ProducerName: fmt.Sprintf("prod-%d", e%2), PublishTime: t0 + int64(e)*step}
		for i := 0; i < 1+r.IntN(maxMsgs); i++ {
			m := entry.Message{SequenceID: uint64(e*10 + i), Payload: make([]byte, r.IntN(maxPayload+1))}
			for j := range m.Payload {
				m.Payload[j] = byte(r.Uint32())
			}
			if i%2 == 0 {
				m.Key = fmt.Sprintf("key-%d", r.IntN(5))
				m.EventTime = b.PublishTime - 7
			}
			if i%3 == 0 {
				m.Properties = map[string]string{"x": "1", "y": fmt.Sprint(e)}
			}
			b.Messages = append(b.Messages, m)
		}
		batches[e] = b
		payloads[e] = entry.Encode(b)
	}
	if src.entries == nil {
		src.entries = map[ids.LedgerID][][]byte{}
	}
	src.entries[id] = payloads
	return &metadata.Ledger{
		ID: id, State: metadata.LedgerClosed, LastEntry: ids.EntryID(n - 1), Topic: "acme/ns/orders",
		FirstPublishTime: t0, LastPublishTime: t0 + int64(n-1)*step,
	}, batches
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testOffloader(t testing.TB, store Store, src EntrySource) *Offloader {
	o, err := NewOffloader(store, src, OffloaderConfig{
		MaxSegmentBytes: 200 << 10, ReadBatchEntries: 50, Segment: segment.Config{MaxBatchBytes: 16 << 10},
		Backoff: 10 * time.Millisecond, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkMessages compares read rows with the batches that were written.
func checkMessages(t *testing.T, l *metadata.Ledger, first ids.EntryID, got []EntryRows, want []*entry.Batch) {
	t.Helper()
	for i, er := range got {
		e := first + ids.EntryID(i)
		b := want[e]
		if er.Entry != e || len(er.Rows) != len(b.Messages) {
			t.Fatalf("entry %d: got entry %d with %d rows, want %d", e, er.Entry, len(er.Rows), len(b.Messages))
		}
		for j, r := range er.Rows {
			m := b.Messages[j]
			wantRow := segment.Row{Ledger: l.ID, Entry: e, BatchIndex: int32(j), PublishTime: b.PublishTime,
				EventTime: m.EventTime, Producer: b.ProducerName, SequenceID: m.SequenceID, Key: m.Key,
				Properties: m.Properties, Payload: m.Payload}
			if wantRow.Payload == nil {
				wantRow.Payload = []byte{}
			}
			if !reflect.DeepEqual(r, wantRow) {
				t.Fatalf("message %d:%d:%d differs:\n got %+v\nwant %+v", l.ID, e, j, r, wantRow)
			}
		}
	}
}

func TestOffloadThenReadGivesIdenticalMessages(t *testing.T) {
	srv := miniotest.Start(t)
	for _, store := range []Store{newTestS3(t, srv, "offload"), mustDir(t)} {
		t.Run(fmt.Sprintf("%T", store), func(t *testing.T) {
			ctx := context.Background()
			src := &memSource{}
			l, batches := testLedger(src, 77, 600, 6, 400, 1e18, 1000, 1)
			off, err := testOffloader(t, store, src).Offload(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			if off.State != metadata.OffloadComplete || len(off.Segments) < 2 || off.CompletedAt == 0 {
				t.Fatalf("offload record: state %s, %d segments", off.State, len(off.Segments))
			}
			next := ids.EntryID(0)
			for _, s := range off.Segments {
				if s.FirstEntry != next || !strings.HasPrefix(s.Key, "acme/ns/orders/00000000000000000077-") || !strings.HasSuffix(s.Key, ".arrow") {
					t.Fatalf("segment %+v does not continue at %d or has a bad key", s.Key, next)
				}
				info, err := store.Stat(ctx, s.Key)
				if err != nil || info.Size != s.Bytes {
					t.Fatalf("stat %s: %v %d", s.Key, err, info.Size)
				}
				next = s.LastEntry + 1
			}
			if next != 600 {
				t.Fatalf("segments end at %d", next)
			}
			l.Offload = off
			r, _ := NewReader(store, ReaderConfig{})
			defer r.Close()
			got, err := r.ReadEntries(ctx, l, 0, 599)
			if err != nil || len(got) != 600 {
				t.Fatalf("read all: %d entries, %v", len(got), err)
			}
			checkMessages(t, l, 0, got, batches)
			// A range that starts and ends inside batches and crosses a segment.
			mid := off.Segments[0].LastEntry - 3
			got, err = r.ReadEntries(ctx, l, mid, mid+10)
			if err != nil || len(got) != 11 {
				t.Fatalf("read across segments: %d entries, %v", len(got), err)
			}
			checkMessages(t, l, mid, got, batches)
			msgs, err := r.ReadMessages(ctx, l, 5, 5)
			if err != nil || len(msgs) != len(batches[5].Messages) {
				t.Fatalf("read messages: %d, %v", len(msgs), err)
			}
		})
	}
}

func mustDir(t testing.TB) *DirStore {
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadOutsideTheLedgerOrBeforeOffloadIsTyped(t *testing.T) {
	ctx := context.Background()
	store, src := mustDir(t), &memSource{}
	l, _ := testLedger(src, 3, 20, 2, 10, 1, 1, 2)
	r, _ := NewReader(store, ReaderConfig{})
	defer r.Close()
	if _, err := r.ReadEntries(ctx, l, 0, 1); !errors.Is(err, ErrNotOffloaded) {
		t.Fatalf("not offloaded: %v", err)
	}
	off, err := testOffloader(t, store, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	for _, rg := range [][2]ids.EntryID{{-1, 0}, {5, 4}, {0, 20}} {
		if _, err := r.ReadEntries(ctx, l, rg[0], rg[1]); !errors.Is(err, ErrEntryRange) {
			t.Fatalf("range %v: %v", rg, err)
		}
	}
}

func TestCorruptSegmentByteIsTypedCorruptionOnRead(t *testing.T) {
	srv := miniotest.Start(t)
	store := newTestS3(t, srv, "corrupt")
	ctx := context.Background()
	src := &memSource{}
	l, _ := testLedger(src, 9, 100, 3, 200, 1000, 10, 3)
	off, err := testOffloader(t, store, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	seg := off.Segments[0]
	data, err := store.Get(ctx, seg.Key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b := seg.Batches[1]
	data[b.Offset+b.Length/2] ^= 0x01
	put(t, store, seg.Key, data)
	r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: -1})
	defer r.Close()
	if _, err := r.ReadEntries(ctx, l, b.FirstEntry, b.FirstEntry); errcode.CodeOf(err) != errcode.Corruption || !IsCorruption(err) {
		t.Fatalf("read of corrupt batch: %v, want Corruption", err)
	}
	// The batch before it is intact and still reads.
	if _, err := r.ReadEntries(ctx, l, 0, 0); err != nil {
		t.Fatalf("intact batch: %v", err)
	}
	if _, err := segment.Verify(data); !IsCorruption(err) {
		t.Fatalf("verify corrupt object: %v", err)
	}
}

func TestObjectStoreOutageMidOffloadIsRetriableAndRecordsNothing(t *testing.T) {
	srv := miniotest.Start(t)
	store := newTestS3(t, srv, "outage")
	ctx := context.Background()
	src := &memSource{}
	l, batches := testLedger(src, 12, 600, 6, 400, 5000, 3, 4)
	// The store goes down after the first segment is on its way.
	src.before = func(call int) {
		if call == 6 {
			srv.Stop()
		}
	}
	o := testOffloader(t, store, src)
	o.cfg.MaxAttempts = 2
	off, err := o.Offload(ctx, l)
	if err == nil || off != nil || !errcode.IsRetriable(err) {
		t.Fatalf("offload during outage: record %v, err %v; want nil and retriable", off, err)
	}
	src.before = nil
	srv.Restart()
	off, err = o.Offload(ctx, l)
	if err != nil {
		t.Fatalf("offload after restart: %v", err)
	}
	l.Offload = off
	r, _ := NewReader(store, ReaderConfig{})
	defer r.Close()
	got, err := r.ReadEntries(ctx, l, 0, 599)
	if err != nil || len(got) != 600 {
		t.Fatalf("read after recovery: %d %v", len(got), err)
	}
	checkMessages(t, l, 0, got, batches)
}

func TestOffloadRejectsBadLedgersAndEntries(t *testing.T) {
	ctx := context.Background()
	store, src := mustDir(t), &memSource{}
	o := testOffloader(t, store, src)
	l, _ := testLedger(src, 5, 30, 2, 10, 1, 1, 5)
	open := *l
	open.State = metadata.LedgerOpen
	if _, err := o.Offload(ctx, &open); !errors.Is(err, ErrNotClosed) {
		t.Fatalf("open ledger: %v", err)
	}
	badTopic := *l
	badTopic.Topic = "a/b/c/d"
	if _, err := o.Offload(ctx, &badTopic); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("bad topic: %v", err)
	}
	empty := *l
	empty.LastEntry = ids.NoEntry
	if off, err := o.Offload(ctx, &empty); err != nil || off.State != metadata.OffloadComplete || len(off.Segments) != 0 {
		t.Fatalf("empty ledger: %+v %v", off, err)
	}
	src.entries[5][17] = bytes.Clone(src.entries[5][17])
	src.entries[5][17][6] ^= 0xff
	off, err := o.Offload(ctx, l)
	if off != nil || errcode.CodeOf(err) != errcode.Corruption || errcode.IsRetriable(err) {
		t.Fatalf("corrupt entry: %v %v", off, err)
	}
	n := 0
	store.List(ctx, "", func(ObjectInfo) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d objects left behind by failed offloads", n)
	}
}

// countingStore counts Get calls.
type countingStore struct {
	Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key, off, n)
}

func TestReadAheadFetchesTheNextBatchesBeforeTheyAreAsked(t *testing.T) {
	ctx := context.Background()
	dir, src := mustDir(t), &memSource{}
	l, _ := testLedger(src, 8, 300, 3, 300, 1, 1, 6)
	off, err := testOffloader(t, dir, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	store := &countingStore{Store: dir}
	r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: 2})
	defer r.Close()
	b0 := off.Segments[0].Batches[0]
	if _, err := r.ReadEntries(ctx, l, 0, b0.LastEntry); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for store.gets.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("read-ahead made %d reads, want 3", store.gets.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Wait until the read-ahead results are in the cache, then the next two
	// batches cost no read beyond the read-ahead of the batches after them.
	for {
		r.mu.Lock()
		n := len(r.mu.inflight)
		r.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("read-ahead did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.cfg.ReadAheadBatches = 0
	b2 := off.Segments[0].Batches[2]
	if _, err := r.ReadEntries(ctx, l, b0.LastEntry+1, b2.LastEntry); err != nil {
		t.Fatal(err)
	}
	if n := store.gets.Load(); n != 3 {
		t.Fatalf("reading the read-ahead batches made %d reads in all, want 3", n)
	}
}

func TestMetricsCountOffloadedObjectsAndReads(t *testing.T) {
	ctx := context.Background()
	store, src := mustDir(t), &memSource{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	l, _ := testLedger(src, 4, 100, 2, 100, 1, 1, 7)
	o, err := NewOffloader(store, src, OffloaderConfig{Metrics: m, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if l.Offload, err = o.Offload(ctx, l); err != nil {
		t.Fatal(err)
	}
	r, _ := NewReader(store, ReaderConfig{Metrics: m, ReadAheadBatches: -1})
	defer r.Close()
	for i := 0; i < 2; i++ {
		if _, err := r.ReadEntries(ctx, l, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if c := f.GetMetric()[0].GetCounter(); c != nil {
			got[f.GetName()] = c.GetValue()
		}
	}
	want := map[string]float64{
		"strata_tiering_offload_objects_total": 1, "strata_tiering_offload_bytes_total": float64(l.Offload.Segments[0].Bytes),
		"strata_tiering_read_batches_total": 1, "strata_tiering_read_cache_hits_total": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestConcurrentReadersWithTinyCacheGetExactMessages(t *testing.T) {
	ctx := context.Background()
	store, src := mustDir(t), &memSource{}
	l, batches := testLedger(src, 6, 400, 4, 300, 1, 1, 8)
	off, err := testOffloader(t, store, src).Offload(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Offload = off
	r, _ := NewReader(store, ReaderConfig{CacheBytes: 20 << 10, ReadAheadBatches: 3})
	defer r.Close()
	var g errgroup.Group
	for w := 0; w < 4; w++ {
		g.Go(func() error {
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; i < 30; i++ {
				first := ids.EntryID(rnd.IntN(400))
				last := min(first+ids.EntryID(rnd.IntN(40)), 399)
				got, err := r.ReadEntries(ctx, l, first, last)
				if err != nil {
					return err
				}
				if len(got) != int(last-first+1) {
					return fmt.Errorf("[%d,%d]: %d entries", first, last, len(got))
				}
				for j, er := range got {
					b := batches[first+ids.EntryID(j)]
					if er.Entry != first+ids.EntryID(j) || len(er.Rows) != len(b.Messages) ||
						!bytes.Equal(er.Rows[0].Payload, b.Messages[0].Payload) {
						return fmt.Errorf("entry %d differs", first+ids.EntryID(j))
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.bytes > 20<<10 && r.mu.lru.Len() > 1 {
		t.Fatalf("cache holds %d bytes in %d batches, over its 20 KiB bound", r.mu.bytes, r.mu.lru.Len())
	}
}

// An object cut short after offload (a bad copy, a replacement) no longer
// holds the byte ranges its index names: reading or seeking into the
// missing part is corruption of stored bytes, not a caller's bad range.
// It was ErrInvalidRange (INVALID_ARGUMENT): a seek by time answered the
// client that its request was bad, and strata replay exited 2, bad input.
func TestObjectCutShortIsTypedCorruptionOnReadAndSeek(t *testing.T) {
	srv := miniotest.Start(t)
	for _, store := range []Store{newTestS3(t, srv, "cut"), mustDir(t)} {
		t.Run(fmt.Sprintf("%T", store), func(t *testing.T) {
			ctx := context.Background()
			src := &memSource{}
			l, _ := testLedger(src, 13, 100, 3, 200, 1000, 10, 11)
			off, err := testOffloader(t, store, src).Offload(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			l.Offload = off
			seg := off.Segments[0]
			data, err := store.Get(ctx, seg.Key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			last := seg.Batches[len(seg.Batches)-1]
			for _, cut := range []int64{last.Offset + last.Length/2, last.Offset - 8} {
				put(t, store, seg.Key, data[:cut])
				r, _ := NewReader(store, ReaderConfig{ReadAheadBatches: -1})
				_, err := r.ReadEntries(ctx, l, last.FirstEntry, last.FirstEntry)
				r.Close()
				if !IsCorruption(err) {
					t.Fatalf("cut at %d: read of the missing batch: %v, want Corruption", cut, err)
				}
				infos := []metadata.LedgerInfo{{ID: l.ID, Entries: 100, Closed: true, Offloaded: true,
					FirstPublishTime: l.FirstPublishTime, LastPublishTime: l.LastPublishTime}}
				pt := 1000 + 10*int64(last.FirstEntry)
				if _, err := NewSeeker(store, memLedgers{l.ID: l}).Seek(ctx, infos, pt); !IsCorruption(err) {
					t.Fatalf("cut at %d: seek into the missing batch: %v, want Corruption", cut, err)
				}
			}
		})
	}
}

// ".tmp-orders" is a valid topic name; a directory store's temporary files
// are named so too, but only the files, never the directories on the way.
// Every key of such a topic was refused (ErrInvalidKey), so none of its
// ledgers could ever be offloaded.
func TestTopicNamedLikeATemporaryFileIsOffloadedAndRead(t *testing.T) {
	srv := miniotest.Start(t)
	for _, store := range []Store{newTestS3(t, srv, "tmpname"), mustDir(t)} {
		t.Run(fmt.Sprintf("%T", store), func(t *testing.T) {
			ctx := context.Background()
			src := &memSource{}
			l, batches := testLedger(src, 17, 40, 3, 100, 1000, 10, 12)
			l.Topic = "acme/.tmp-ns/.tmp-orders"
			off, err := testOffloader(t, store, src).Offload(ctx, l)
			if err != nil {
				t.Fatalf("offload: %v", err)
			}
			l.Offload = off
			r, _ := NewReader(store, ReaderConfig{})
			defer r.Close()
			got, err := r.ReadEntries(ctx, l, 0, 39)
			if err != nil || len(got) != 40 {
				t.Fatalf("read: %d entries, %v", len(got), err)
			}
			checkMessages(t, l, 0, got, batches)
			var listed []string
			if err := store.List(ctx, "acme/.tmp-ns/.tmp-orders/", func(o ObjectInfo) error { listed = append(listed, o.Key); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(listed) != len(off.Segments) {
				t.Fatalf("listed %v, want the %d segments", listed, len(off.Segments))
			}
		})
	}
	// A key whose file name is a temporary file's stays refused.
	if err := checkKey("acme/ns/orders/.tmp-x"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("temporary file name: %v", err)
	}
}
