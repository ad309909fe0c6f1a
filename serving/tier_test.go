package serving_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
	"github.com/strata-mq/strata/tiering"
	"github.com/strata-mq/strata/tiering/miniotest"
	"google.golang.org/protobuf/proto"
)

// logRecorder keeps the records a node logs, for assertions on what it
// reported.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// find answers the first record whose message contains msg and whose err
// attribute satisfies match.
func (r *logRecorder) find(msg string, match func(error) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if !strings.Contains(rec.Message, msg) {
			continue
		}
		var found bool
		rec.Attrs(func(a slog.Attr) bool {
			if e, ok := a.Value.Any().(error); ok && a.Key == "err" && match(e) {
				found = true
			}
			return !found
		})
		if found {
			return nil
		}
	}
	return fmt.Errorf("no log record %q with a matching error", msg)
}

// has reports whether a record's message contains msg.
func (r *logRecorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if strings.Contains(rec.Message, msg) {
			return true
		}
	}
	return false
}

// tierEnv is a real cluster (embedded etcd, three bookies) with a real
// MinIO and one serving node with the object-store tier enabled.
type tierEnv struct {
	t     *testing.T
	c     *realCluster
	minio *miniotest.Server
	objs  tiering.Store
	meta  *metadata.Store
	lc    *ledger.Client
	n     *testNode
	logs  *logRecorder
	// wrapMeta, when set, wraps the node's metadata store (fault injection).
	wrapMeta func(serving.Meta) serving.Meta
}

func newTierEnv(t *testing.T, tweak func(*serving.Config, *serving.TierConfig)) *tierEnv {
	return newTierEnvWith(t, tweak, nil)
}

// newTierEnvWith is newTierEnv with the node's metadata store wrapped by
// wrapMeta (nil: as it is).
func newTierEnvWith(t *testing.T, tweak func(*serving.Config, *serving.TierConfig), wrapMeta func(serving.Meta) serving.Meta) *tierEnv {
	srv := miniotest.Start(t)
	objs, err := tiering.NewS3Store(tiering.S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, Prefix: "tier",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxRetries: 1, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := newRealCluster(t, 3)
	store := metatest.OpenStoreAt(t, c.endpoints)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	t.Cleanup(func() { _ = lc.Close() })
	e := &tierEnv{t: t, c: c, minio: srv, objs: objs, meta: store, lc: lc, logs: &logRecorder{}, wrapMeta: wrapMeta}
	// CacheBytes 1: catch-up reads go to the bookies or the object store,
	// not to the cache of recent entries.
	cfg := serving.Config{NodeID: "tiered", Ensemble: 3, WriteQuorum: 2, AckQuorum: 2, MaxLedgerEntries: 5,
		CursorFlushInterval: 50 * time.Millisecond, CacheBytes: 1}
	tc := serving.TierConfig{Store: objs, Interval: time.Hour, RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
		Offloader: tiering.OffloaderConfig{MaxAttempts: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}}
	if tweak != nil {
		tweak(&cfg, &tc)
	}
	e.n = e.startNode(cfg, tc)
	return e
}

func (e *tierEnv) startNode(cfg serving.Config, tc serving.TierConfig) *testNode {
	t := e.t
	store := metatest.OpenStoreAt(t, e.c.endpoints)
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, nil)
	del := serving.NewBookieDeleter(store, store, nil, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.GRPCAddr = lis.Addr().String()
	var meta serving.Meta = serving.StoreMeta(store)
	if e.wrapMeta != nil {
		meta = e.wrapMeta(meta)
	}
	n, err := serving.NewNode(cfg, meta, serving.LedgerClient(lc), slog.New(e.logs), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tc.BookieDeleter = del
	if err := n.EnableTiering(tc); err != nil {
		t.Fatal(err)
	}
	return serveNode(t, n, lis, del.Close, lc.Close)
}

func (e *tierEnv) setPolicy(ns string, p *servingpb.NamespacePolicy) {
	e.t.Helper()
	if _, err := e.n.client.SetNamespacePolicy(ctxT(e.t), &servingpb.SetNamespacePolicyRequest{Namespace: ns, Policy: p}); err != nil {
		e.t.Fatal(err)
	}
}

// produce sends messages first..last, one entry each, and answers receipts.
func (e *tierEnv) produce(p *prod, first, last uint64) []*servingpb.SendReceipt {
	var rs []*servingpb.SendReceipt
	for i := first; i <= last; i++ {
		rs = append(rs, p.mustSend(msg(i)))
	}
	return rs
}

// closedLedgers answers the managed ledger's closed ledgers.
func (e *tierEnv) closedLedgers(topic string) []metadata.LedgerInfo {
	e.t.Helper()
	ml, err := e.meta.GetManagedLedger(ctxT(e.t), topic)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []metadata.LedgerInfo
	for _, li := range ml.Ledgers {
		if li.Closed {
			out = append(out, li)
		}
	}
	return out
}

// allOffloadedAndDeleted checks that every closed ledger of topic is
// offloaded, its bookie copy deleted (state deleted, bookie reads fail)
// and its segments present.
func (e *tierEnv) allOffloadedAndDeleted(topic string, atLeast int) error {
	ctx := ctxT(e.t)
	ls := e.closedLedgers(topic)
	if len(ls) < atLeast {
		return fmt.Errorf("%d closed ledgers, want at least %d", len(ls), atLeast)
	}
	for _, li := range ls {
		if !li.Offloaded {
			return fmt.Errorf("ledger %d not marked offloaded in the managed ledger", li.ID)
		}
		l, err := e.meta.GetLedger(ctx, li.ID)
		if err != nil {
			return err
		}
		if l.Offload == nil || l.Offload.State != metadata.OffloadDeleted {
			return fmt.Errorf("ledger %d offload %+v, want deleted", li.ID, l.Offload)
		}
		if l.Deleting {
			e.t.Fatalf("ledger %d is marked for deletion: an audit would delete the record naming its objects", li.ID)
		}
		if _, err := e.lc.Read(ctx, l, 0, 0); err == nil {
			return fmt.Errorf("ledger %d is still readable from the bookies", li.ID)
		}
		for _, s := range l.Offload.Segments {
			if _, err := e.objs.Stat(ctx, s.Key); err != nil {
				return fmt.Errorf("segment %s of ledger %d: %w", s.Key, li.ID, err)
			}
		}
	}
	return nil
}

// checkSame fails unless got and want are the same messages: ids, bytes,
// keys, properties, publish times.
func checkSame(t *testing.T, got, want []*servingpb.ReceivedMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.GetId().GetLedger() != w.GetId().GetLedger() || g.GetId().GetEntry() != w.GetId().GetEntry() || g.GetId().GetBatch() != w.GetId().GetBatch() ||
			!bytes.Equal(g.GetPayload(), w.GetPayload()) || g.GetKey() != w.GetKey() || fmt.Sprint(g.GetProperties()) != fmt.Sprint(w.GetProperties()) ||
			g.GetPublishTimeUnixNano() != w.GetPublishTimeUnixNano() || g.GetSequenceId() != w.GetSequenceId() || g.GetProducerName() != w.GetProducerName() {
			t.Fatalf("message %d differs:\n got %v\nwant %v", i, g, w)
		}
	}
}

func consumeAll(t *testing.T, n *testNode, topic, sub string, count int) []*servingpb.ReceivedMessage {
	t.Helper()
	cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: sub, InitialPosition: servingpb.InitialPosition_EARLIEST})
	defer cs.cancel()
	cs.flow(uint32(count + 10))
	return cs.receive(count)
}

func TestPolicyOffloadsClosedLedgersDeletesThemFromBookiesAndConsumersReadTheSameBytes(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) { tc.Interval = 50 * time.Millisecond })
	const topic = "public/auto/offloaded"
	p := mustProducer(t, e.n, topic, "p1")
	e.produce(p, 1, 23) // ledgers of 5 entries: 4 closed, 1 open
	before := consumeAll(t, e.n, topic, "before", 23)
	checkInOrder(t, before, 1, 23)
	// set-policy on a loaded topic reaches its offload loop.
	e.setPolicy("public/auto", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: 0, OffloadAgeMs: 0, OffloadDeletionLagMs: 0})
	eventually(t, "closed ledgers offloaded and deleted from bookies", func() error { return e.allOffloadedAndDeleted(topic, 4) })

	after := consumeAll(t, e.n, topic, "after", 23)
	checkSame(t, after, before)

	st, err := e.n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var offloaded int
	for _, l := range st.GetLedgers() {
		if l.GetOffloaded() {
			offloaded++
		}
	}
	if offloaded < 4 || st.GetOffloadedBytes() == 0 {
		t.Fatalf("stats: %d offloaded ledgers, %d offloaded bytes", offloaded, st.GetOffloadedBytes())
	}
}

// A topic's own offload settings override its namespace's, as its other
// policies do: a topic that opts in offloads under a namespace that never
// does, and a topic's longer deletion lag keeps its bookie copies though
// the namespace's would have deleted them. (The offload loop read the
// namespace's policy only.)
func TestTopicOffloadPolicyOverridesTheNamespaces(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) { tc.Interval = 50 * time.Millisecond })
	setTopic := func(topic string, p *servingpb.TopicPolicy) {
		t.Helper()
		if _, err := e.n.client.SetTopicPolicy(ctxT(t), &servingpb.SetTopicPolicyRequest{Topic: topic, Policy: p}); err != nil {
			t.Fatal(err)
		}
	}
	e.setPolicy("public/never", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
	const optIn = "public/never/opted-in"
	setTopic(optIn, &servingpb.TopicPolicy{OffloadAgeMs: proto.Int64(0), OffloadDeletionLagMs: proto.Int64(0)})
	e.produce(mustProducer(t, e.n, optIn, "p1"), 1, 12) // 2 closed ledgers
	eventually(t, "the opted-in topic offloaded and deleted from bookies", func() error { return e.allOffloadedAndDeleted(optIn, 2) })

	e.setPolicy("public/soon", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: 0, OffloadAgeMs: 0, OffloadDeletionLagMs: 0})
	const lagged = "public/soon/lagged"
	setTopic(lagged, &servingpb.TopicPolicy{OffloadDeletionLagMs: proto.Int64(time.Hour.Milliseconds())})
	e.produce(mustProducer(t, e.n, lagged, "p1"), 1, 12)
	eventually(t, "the lagged topic's closed ledgers offloaded", func() error {
		ls := e.closedLedgers(lagged)
		if len(ls) < 2 {
			return fmt.Errorf("%d closed ledgers", len(ls))
		}
		for _, li := range ls {
			if !li.Offloaded {
				return fmt.Errorf("ledger %d not offloaded", li.ID)
			}
		}
		return nil
	})
	// A triggered pass deletes, before it answers, what its policy's lag
	// allows: under the namespace's zero lag, every offloaded ledger.
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: lagged}); err != nil {
		t.Fatal(err)
	}
	for _, li := range e.closedLedgers(lagged) {
		l, err := e.meta.GetLedger(ctxT(t), li.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Offload == nil || l.Offload.State != metadata.OffloadComplete {
			t.Fatalf("ledger %d offload %+v: deleted from bookies within the topic's hour of lag", li.ID, l.Offload)
		}
	}
}

func TestTriggerOffloadOffloadsEveryClosedLedgerNowAndCountsThem(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) {
		tc.GCInterval, tc.GCMinAge = time.Millisecond, time.Millisecond
	})
	const topic = "public/default/triggered"
	// An object of a failed offload that no ledger names: collected.
	orphan := fmt.Sprintf("%s/%020d-%s.arrow", topic, 999, uuid.Must(uuid.NewV7()))
	if err := e.objs.Put(ctxT(t), orphan, strings.NewReader("junk"), 4); err != nil {
		t.Fatal(err)
	}
	p := mustProducer(t, e.n, topic, "p1")
	e.produce(p, 1, 12) // 2 closed ledgers
	before := consumeAll(t, e.n, topic, "before", 12)
	resp, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetLedgersOffloaded() != 2 {
		t.Fatalf("offloaded %d ledgers, want 2", resp.GetLedgersOffloaded())
	}
	if _, err := e.objs.Stat(ctxT(t), orphan); !tiering.IsNotFound(err) {
		t.Fatalf("orphan object after the offload pass: %v", err)
	}
	// The default deletion lag (60 s) keeps the bookie copies for now.
	for _, li := range e.closedLedgers(topic) {
		l, err := e.meta.GetLedger(ctxT(t), li.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !li.Offloaded || l.Offload == nil || l.Offload.State != metadata.OffloadComplete {
			t.Fatalf("ledger %d: offloaded %v, record %+v; want complete", li.ID, li.Offloaded, l.Offload)
		}
		if _, err := e.lc.Read(ctxT(t), l, 0, 0); err != nil {
			t.Fatalf("ledger %d deleted from bookies before the deletion lag: %v", li.ID, err)
		}
		for _, s := range l.Offload.Segments {
			if _, err := e.objs.Stat(ctxT(t), s.Key); err != nil {
				t.Fatalf("segment %s collected: %v", s.Key, err)
			}
		}
	}
	again, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic})
	if err != nil || again.GetLedgersOffloaded() != 0 {
		t.Fatalf("second trigger: %v, %v; want 0 ledgers", again, err)
	}
	checkSame(t, consumeAll(t, e.n, topic, "after", 12), before)
}

func TestSeekByTimeAcrossOffloadedAndBookieLedgersLandsOnTheFirstMessageAtOrAfter(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic = "public/seek/mixed"
	e.setPolicy("public/seek", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
	p := mustProducer(t, e.n, topic, "p1")
	rs := e.produce(p, 1, 15) // 3 closed ledgers, offloaded below
	eventually(t, "third ledger closed", func() error {
		if n := len(e.closedLedgers(topic)); n < 3 {
			return fmt.Errorf("%d closed ledgers", n)
		}
		return nil
	})
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if err := e.allOffloadedAndDeleted(topic, 3); err != nil {
		t.Fatal(err)
	}
	rs = append(rs, e.produce(p, 16, 27)...) // 2 closed ledgers on bookies, one open
	mustSubscribe(t, e.n, &servingpb.Subscribe{Topic: topic, Subscription: "s"}).cancel()
	ctx := ctxT(t)
	for _, i := range []int{0, 3, 5, 9, 14, 15, 19, 21, 26} {
		r := rs[i]
		for _, at := range []int64{r.GetPublishTimeUnixNano(), r.GetPublishTimeUnixNano() - 1} {
			resp, err := e.n.client.ResetCursor(ctx, &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s",
				To: &servingpb.ResetCursorRequest_TimeUnixNano{TimeUnixNano: at}})
			if err != nil {
				t.Fatalf("reset to message %d's time: %v", i+1, err)
			}
			if got := resp.GetPosition(); got.GetLedger() != r.GetLedger() || got.GetEntry() != r.GetEntry() {
				t.Fatalf("time of message %d (%d:%d): landed on %d:%d", i+1, r.GetLedger(), r.GetEntry(), got.GetLedger(), got.GetEntry())
			}
		}
	}
	// A reader started at a time inside an offloaded ledger reads on into
	// the bookie ledgers.
	rd := mustSubscribe(t, e.n, &servingpb.Subscribe{Topic: topic, NonDurable: true, StartTimeUnixNano: rs[7].GetPublishTimeUnixNano()})
	defer rd.cancel()
	rd.flow(100)
	checkInOrder(t, rd.receive(20), 8, 27)
}

func TestObjectStoreOutageDelaysOffloadAndLosesOrDeletesNothing(t *testing.T) {
	e := newTierEnv(t, func(_ *serving.Config, tc *serving.TierConfig) { tc.Interval = 50 * time.Millisecond })
	const topic = "public/outage/t"
	p := mustProducer(t, e.n, topic, "p1")
	e.minio.Stop()
	e.setPolicy("public/outage", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: 0, OffloadAgeMs: 0, OffloadDeletionLagMs: 0})
	e.produce(p, 1, 17) // producing carries on
	eventually(t, "offload attempted and failed", func() error {
		return e.logs.find("offload pass failed", func(err error) bool { return errcode.IsRetriable(err) })
	})
	ctx := ctxT(t)
	for _, li := range e.closedLedgers(topic) {
		l, err := e.meta.GetLedger(ctx, li.ID)
		if err != nil {
			t.Fatal(err)
		}
		if li.Offloaded || (l.Offload != nil && l.Offload.State != metadata.OffloadStarted) {
			t.Fatalf("ledger %d offloaded while the object store is down: %+v", li.ID, l.Offload)
		}
		if _, err := e.lc.Read(ctx, l, 0, l.LastEntry); err != nil {
			t.Fatalf("ledger %d not on the bookies: %v", li.ID, err)
		}
	}
	before := consumeAll(t, e.n, topic, "during", 17) // consuming carries on
	checkInOrder(t, before, 1, 17)

	e.minio.Restart()
	eventually(t, "offload completes after the store returns", func() error { return e.allOffloadedAndDeleted(topic, 3) })
	checkSame(t, consumeAll(t, e.n, topic, "after", 17), before)
}

// offloaded is one closed ledger of a topic, offloaded and still on the
// bookies (the default deletion lag), with its messages as consumed before.
type offloaded struct {
	before []*servingpb.ReceivedMessage
	li     metadata.LedgerInfo
	seg    metadata.Segment // its first object
	data   []byte           // that object's bytes
}

// offloadOneLedger writes 7 messages to topic (one closed ledger of 5),
// consumes them, and offloads the closed ledger.
func (e *tierEnv) offloadOneLedger(topic string) offloaded {
	t := e.t
	t.Helper()
	e.produce(mustProducer(t, e.n, topic, "p1"), 1, 7)
	o := offloaded{before: consumeAll(t, e.n, topic, "before", 7)}
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	o.li = e.closedLedgers(topic)[0]
	l, err := e.meta.GetLedger(ctxT(t), o.li.ID)
	if err != nil {
		t.Fatal(err)
	}
	o.seg = l.Offload.Segments[0]
	if o.data, err = e.objs.Get(ctxT(t), o.seg.Key, 0, -1); err != nil {
		t.Fatal(err)
	}
	return o
}

// corruptFirstBatch flips a byte in the middle of o's first batch in the
// object store.
func (e *tierEnv) corruptFirstBatch(o offloaded) {
	b := o.seg.Batches[0]
	data := bytes.Clone(o.data)
	data[b.Offset+b.Length/2] ^= 0xff
	if err := e.objs.Put(ctxT(e.t), o.seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
		e.t.Fatal(err)
	}
}

// deleteBookieCopies offloads topic's closed ledgers with no deletion lag
// and waits until their bookie copies are gone: the object store then holds
// the only copy.
func (e *tierEnv) deleteBookieCopies(topic string) {
	e.setPolicy("public/default", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
	if _, err := e.n.client.TriggerOffload(ctxT(e.t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.allOffloadedAndDeleted(topic, 1); err != nil {
		e.t.Fatal(err)
	}
}

func TestCorruptObjectIsNeverDeliveredAndIsReportedAsCorruption(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic = "public/default/corrupt"
	o := e.offloadOneLedger(topic)
	e.corruptFirstBatch(o)

	// While the bookies still hold the ledger (complete, within the
	// deletion lag), a consumer gets the right bytes from them.
	checkSame(t, consumeAll(t, e.n, topic, "fallback", 7), o.before)
	if err := e.logs.find("corrupt", isCorruption); err != nil {
		t.Fatal(err)
	}

	// Once the bookie copy is deleted (which a damaged object prevents:
	// the object is made whole for it, then damaged again), the corrupt
	// batch is not delivered.
	if err := e.objs.Put(ctxT(t), o.seg.Key, bytes.NewReader(o.data), int64(len(o.data))); err != nil {
		t.Fatal(err)
	}
	e.deleteBookieCopies(topic)
	e.corruptFirstBatch(o)
	cs := mustSubscribe(t, e.n, &servingpb.Subscribe{Topic: topic, Subscription: "after", InitialPosition: servingpb.InitialPosition_EARLIEST})
	got := make(chan *servingpb.ConsumeResponse, 10)
	go func() {
		for {
			r, err := cs.stream.Recv()
			if err != nil {
				close(got)
				return
			}
			got <- r
		}
	}()
	cs.flow(100)
	eventually(t, "catch-up read fails with a corruption error", func() error {
		return e.logs.find("catch-up read failed", isCorruption)
	})
	select {
	case r, ok := <-got:
		if ok && len(r.GetMessages().GetMessages()) > 0 {
			t.Fatalf("delivered %v from a corrupt object", r)
		}
	default:
	}
	cs.cancel()
}

// A catch-up read that keeps failing (here an entry whose only copy is a
// corrupt object) is retried after waits doubling from 200 ms, and the wait
// is not cut short by the topic's publishes: it was, so that a busy topic
// logged and retried a damaged entry once per publish.
func TestFailedCatchUpReadsBackOffAndPublishesDoNotCutTheWaitShort(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic, sub = "public/default/backoff", "stuck"
	o := e.offloadOneLedger(topic)
	e.deleteBookieCopies(topic) // a damaged object would keep the bookie copy
	e.corruptFirstBatch(o)
	cs := mustSubscribe(t, e.n, &servingpb.Subscribe{Topic: topic, Subscription: sub, InitialPosition: servingpb.InitialPosition_EARLIEST})
	defer cs.cancel()
	cs.flow(100)

	type failure struct {
		at    time.Time
		retry time.Duration
	}
	failures := func() []failure {
		e.logs.mu.Lock()
		defer e.logs.mu.Unlock()
		var fs []failure
		for _, rec := range e.logs.recs {
			if rec.Message != "catch-up read failed" {
				continue
			}
			f, ours := failure{at: rec.Time}, false
			rec.Attrs(func(a slog.Attr) bool {
				switch a.Key {
				case "subscription":
					ours = a.Value.String() == sub
				case "retry_in":
					f.retry = a.Value.Duration()
				}
				return true
			})
			if ours {
				fs = append(fs, f)
			}
		}
		return fs
	}
	eventually(t, "a first failed catch-up read", func() error {
		if len(failures()) == 0 {
			return errors.New("none yet")
		}
		return nil
	})
	// Publish on and on while the reads fail: each publish wakes the
	// subscription's dispatcher.
	p := mustProducer(t, e.n, topic, "busy")
	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		for seq := uint64(100); ; seq++ {
			select {
			case <-stop:
				published <- nil
				return
			default:
			}
			if _, err := p.send(msg(seq)); err != nil {
				published <- err
				return
			}
		}
	}()
	eventually(t, "four failed catch-up reads", func() error {
		if n := len(failures()); n < 4 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	close(stop)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	fs := failures()[:4]
	var waits []time.Duration
	for _, f := range fs {
		waits = append(waits, f.retry)
	}
	for i, want := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		if fs[i].retry != want {
			t.Fatalf("failure %d set a wait of %v, want %v (waits %v)", i+1, fs[i].retry, want, waits)
		}
		// A machine that is slow only makes the gap longer.
		if gap := fs[i+1].at.Sub(fs[i].at); gap < want {
			t.Fatalf("read retried %v after failure %d, before its wait of %v ended", gap, i+1, want)
		}
	}
}

// An offloaded object cut short or gone, while the bookies still hold the
// ledger, is read from the bookies (it was read from nowhere: a reader
// waited for ever), and the bookie copy is kept past the deletion lag:
// deleting it would leave no copy at all.
func TestObjectCutShortOrGoneIsReadFromTheBookiesWhichKeepTheirCopy(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic = "public/default/damaged"
	o := e.offloadOneLedger(topic)
	ctx, before, li, seg, data := ctxT(t), o.before, o.li, o.seg, o.data
	for i, damage := range []func() error{
		func() error { return e.objs.Put(ctx, seg.Key, bytes.NewReader(data[:len(data)/2]), int64(len(data)/2)) },
		func() error { return e.objs.Delete(ctx, seg.Key) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		checkSame(t, consumeAll(t, e.n, topic, fmt.Sprintf("fallback-%d", i), 7), before)
		if !e.logs.has("offloaded ledger is corrupt, cut short or gone in the object store; reading the bookies") {
			t.Fatal("the fallback to the bookies was not logged")
		}
		e.setPolicy("public/default", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
		if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
			t.Fatal(err)
		}
		l, err := e.meta.GetLedger(ctx, li.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Offload.State != metadata.OffloadComplete {
			t.Fatalf("damage %d: the bookie copy was deleted past the lag though the object is damaged (%s)", i, l.Offload.State)
		}
		if _, err := e.lc.Read(ctx, l, 0, l.LastEntry); err != nil {
			t.Fatalf("damage %d: the bookies no longer serve the ledger: %v", i, err)
		}
	}
}

func isCorruption(err error) bool { return errcode.CodeOf(err) == errcode.Corruption }

func TestRetentionAndOffloadLeaveMetadataAndObjectsConsistent(t *testing.T) {
	e := newTierEnv(t, func(cfg *serving.Config, tc *serving.TierConfig) {
		cfg.TrimInterval = 20 * time.Millisecond
		tc.Interval = 20 * time.Millisecond
	})
	const topic = "public/churn/t"
	// Offload at once; delete a ledger from everywhere 300 ms after its
	// last message (no durable subscription holds it).
	e.setPolicy("public/churn", &servingpb.NamespacePolicy{RetentionMs: 300, OffloadThresholdBytes: 0, OffloadAgeMs: 0, OffloadDeletionLagMs: 0})
	p := mustProducer(t, e.n, topic, "p1")
	var gone []ids.LedgerID
	seen := map[ids.LedgerID]bool{}
	for i := uint64(1); i <= 40; i++ {
		r := p.mustSend(msg(i))
		if id := ids.LedgerID(r.GetLedger()); !seen[id] {
			seen[id] = true
			gone = append(gone, id)
		}
	}
	gone = gone[:len(gone)-1] // the open ledger stays
	ctx := ctxT(t)
	// Every trimmed ledger ends up gone from the managed ledger, metadata
	// and bookies, and no segment object is left behind.
	eventually(t, "closed ledgers trimmed", func() error {
		if ls := e.closedLedgers(topic); len(ls) > 0 {
			return fmt.Errorf("%d closed ledgers left", len(ls))
		}
		for _, id := range gone {
			if _, err := e.meta.GetLedger(ctx, id); !errors.Is(err, metadata.ErrNotFound) {
				return fmt.Errorf("ledger %d metadata after trim: %v", id, err)
			}
		}
		var left []string
		if err := e.objs.List(ctx, topic+"/", func(o tiering.ObjectInfo) error { left = append(left, o.Key); return nil }); err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("objects left after trim: %v", left)
		}
		return nil
	})
	if !e.logs.has("tiering: ledger offloaded") {
		t.Fatalf("no ledger was offloaded before its trim: the test did not exercise the race")
	}
}

// landedThenFailedMeta makes the next writes of a complete offload record
// land in etcd and still answer an error, as a request that times out
// after etcd applied it does.
type landedThenFailedMeta struct {
	serving.Meta
	failures atomic.Int32 // complete records still to answer with an error
}

func (m *landedThenFailedMeta) UpdateLedger(ctx context.Context, l *metadata.Ledger) error {
	if err := m.Meta.UpdateLedger(ctx, l); err != nil {
		return err
	}
	if l.Offload != nil && l.Offload.State == metadata.OffloadComplete && m.failures.Add(-1) >= 0 {
		return errcode.New(errcode.Unavailable, "etcd: request timed out (the write was applied)")
	}
	return nil
}

// A complete record whose write answered an error may have been stored:
// the objects it names are kept, so the ledger is read from them, and
// deleted from the bookies after the lag, once the next pass finds the
// record complete. They were deleted: the record named objects that were
// gone, every read of the ledger failed over to the bookies, and the
// bookie copy was kept for good.
func TestObjectsOfAnOffloadRecordWhoseWriteAnsweredAnErrorButLandedAreKept(t *testing.T) {
	var meta *landedThenFailedMeta
	e := newTierEnvWith(t, nil, func(m serving.Meta) serving.Meta {
		meta = &landedThenFailedMeta{Meta: m}
		meta.failures.Store(1)
		return meta
	})
	const topic = "public/default/landed"
	e.setPolicy("public/default", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
	e.produce(mustProducer(t, e.n, topic, "p1"), 1, 7) // one closed ledger of 5 entries
	before := consumeAll(t, e.n, topic, "before", 7)
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err == nil {
		t.Fatal("the pass whose record write answered an error succeeded")
	}
	if n := meta.failures.Load(); n > 0 {
		t.Fatalf("no complete record was written (%d failures left)", n)
	}
	li := e.closedLedgers(topic)[0]
	l, err := e.meta.GetLedger(ctxT(t), li.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Offload == nil || l.Offload.State != metadata.OffloadComplete {
		t.Fatalf("ledger %d record %+v: the write did not land", li.ID, l.Offload)
	}
	for _, s := range l.Offload.Segments {
		if _, err := e.objs.Stat(ctxT(t), s.Key); err != nil {
			t.Fatalf("object %s, named by the ledger's record, is gone: %v", s.Key, err)
		}
	}
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	if err := e.allOffloadedAndDeleted(topic, 1); err != nil {
		t.Fatal(err)
	}
	checkSame(t, consumeAll(t, e.n, topic, "after", 7), before)
}

// An object damaged after its offload, within the deletion lag, keeps the
// ledger's bookie copy past the lag: the copy is the only good one left.
// Just before deleting it, only each object's size was checked, so a
// damaged byte (which reads had already reported as corruption and
// served from the bookies) did not stop the deletion, and the ledger's
// messages were lost for good.
func TestObjectDamagedWithinTheDeletionLagKeepsTheBookieCopy(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic = "public/default/damaged-in-lag"
	o := e.offloadOneLedger(topic) // complete; the default lag keeps the bookie copy
	e.corruptFirstBatch(o)
	checkSame(t, consumeAll(t, e.n, topic, "in-lag", 7), o.before)
	e.setPolicy("public/default", &servingpb.NamespacePolicy{RetentionMs: -1, OffloadThresholdBytes: -1, OffloadAgeMs: -1, OffloadDeletionLagMs: 0})
	if _, err := e.n.client.TriggerOffload(ctxT(t), &servingpb.TriggerOffloadRequest{Topic: topic}); err != nil {
		t.Fatal(err)
	}
	l, err := e.meta.GetLedger(ctxT(t), o.li.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Offload.State != metadata.OffloadComplete {
		t.Fatalf("the bookie copy was deleted though the object is damaged (%s)", l.Offload.State)
	}
	if _, err := e.lc.Read(ctxT(t), l, 0, l.LastEntry); err != nil {
		t.Fatalf("the bookies no longer serve the ledger: %v", err)
	}
	checkSame(t, consumeAll(t, e.n, topic, "past-lag", 7), o.before)
	// Once the object is whole again, the next pass deletes the copy.
	if err := e.objs.Put(ctxT(t), o.seg.Key, bytes.NewReader(o.data), int64(len(o.data))); err != nil {
		t.Fatal(err)
	}
	e.deleteBookieCopies(topic)
	checkSame(t, consumeAll(t, e.n, topic, "from-objects", 7), o.before)
}

// TestASeekByTimeIntoADamagedObjectFindsItsMessageOnTheBookieCopy: reads
// of a ledger whose object is damaged fall back to its bookie copy while
// the deletion lag keeps it, and so does a seek by time into it: a reset
// lands on the first message at or after the time, rather than failing
// with the object's corruption.
func TestASeekByTimeIntoADamagedObjectFindsItsMessageOnTheBookieCopy(t *testing.T) {
	e := newTierEnv(t, nil)
	const topic = "public/default/seek-damaged"
	o := e.offloadOneLedger(topic)
	e.corruptFirstBatch(o)
	mustSubscribe(t, e.n, &servingpb.Subscribe{Topic: topic, Subscription: "s"}).cancel()
	for _, r := range o.before[:5] {
		resp, err := e.n.client.ResetCursor(ctxT(t), &servingpb.ResetCursorRequest{Topic: topic, Subscription: "s",
			To: &servingpb.ResetCursorRequest_TimeUnixNano{TimeUnixNano: r.GetPublishTimeUnixNano()}})
		if err != nil {
			t.Fatalf("reset to the time of %d:%d, in a damaged object whose bookie copy is kept: %v", r.GetId().GetLedger(), r.GetId().GetEntry(), err)
		}
		if got := resp.GetPosition(); got.GetLedger() != r.GetId().GetLedger() || got.GetEntry() != r.GetId().GetEntry() {
			t.Fatalf("reset to the time of %d:%d landed on %d:%d", r.GetId().GetLedger(), r.GetId().GetEntry(), got.GetLedger(), got.GetEntry())
		}
	}
}
