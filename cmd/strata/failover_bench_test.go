package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/chaos"
)

// BenchmarkFailover measures, over STRATA_FAILOVER_KILLS (default 10) kills,
// the time from SIGKILL of a topic's owner to the first acknowledged send
// written by the new owner, on a local cluster of separate processes (3
// bookies, 2 serving nodes, E=3 Qw=3 Qa=2, fsync on). A producer sends
// continuously (one message every millisecond, 100 B) to one topic. For each
// kill: look up the owner, SIGKILL it, wait for the first receipt in a ledger
// other than the ones written before the kill (the new owner's), restart the
// killed node, wait for every node to be ready, and let the producer run
// against the new owner before the next kill.
//
// Alongside the client-side failover it reports when a lookup at the
// surviving node first names the survivor as owner (the server-side part:
// lease expiry and reassignment), so that what the client adds is visible.
//
// It ignores b.N: one run is ten kills (about a minute).
//
//	go test -run '^$' -bench Failover -benchtime 1x ./cmd/strata/
//
// STRATA_FAILOVER_LEASE sets the serving nodes' --lease-ttl (default 3s);
// STRATA_FAILOVER_BACKOFF=min,max sets the client's ReconnectBackoff
// (default: the SDK's, 100ms,5s).
func BenchmarkFailover(b *testing.B) {
	kills := failoverEnvInt(b, "STRATA_FAILOVER_KILLS", 10)
	lease := 3 * time.Second
	if v := os.Getenv("STRATA_FAILOVER_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("STRATA_FAILOVER_LEASE: %v", err)
		}
		lease = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	var servingAddrs []string // index i: serving-i's gRPC address
	cl, err := chaos.StartLocalCluster(ctx, chaos.ClusterConfig{Exe: strataBin, Bookies: 3, Serving: 2,
		ServeArgs: func(a chaos.NodeAddrs, c chaos.ClusterConfig) []string {
			servingAddrs = append(servingAddrs, a.Addr)
			return append(chaos.DefaultServeArgs(a, c), "--lease-ttl", lease.String())
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := cl.Close(); err != nil {
			b.Logf("cluster close: %v", err)
		}
	}()
	targets := cl.Targets()

	var opts []client.Option
	if v := os.Getenv("STRATA_FAILOVER_BACKOFF"); v != "" {
		lo, hi, _ := strings.Cut(v, ",")
		dlo, err1 := time.ParseDuration(lo)
		dhi, err2 := time.ParseDuration(hi)
		if err := errors.Join(err1, err2); err != nil {
			b.Fatalf("STRATA_FAILOVER_BACKOFF: %v", err)
		}
		opts = append(opts, client.ReconnectBackoff(dlo, dhi))
	}
	c, err := client.New(cl.URL(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topicName := "public/default/failover-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := c.Admin().CreateTopic(ctx, topicName, 0); err != nil {
		b.Fatal(err)
	}
	acks := &failoverAcks{}
	prod := &failoverProducer{c: c, topic: topicName, acks: acks}
	if err := prod.start(ctx); err != nil {
		b.Fatal(err)
	}
	defer prod.stop()

	var total, serverSide, gap []time.Duration
	stuck := 0
	for i := range kills {
		// Let the current owner acknowledge for a while first.
		pollUntil(b, ctx, "receipts before kill", func() bool { return acks.countSince(time.Now().Add(-500*time.Millisecond)) > 100 })
		owner := failoverLookup(b, ctx, servingAddrs[0], topicName)
		victim, survivor := -1, -1
		for j, a := range servingAddrs {
			if a == owner {
				victim = j
			} else {
				survivor = j
			}
		}
		if victim < 0 {
			b.Fatalf("owner %q is not a serving node of %v", owner, servingAddrs)
		}
		old := acks.ledgers()
		lastBefore := acks.last()
		kill := time.Now()
		if err := targets[chaos.TargetName(chaos.Serving, victim)].Kill(ctx); err != nil {
			b.Fatal(err)
		}
		moved := failoverLookupMoved(b, ctx, servingAddrs[survivor], topicName, owner)
		first := failoverWait(ctx, 30*time.Second, func() time.Time { return acks.firstOutside(old, kill) })
		if first.IsZero() {
			// The SDK producer did not reach the new owner: count it,
			// abandon the producer (its Close may hang too) and go on with
			// a new one.
			stuck++
			failoverLogf(b, "kill %d: serving-%d (%s): NO receipt from the new owner within 30 s (lookup moved after %v); new producer",
				i+1, victim, owner, moved.Sub(kill).Round(time.Millisecond))
			prod.abandon()
			if err := prod.start(ctx); err != nil {
				b.Fatal(err)
			}
		} else {
			total = append(total, first.Sub(kill))
			serverSide = append(serverSide, moved.Sub(kill))
			gap = append(gap, first.Sub(lastBefore))
			failoverLogf(b, "kill %d: serving-%d (%s): first new-owner receipt after %v, lookup at serving-%d names it after %v, receipt gap %v",
				i+1, victim, owner, first.Sub(kill).Round(time.Millisecond), survivor, moved.Sub(kill).Round(time.Millisecond),
				first.Sub(lastBefore).Round(time.Millisecond))
		}
		if err := targets[chaos.TargetName(chaos.Serving, victim)].Restart(); err != nil {
			b.Fatal(err)
		}
		if err := cl.WaitAllReady(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if !prod.stop() {
		b.Errorf("Producer.Close did not return within 10 s")
	}
	if stuck > 0 {
		b.Errorf("%d of %d kills: the producer got no receipt from the new owner within 30 s", stuck, kills)
	}
	b.ReportMetric(float64(stuck), "stuck-kills")
	if errs := acks.errors(); len(errs) > 0 {
		b.Errorf("%d sends failed, first: %v", len(errs), errs[0])
	}
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"failover", total}, {"lookup-moved", serverSide}, {"receipt-gap", gap}} {
		p50, p99, mx := failoverPercentiles(m.ds)
		b.ReportMetric(float64(p50.Milliseconds()), m.name+"-p50-ms")
		b.ReportMetric(float64(p99.Milliseconds()), m.name+"-p99-ms")
		b.ReportMetric(float64(mx.Milliseconds()), m.name+"-max-ms")
		failoverLogf(b, "%s over %d kills (lease %v): p50 %v p99 %v max %v", m.name, len(m.ds), lease, p50, p99, mx)
	}
}

// failoverProducer is the benchmark's producer and its sending goroutine.
type failoverProducer struct {
	c     *client.Client
	topic string
	acks  *failoverAcks
	p     *client.Producer
	stopS context.CancelFunc
	wg    sync.WaitGroup
}

func (f *failoverProducer) start(ctx context.Context) error {
	p, err := f.c.NewProducer(ctx, f.topic)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	f.p, f.stopS = p, cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		failoverSend(sctx, p, f.acks)
	}()
	return nil
}

// stopSending ends the sending goroutine.
func (f *failoverProducer) stopSending() {
	if f.stopS != nil {
		f.stopS()
		f.wg.Wait()
		f.stopS = nil
	}
}

// stop ends the sending goroutine and closes the producer, waiting at most
// 10 s for Close (false: it did not return).
func (f *failoverProducer) stop() bool {
	f.stopSending()
	if f.p == nil {
		return true
	}
	done := make(chan struct{})
	go func(p *client.Producer) { _ = p.Close(); close(done) }(f.p)
	f.p = nil
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// abandon ends the sending goroutine and closes the producer in the
// background (a producer stuck on a dead stream may never finish closing).
func (f *failoverProducer) abandon() {
	f.stopSending()
	if p := f.p; p != nil {
		go func() { _ = p.Close() }()
		f.p = nil
	}
}

// failoverWait polls get every 10 ms until it returns a non-zero time or d
// passes (zero time).
func failoverWait(ctx context.Context, d time.Duration, get func() time.Time) time.Time {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if t := get(); !t.IsZero() {
			return t
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}
}

// failoverLogf logs to the benchmark and, at once, to stderr (a benchmark's
// log appears only when it ends).
func failoverLogf(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, "failover: "+format+"\n", args...)
}

// failoverSend sends a 100 B message every millisecond until ctx ends,
// recording every receipt.
func failoverSend(ctx context.Context, p *client.Producer, acks *failoverAcks) {
	payload := make([]byte, 100)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.SendAsync(ctx, &client.ProducerMessage{Payload: payload}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
			acks.add(time.Now(), id, err)
		})
	}
}

// failoverAcks records when each receipt arrived and its ledger.
type failoverAcks struct {
	mu    sync.Mutex
	times []time.Time
	ldgs  []uint64
	errs  []error
}

func (a *failoverAcks) add(at time.Time, id client.MessageID, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if !isClosedErr(err) {
			a.errs = append(a.errs, err)
		}
		return
	}
	a.times = append(a.times, at)
	a.ldgs = append(a.ldgs, id.Ledger)
}

// isClosedErr reports the failures a producer's Close gives messages still
// in flight at the end of the run.
func isClosedErr(err error) bool {
	return err != nil && (errors.Is(err, client.ErrClosed) || errors.Is(err, context.Canceled))
}

func (a *failoverAcks) countSince(t time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i := len(a.times) - 1; i >= 0 && a.times[i].After(t); i-- {
		n++
	}
	return n
}

func (a *failoverAcks) ledgers() map[uint64]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[uint64]bool{}
	for _, l := range a.ldgs {
		m[l] = true
	}
	return m
}

func (a *failoverAcks) last() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.times) == 0 {
		return time.Time{}
	}
	return a.times[len(a.times)-1]
}

// firstOutside returns the arrival time of the first receipt after t in a
// ledger not in old, or the zero time.
func (a *failoverAcks) firstOutside(old map[uint64]bool, t time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, at := range a.times {
		if at.After(t) && !old[a.ldgs[i]] {
			return at
		}
	}
	return time.Time{}
}

func (a *failoverAcks) errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.errs)
}

// failoverLookup asks node for topic's owner until it answers.
func failoverLookup(b *testing.B, ctx context.Context, node, topic string) string {
	b.Helper()
	var owner string
	pollUntil(b, ctx, "a lookup answer from "+node, func() bool {
		o, err := failoverLookupAt(ctx, node, topic)
		owner = o
		return err == nil && o != ""
	})
	return owner
}

// failoverLookupMoved polls a lookup at node until it names an owner other
// than old and returns when it first did.
func failoverLookupMoved(b *testing.B, ctx context.Context, node, topic, old string) time.Time {
	b.Helper()
	var at time.Time
	pollUntil(b, ctx, "the owner to move off "+old, func() bool {
		o, err := failoverLookupAt(ctx, node, topic)
		at = time.Now()
		return err == nil && o != "" && o != old
	})
	return at
}

func failoverLookupAt(ctx context.Context, node, topic string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return lookupAt(ctx, node, topic)
}

// failoverPercentiles returns the nearest-rank p50, p99 and max of ds.
func failoverPercentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99), s[len(s)-1]
}

func failoverEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s: want a positive integer, got %q", name, v)
	}
	return n
}
