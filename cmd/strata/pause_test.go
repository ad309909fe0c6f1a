package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// pauseLease is the serving nodes' session lease in the pause test; the
// owner stays frozen for pauseFor, well past it but short of what gRPC
// keepalive needs to declare the connection dead (10 s + 3 s after the last
// frame read): the producer must leave the frozen owner on its own
// (ProducerReceiptTimeout, 4 s), which leaves several seconds of slack for a
// loaded machine.
const (
	pauseLease = 3 * time.Second
	pauseFor   = 11 * time.Second
)

// seenSet is the set of sequence ids a consumer received.
type seenSet struct {
	mu sync.Mutex
	m  map[uint64]bool
}

func (s *seenSet) add(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]bool{}
	}
	s.m[seq] = true
}

func (s *seenSet) hasAll(seqs []int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		if !s.m[uint64(q)] {
			return false
		}
	}
	return true
}

// ackLog records a producer's receipts in callback (sequence) order.
type ackLog struct {
	mu   sync.Mutex
	ids  []client.MessageID
	seqs []int
	errs []error
}

func (l *ackLog) add(seq int, id client.MessageID, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("message %d: %w", seq, err))
		return
	}
	l.ids = append(l.ids, id)
	l.seqs = append(l.seqs, seq)
}

// snapshot returns copies of the receipts so far.
func (l *ackLog) snapshot() ([]client.MessageID, []int, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids), slices.Clone(l.seqs), slices.Clone(l.errs)
}

// countOutside counts the receipts in ledgers not in old.
func (l *ackLog) countOutside(old map[uint64]bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, id := range l.ids {
		if !old[id.Ledger] {
			n++
		}
	}
	return n
}

func TestFrozenOwnerLosesItsTopicAndAppendsNothingAfterTheTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	ctx := testContext(t, 3*time.Minute)
	cluster, nodes, c := startProcessCluster(t, ctx, chaos.ClusterConfig{ServeArgs: func(a chaos.NodeAddrs, c chaos.ClusterConfig) []string {
		return append(chaos.DefaultServeArgs(a, c), "--lease-ttl", pauseLease.String())
	}})
	const topic = "public/default/pause"
	p, err := c.NewProducer(ctx, topic, client.ProducerName("pause-producer"), client.ProducerLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// A consumer attached to the owner before the pause must follow the
	// topic too (its stream to the frozen node stays up and silent).
	live, err := c.Subscribe(ctx, topic, "live", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	var liveSeen seenSet
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		for {
			m, err := live.Receive(ctx)
			if err != nil {
				return
			}
			liveSeen.add(m.SequenceID)
			_ = live.Ack(m)
		}
	}()
	defer func() {
		_ = live.Close()
		<-liveDone
	}()

	var acks ackLog
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() { sent <- produceUntil(ctx, p, &acks, stop, 2*time.Millisecond) }()
	stopProducing := func() int {
		select {
		case <-stop:
		default:
			close(stop)
		}
		return <-sent
	}
	defer func() {
		select {
		case <-stop:
		default:
			stopProducing()
		}
	}()

	pollUntil(t, ctx, "100 receipts before the pause", func() bool { ids, _, _ := acks.snapshot(); return len(ids) >= 100 })
	owner := lookupOwner(t, ctx, nodes[0], topic)
	target := cluster.Targets()[chaos.TargetName(chaos.Serving, slices.Index(nodes, owner))]
	if slices.Index(nodes, owner) < 0 || target == nil {
		t.Fatalf("owner %s is none of the serving nodes %v", owner, nodes)
	}
	if err := target.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = target.Resume()
		}
	}()
	// Receipts from before the pause name the old owner's ledgers. Those
	// that were on the wire when it froze may still land, but only ledgers
	// seen by now can be the old owner's.
	before, _, _ := acks.snapshot()
	old := map[uint64]bool{}
	for _, id := range before {
		old[id.Ledger] = true
	}
	t.Logf("paused the owner %s after %d receipts (ledgers %v)", owner, len(before), keys(old))

	// While the owner is still frozen, the other node takes the topic over
	// and the producer's sends are acknowledged again, in new ledgers.
	for acks.countOutside(old) < 50 {
		if time.Since(pausedAt) > pauseFor {
			t.Fatalf("no receipts from a new owner within %v of freezing the old one (lease %v): the producer is stuck on the frozen node", pauseFor, pauseLease)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("takeover seen %v after the pause", time.Since(pausedAt).Round(time.Millisecond))
	other := nodes[1-slices.Index(nodes, owner)]
	if got := lookupOwner(t, ctx, other, topic); got != other {
		t.Fatalf("the running node says the owner is %s, want itself (%s)", got, other)
	}
	if d := pauseFor - time.Since(pausedAt); d > 0 {
		time.Sleep(d) // the scenario: a pause well past the lease
	}
	if err := target.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true

	// The resumed node runs again (it answers lookups) and knows it lost the
	// topic; whatever it had read before freezing it could only try to
	// append to its fenced ledger.
	pollUntil(t, ctx, "the resumed node to name the new owner", func() bool {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		got, err := lookupAt(lctx, owner, topic)
		return err == nil && got == other
	})
	atResume := acks.countOutside(old)
	pollUntil(t, ctx, "more receipts after the resume", func() bool { return acks.countOutside(old) >= atResume+100 })
	total := stopProducing()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()

	ids, seqs, errs := acks.snapshot()
	if len(errs) > 0 {
		t.Fatalf("%d of %d sends failed, first: %v", len(errs), total, errs[0])
	}
	if len(ids) != total {
		t.Fatalf("%d receipts for %d sends", len(ids), total)
	}
	pollUntil(t, ctx, "the consumer attached before the pause to receive every acknowledged message", func() bool {
		return liveSeen.hasAll(seqs)
	})
	checkNoOldLedgerAfterTakeover(t, ids, old)
	checkOldLedgersClosedAndUnextended(t, ctx, cluster.EtcdEndpoints(), old, ids)
	checkConsumedExactlyOnce(t, ctx, c, topic, seqs)
}

// startProcessCluster starts etcd, the bookies and the serving nodes of
// cfg (three and two by default) as processes, closed when the test ends,
// and answers the serving nodes' addresses and a client of them that
// reconnects quickly.
func startProcessCluster(t *testing.T, ctx context.Context, cfg chaos.ClusterConfig) (*chaos.Cluster, []string, *client.Client) {
	t.Helper()
	cfg.Exe, cfg.Dir = strataBin, t.TempDir()
	cluster, err := chaos.StartLocalCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	nodes, err := client.ParseURL(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cluster.URL(), client.OperationTimeout(5*time.Second), client.ReconnectBackoff(20*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return cluster, nodes, c
}

// produceUntil sends numbered messages, one every period, until stop is
// closed and returns how many it sent. Each send blocks while the
// producer's pending limit is reached, so a frozen owner stalls it without
// unbounded memory.
func produceUntil(ctx context.Context, p *client.Producer, acks *ackLog, stop <-chan struct{}, every time.Duration) int {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return i
		case <-ctx.Done():
			return i
		case <-tick.C:
		}
		seq := i
		p.SendAsync(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "pause-%07d", i)}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
			acks.add(seq, id, err)
		})
	}
}

// checkNoOldLedgerAfterTakeover: once a receipt names a new ledger, none
// names one of the old owner's.
func checkNoOldLedgerAfterTakeover(t *testing.T, ids []client.MessageID, old map[uint64]bool) {
	t.Helper()
	first := slices.IndexFunc(ids, func(id client.MessageID) bool { return !old[id.Ledger] })
	if first < 0 {
		t.Fatal("no receipt from a new ledger")
	}
	for _, id := range ids[first:] {
		if old[id.Ledger] {
			t.Fatalf("receipt %v in the old owner's ledger after the takeover (first new receipt %v)", id, ids[first])
		}
	}
}

// checkOldLedgersClosedAndUnextended: the new owner closed every ledger of
// the old one, at or after the last entry it acknowledged, and no entry past
// the close reached an ack quorum of bookies (the fenced old owner could not
// get one acknowledged after the takeover).
func checkOldLedgersClosedAndUnextended(t *testing.T, ctx context.Context, etcd []string, old map[uint64]bool, ids []client.MessageID) {
	t.Helper()
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: etcd, Prefix: "/strata"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for l := range old {
		md, err := store.GetLedger(ctx, ids2ledger(l))
		if err != nil {
			t.Fatalf("ledger %d: %v", l, err)
		}
		if md.State != metadata.LedgerClosed {
			t.Fatalf("old owner's ledger %d is %s after the takeover, want closed", l, md.State)
		}
		var maxAcked int64 = -1
		for _, id := range ids {
			if id.Ledger == l {
				maxAcked = max(maxAcked, id.Entry)
			}
		}
		if int64(md.LastEntry) < maxAcked {
			t.Fatalf("ledger %d closed at entry %d, below acknowledged entry %d", l, md.LastEntry, maxAcked)
		}
		holders := 0
		for _, b := range ledgerBookies(md) {
			last := bookieLastEntry(t, ctx, b, l)
			if last > int64(md.LastEntry) {
				holders++
			}
		}
		if holders >= md.AckQuorum {
			t.Fatalf("ledger %d: %d bookies hold entries past its close at %d: an append after the takeover reached an ack quorum", l, holders, md.LastEntry)
		}
		t.Logf("old ledger %d: closed at entry %d (last acknowledged %d), %d bookies hold entries past it", l, md.LastEntry, maxAcked, holders)
	}
}

func ids2ledger(l uint64) ids.LedgerID { return ids.LedgerID(l) }

func ledgerBookies(md *metadata.Ledger) []string {
	var out []string
	for _, f := range md.Fragments {
		for _, b := range f.Bookies {
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	return out
}

// bookieLastEntry asks the bookie at addr for the highest entry it stores
// of ledger l.
func bookieLastEntry(t *testing.T, ctx context.Context, addr string, l uint64) int64 {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := bookiepb.NewBookieClient(cc).ReadLAC(rctx, &bookiepb.ReadLACRequest{LedgerId: l})
	if err != nil {
		t.Fatalf("ReadLAC of ledger %d at bookie %s: %v", l, addr, err)
	}
	return resp.GetLastEntry()
}

// sendNumbered opens a producer named name on topic, sends n messages
// numbered on from len(*acked) (the payloads checkConsumedExactlyOnce
// expects), each one acknowledged before the next, adds their numbers to
// acked and closes the producer. One name across calls keeps the sequence
// ids going.
func sendNumbered(t *testing.T, ctx context.Context, c *client.Client, topic, name string, n int, acked *[]int) {
	t.Helper()
	p, err := c.NewProducer(ctx, topic, client.ProducerName(name))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range n {
		seq := len(*acked)
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: fmt.Appendf(nil, "pause-%07d", seq)}); err != nil {
			t.Fatalf("send %d: %v", seq, err)
		}
		*acked = append(*acked, seq)
	}
}

// checkConsumedExactlyOnce reads the topic from the earliest message: every
// acknowledged sequence id once, nothing else.
func checkConsumedExactlyOnce(t *testing.T, ctx context.Context, c *client.Client, topic string, acked []int) {
	t.Helper()
	cons, err := c.Subscribe(ctx, topic, "verify", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[uint64]int{}
	for n := 0; n < len(acked); n++ {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := cons.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("received %d of %d acknowledged messages: %v", n, len(acked), err)
		}
		if want := fmt.Sprintf("pause-%07d", m.SequenceID); string(m.Payload) != want {
			t.Fatalf("message with sequence id %d carries %q, want %q", m.SequenceID, m.Payload, want)
		}
		seen[m.SequenceID]++
		if seen[m.SequenceID] > 1 {
			t.Fatalf("sequence id %d consumed twice (at %v)", m.SequenceID, m.ID)
		}
		_ = cons.Ack(m)
	}
	for _, s := range acked {
		if seen[uint64(s)] != 1 {
			t.Fatalf("acknowledged message %d consumed %d times", s, seen[uint64(s)])
		}
	}
	// Nothing beyond what was acknowledged.
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if m, err := cons.Receive(rctx); err == nil {
		t.Fatalf("unexpected extra message %v (sequence id %d)", m.ID, m.SequenceID)
	}
}

func lookupOwner(t *testing.T, ctx context.Context, node, topic string) string {
	t.Helper()
	var owner string
	pollUntil(t, ctx, "a lookup answer from "+node, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		o, err := lookupAt(lctx, node, topic)
		owner = o
		return err == nil && o != ""
	})
	return owner
}

// lookupAt asks the serving node at node for topic's owner.
func lookupAt(ctx context.Context, node, topic string) (string, error) {
	cc, err := grpc.NewClient(node, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	resp, err := servingpb.NewBrokerClient(cc).Lookup(ctx, &servingpb.LookupRequest{Topic: topic})
	if err != nil {
		return "", err
	}
	return resp.GetOwner(), nil
}

// pollUntil polls cond until it holds, failing at ctx's deadline or after
// 60 s.
func pollUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keys(m map[uint64]bool) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
