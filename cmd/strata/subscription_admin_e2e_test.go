package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// TestSubscriptionCreatedBeforeProducersGetsEveryMessageAndClearBacklogDropsThem
// drives the subscription admin commands against a real standalone, on a
// partitioned topic: a subscription created without a consumer keeps what
// is published after it (list shows the backlog, a later consumer gets it
// all); creating it again fails with its typed error; clear-backlog
// acknowledges the whole backlog, so only later messages arrive.
func TestSubscriptionCreatedBeforeProducersGetsEveryMessageAndClearBacklogDropsThem(t *testing.T) {
	s := newStandalone(t)
	s.start()
	url := s.url()
	cli := cliAt(t, url)
	cli("", "topics", "create", "pipe", "--partitions", "2")
	cli("", "subscriptions", "create", "--topic", "pipe", "--subscription", "billing")
	cli("a\nb\nc\nd\n", "produce", "--topic", "pipe")

	backlog := regexp.MustCompile(`(?m)^billing\s+\S+\s+0\s+(\d+)\s`)
	m := backlog.FindStringSubmatch(cli("", "subscriptions", "list", "--topic", "pipe"))
	if m == nil || m[1] == "0" {
		t.Fatalf("list shows no backlog for the created subscription: %v", m)
	}

	_, _, err := run(t, "", "subscriptions", "create", "--topic", "pipe", "--subscription", "billing", "--url", url)
	if !errors.Is(err, client.ErrSubscriptionExists) {
		t.Fatalf("creating it again: %v, want ErrSubscriptionExists", err)
	}

	got := payloads(cli("", "consume", "--topic", "pipe", "--subscription", "billing", "--type", "shared", "--count", "4", "--timeout", "20s"))
	if slices.Sort(got); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("consumed %q, want a b c d", got)
	}

	cli("e\nf\n", "produce", "--topic", "pipe")
	cli("", "subscriptions", "clear-backlog", "--topic", "pipe", "--subscription", "billing")
	if m := backlog.FindStringSubmatch(cli("", "subscriptions", "list", "--topic", "pipe")); m == nil || m[1] != "0" {
		t.Fatalf("backlog after clear-backlog: %v, want 0", m)
	}
	cli("g\n", "produce", "--topic", "pipe")
	got = payloads(cli("", "consume", "--topic", "pipe", "--subscription", "billing", "--type", "shared", "--count", "1", "--timeout", "20s"))
	if !slices.Equal(got, []string{"g"}) {
		t.Fatalf("after clear-backlog consumed %q, want only g", got)
	}
	if out, _, err := run(t, "", "consume", "--url", url, "--topic", "pipe", "--subscription", "billing", "--type", "shared",
		"--count", "1", "--timeout", "1s"); err == nil {
		t.Fatalf("a cleared message was delivered after g: %q", out)
	}
}

// payloads returns the payload column of consume's text output.
func payloads(out string) []string {
	var ps []string
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		ps = append(ps, f[len(f)-1])
	}
	return ps
}

// TestUnsubscribeDeletesTheSubscriptionOnEveryPartitionUnlessOthersAreAttached:
// Consumer.Unsubscribe on a partitioned topic fails with ErrConsumerBusy
// while another consumer shares the subscription, and the consumer goes on
// receiving; once it is alone, the subscription is gone from every
// partition and the consumer is closed.
func TestUnsubscribeDeletesTheSubscriptionOnEveryPartitionUnlessOthersAreAttached(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	a := c.Admin()
	if err := a.CreateTopic(ctx, "unsub", 2); err != nil {
		t.Fatal(err)
	}
	shared := []client.ConsumerOption{client.ConsumerType(client.Shared)}
	first, err := c.Subscribe(ctx, "unsub", "s", shared...)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := c.Subscribe(ctx, "unsub", "s", shared...)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Unsubscribe(ctx); !errors.Is(err, client.ErrConsumerBusy) {
		t.Fatalf("unsubscribe beside another consumer: %v, want ErrConsumerBusy", err)
	}
	second.Close()
	p, err := c.NewProducer(ctx, "unsub")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 4 { // round-robin: both partitions
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		m, err := first.Receive(ctx)
		if err != nil {
			t.Fatalf("the consumer whose unsubscribe failed stopped receiving: %v", err)
		}
		if err := first.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Receive(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("receive after unsubscribe: %v, want ErrClosed", err)
	}
	parts, err := a.PartitionNames(ctx, "unsub")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range parts {
		st, err := a.TopicStats(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Subscriptions) != 0 {
			t.Fatalf("%s still has subscriptions after unsubscribe: %+v", part, st.Subscriptions)
		}
	}
}

// TestReaderHasNextReadsAPartitionedTopicToItsEndAndSeesLaterMessages: a
// reader looping on HasNext and Next reads every message of a partitioned
// topic once and then stops; a message published afterwards makes HasNext
// true again; a reader at the latest position, or on an empty topic, has
// nothing next.
func TestReaderHasNextReadsAPartitionedTopicToItsEndAndSeesLaterMessages(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "tohere", 2); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "tohere")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(i int) {
		t.Helper()
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	empty, err := c.NewReader(ctx, "tohere")
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if more, err := empty.HasNext(ctx); err != nil || more {
		t.Fatalf("HasNext on an empty topic: %v, %v", more, err)
	}
	const n = 10
	for i := range n {
		send(i)
	}
	r, err := c.NewReader(ctx, "tohere", client.ReaderStartEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readToEnd := func() []byte {
		t.Helper()
		var got []byte
		for {
			more, err := r.HasNext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				return got
			}
			m, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Payload...)
		}
	}
	got := readToEnd()
	want := make([]byte, n)
	for i := range want {
		want[i] = byte(i)
	}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Fatalf("read to the end: %v, want each of 0..%d once", got, n-1)
	}
	latest, err := c.NewReader(ctx, "tohere", client.ReaderStartLatest())
	if err != nil {
		t.Fatal(err)
	}
	defer latest.Close()
	if more, err := latest.HasNext(ctx); err != nil || more {
		t.Fatalf("HasNext at the latest position: %v, %v", more, err)
	}
	send(n)
	if got := readToEnd(); !slices.Equal(got, []byte{n}) {
		t.Fatalf("after one more message, read %v, want [%d]", got, n)
	}
}

// TestReaderHasNextFromAnIDInsideTheLastBatchSeesTheRestOfIt: a reader
// started at a message in the middle of the topic's last batch has that
// message and the batch's later ones next, and nothing after them; and so
// does a reader that seeks back to it (Seek used to start at the batch's
// first message).
func TestReaderHasNextFromAnIDInsideTheLastBatchSeesTheRestOfIt(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "batched", client.ProducerLinger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ids := make(chan client.MessageID, 3)
	for i := range 3 {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte{byte(i)}}, func(id client.MessageID, _ *client.ProducerMessage, err error) {
			if err != nil {
				t.Error(err)
			}
			ids <- id
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var start client.MessageID
	for range 3 {
		if id := <-ids; id.Batch == 1 {
			start = id
		}
	}
	if start.Batch != 1 {
		t.Fatal("the three messages did not share one batch")
	}
	r, err := c.NewReader(ctx, "batched", client.ReaderStartMessageID(start))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	readRest := func(how string) {
		t.Helper()
		for want := byte(1); want <= 2; want++ {
			if more, err := r.HasNext(ctx); err != nil || !more {
				t.Fatalf("%s, before message %d: HasNext %v, %v", how, want, more, err)
			}
			m, err := r.Next(ctx)
			if err != nil || m.Payload[0] != want {
				t.Fatalf("%s, message %d: %v, %v", how, want, m, err)
			}
		}
		if more, err := r.HasNext(ctx); err != nil || more {
			t.Fatalf("%s, after the batch: HasNext %v, %v", how, more, err)
		}
	}
	readRest("started at the id")
	if err := r.Seek(ctx, start); err != nil {
		t.Fatal(err)
	}
	readRest("after seeking back to it")
}

// TestBacklogQuotaRefusesSendsUntilClearBacklogOnARealStandalone: with a
// namespace's backlog quota set from the command line, a subscription
// nobody consumes makes sends fail with ErrBacklogQuotaExceeded; after
// clear-backlog they succeed again.
func TestBacklogQuotaRefusesSendsUntilClearBacklogOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--backlog-quota-check-interval", "100ms"}
	s.start()
	url := s.url()
	cli := func(args ...string) string { t.Helper(); return cliAt(t, url)("", args...) }
	out := cli("namespaces", "set-policy", "public/quota", "--backlog-quota", "4KiB", "--backlog-quota-policy", "producer_exception")
	if !strings.Contains(out, `"backlog_quota_bytes": 4096`) || !strings.Contains(out, `"backlog_quota_policy": "producer_exception"`) {
		t.Fatalf("set-policy printed %s", out)
	}
	cli("subscriptions", "create", "--topic", "public/quota/jobs", "--subscription", "idle")
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "public/quota/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	payload := make([]byte, 512)
	sendErr := func() error {
		_, err := p.Send(ctx, &client.ProducerMessage{Payload: payload})
		return err
	}
	waitFor(t, time.Minute, "a send refused for the backlog quota", func() bool {
		err := sendErr()
		if err != nil && !errors.Is(err, client.ErrBacklogQuotaExceeded) {
			t.Fatalf("send: %v, want ErrBacklogQuotaExceeded", err)
		}
		return err != nil
	})
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(body), `strata_send_errors_total{code="BACKLOG_QUOTA_EXCEEDED"}`) {
		t.Fatalf("/metrics does not count the refused sends (%v)", err)
	}
	cli("subscriptions", "clear-backlog", "--topic", "public/quota/jobs", "--subscription", "idle")
	waitFor(t, time.Minute, "a send accepted after clear-backlog", func() bool { return sendErr() == nil })
}

// TestNamespacesListAndDeleteOnARealStandalone: `strata namespaces list`
// on a real standalone shows a namespace given a policy and one given a
// topic, each once, and only the tenant's with a tenant; `namespaces
// delete` refuses a namespace with a topic (changing nothing), deletes an
// empty one, and says when there is none.
func TestNamespacesListAndDeleteOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	url := s.url()
	cli := func(args ...string) string { t.Helper(); return cliAt(t, url)("", args...) }
	cli("namespaces", "set-policy", "acme/billing", "--ttl", "1d")
	cli("topics", "create", "acme/orders/created")
	cli("topics", "create", "public/default/t")
	if got := cli("namespaces", "list"); got != "acme/billing\nacme/orders\npublic/default\n" {
		t.Fatalf("namespaces list:\n%s", got)
	}
	if got := cli("namespaces", "list", "acme"); got != "acme/billing\nacme/orders\n" {
		t.Fatalf("namespaces list acme:\n%s", got)
	}
	if _, _, err := run(t, "", "namespaces", "list", "a/b", "--url", url); !errors.Is(err, client.ErrInvalidTopicName) {
		t.Fatalf("a bad tenant: %v", err)
	}

	// delete: refused while a topic is left, done once it is gone.
	cli("namespaces", "set-policy", "acme/orders", "--ttl", "2d")
	if _, _, err := run(t, "", "namespaces", "delete", "acme/orders", "--url", url); !errors.Is(err, client.ErrNamespaceNotEmpty) {
		t.Fatalf("deleting a namespace with a topic: %v, want ErrNamespaceNotEmpty", err)
	}
	if got := cli("namespaces", "get-policy", "acme/orders"); !strings.Contains(got, `"ttl": "2d"`) {
		t.Fatalf("the refused delete changed the policy:\n%s", got)
	}
	cli("topics", "delete", "acme/orders/created")
	cli("namespaces", "delete", "acme/orders")
	cli("namespaces", "delete", "acme/billing")
	if got := cli("namespaces", "list", "acme"); got != "" {
		t.Fatalf("namespaces of acme after deleting both:\n%s", got)
	}
	if _, _, err := run(t, "", "namespaces", "delete", "acme/billing", "--url", url); !errors.Is(err, client.ErrNamespaceNotFound) {
		t.Fatalf("deleting it again: %v, want ErrNamespaceNotFound", err)
	}
}

// cliAt returns a runner of strata commands against the cluster at url: it
// feeds stdin, fails the test when the command fails, and returns stdout.
func cliAt(t *testing.T, url string) func(stdin string, args ...string) string {
	return func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := run(t, stdin, append(args, "--url", url)...)
		if err != nil {
			t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
}

// TestExclusiveProducerFencesOthersOnEveryPartition: through the SDK on a
// real standalone, an exclusive producer of a partitioned topic makes
// another producer fail at once with ErrProducerFenced; once it is
// closed, the other opens at once and sends.
func TestExclusiveProducerFencesOthersOnEveryPartition(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "single-writer", 3); err != nil {
		t.Fatal(err)
	}
	x, err := c.NewProducer(ctx, "single-writer", client.ProducerAccess(client.AccessExclusive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Send(ctx, &client.ProducerMessage{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewProducer(ctx, "single-writer"); !errors.Is(err, client.ErrProducerFenced) {
		t.Fatalf("a producer beside the exclusive one: %v, want ErrProducerFenced", err)
	}
	x.Close() // returns once the node has let it go
	other, err := c.NewProducer(ctx, "single-writer")
	if err != nil {
		t.Fatalf("after the exclusive producer closed: %v", err)
	}
	defer other.Close()
	if _, err := other.Send(ctx, &client.ProducerMessage{Payload: []byte("y")}); err != nil {
		t.Fatal(err)
	}
}

// TestMessageRouterChoosesThePartitionOnARealStandalone: each message goes
// to the partition the producer's router picks, as the receipts and a
// consumer of that partition see.
func TestMessageRouterChoosesThePartitionOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	if err := c.Admin().CreateTopic(ctx, "routed", 3); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer(ctx, "routed", client.ProducerMessageRouter(func(*client.ProducerMessage, int) int { return 2 }))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 3 {
		id, err := p.Send(ctx, &client.ProducerMessage{Key: fmt.Sprint(i), Payload: []byte{byte(i)}})
		if err != nil || id.Partition != 2 {
			t.Fatalf("send %d: partition %d, %v", i, id.Partition, err)
		}
	}
	cons, err := c.Subscribe(ctx, "routed-partition-2", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range 3 {
		if m := receiveWithin(t, ctx, cons); m.Payload[0] != byte(i) {
			t.Fatalf("partition 2 message %d: %v", i, m.Payload)
		}
	}
}

// TestResetToEarliestFromTheCommandLineRedeliversEverything: `subscriptions
// reset --to earliest` only prints the plan without --execute; with it, a
// subscription that consumed everything gets every message again. A bad
// --to is refused.
func TestResetToEarliestFromTheCommandLineRedeliversEverything(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	cli("a\nb\nc\n", "produce", "--topic", "again")
	consume := func() []string {
		got := payloads(cli("", "consume", "--topic", "again", "--subscription", "s", "--position", "earliest", "--count", "3", "--timeout", "20s"))
		slices.Sort(got)
		return got
	}
	if got := consume(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("first read: %v", got)
	}
	if out := cli("", "subscriptions", "reset", "--topic", "again", "--subscription", "s", "--to", "earliest"); !strings.Contains(out, "dry run") {
		t.Fatalf("reset without --execute printed %q", out)
	}
	cli("", "subscriptions", "reset", "--topic", "again", "--subscription", "s", "--to", "earliest", "--execute")
	if got := consume(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("after reset --to earliest: %v", got)
	}
	if _, _, err := run(t, "", "subscriptions", "reset", "--topic", "again", "--subscription", "s", "--to", "sideways", "--url", s.url()); err == nil {
		t.Fatal("--to sideways accepted")
	}
}

// TestBacklogQuotaEvictionOnARealStandalone: under consumer_backlog_eviction
// set from the command line, a subscription nobody consumes is moved
// forward until its backlog fits the quota; its consumer then gets the
// newest messages, in order, and /metrics counts the eviction.
func TestBacklogQuotaEvictionOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--backlog-quota-check-interval", "100ms"}
	s.start()
	cli := cliAt(t, s.url())
	const topic, quota, total = "public/evict/jobs", 4096, 40
	cli("", "namespaces", "set-policy", "public/evict", "--backlog-quota", "4KiB", "--backlog-quota-policy", "consumer_backlog_eviction")
	cli("", "subscriptions", "create", "--topic", topic, "--subscription", "idle")
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	sendEach(t, ctx, c, topic, total, 512)
	waitFor(t, time.Minute, "the idle subscription within the quota", func() bool {
		st, err := c.Admin().TopicStats(ctx, topic)
		if err != nil || len(st.Subscriptions) != 1 {
			return false
		}
		sub := st.Subscriptions[0]
		return sub.BacklogBytes <= quota && sub.Backlog < total
	})
	cons, err := c.Subscribe(ctx, topic, "idle")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	first := receiveWithin(t, ctx, cons).Payload[0]
	if first == 0 {
		t.Fatal("the idle subscription still starts at the first message")
	}
	for want := first + 1; want < total; want++ {
		if m := receiveWithin(t, ctx, cons); m.Payload[0] != want {
			t.Fatalf("after eviction got message %d, want %d", m.Payload[0], want)
		}
	}
	if evictions := metricValue(t, s.http, "strata_backlog_quota_evictions_total"); evictions < 1 {
		t.Fatalf("/metrics counts %v evictions, want at least 1", evictions)
	}
}

// sendEach sends n messages of size bytes to topic one at a time, so that
// each is an entry of its own; message i starts with byte i.
func sendEach(t *testing.T, ctx context.Context, c *client.Client, topic string, n, size int) {
	t.Helper()
	p, err := c.NewProducer(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range n {
		payload := make([]byte, size)
		payload[0] = byte(i)
		if _, err := p.Send(ctx, &client.ProducerMessage{Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
}

// metricValue answers the value of the series named series (with its
// labels, as /metrics prints them) on the node at httpAddr, -1 if absent.
func metricValue(t *testing.T, httpAddr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	v := -1.0
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return v
}

// TestDispatchRateSlowsASubscriptionsDrainOnARealStandalone: a namespace's
// dispatch rate, set from the command line, paces a backlog's delivery to
// a subscription (past the first second's worth, no faster than the
// rate), the node counts the time its dispatcher waited, and the rate can
// be lifted again.
func TestDispatchRateSlowsASubscriptionsDrainOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const topic, rate, total = "public/paced/jobs", 40, 100
	cli("", "namespaces", "set-policy", "public/paced", "--dispatch-rate", fmt.Sprint(rate), "--dispatch-rate-bytes", "1MiB")
	if out := cli("", "namespaces", "get-policy", "public/paced"); !strings.Contains(out, `"dispatch_rate_msgs": 40`) ||
		!strings.Contains(out, `"dispatch_rate_bytes": 1048576`) {
		t.Fatalf("get-policy: %s", out)
	}
	cli("", "subscriptions", "create", "--topic", topic, "--subscription", "slow")
	ctx := testContext(t, 2*time.Minute)
	c := s.client()
	sendEach(t, ctx, c, topic, total, 1)
	start := time.Now()
	cons, err := c.Subscribe(ctx, topic, "slow")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for want := range total {
		if m := receiveWithin(t, ctx, cons); m.Payload[0] != byte(want) {
			t.Fatalf("got message %d, want %d", m.Payload[0], want)
		}
	}
	// A lower bound only: a loaded machine makes it slower, never faster.
	if took, least := time.Since(start), time.Duration(total-rate-1)*time.Second/rate; took < least {
		t.Fatalf("%d messages drained in %v; at %d/s after a second's burst they take at least %v", total, took, rate, least)
	}
	if v := metricValue(t, s.http, `strata_dispatch_throttled_seconds_total{topic="`+topic+`"}`); v <= 0 {
		t.Fatalf("/metrics counts %v seconds throttled", v)
	}
	cli("", "namespaces", "set-policy", "public/paced", "--dispatch-rate", "0", "--dispatch-rate-bytes", "-1")
	if out := cli("", "namespaces", "get-policy", "public/paced"); !strings.Contains(out, `"dispatch_rate_msgs": 0`) ||
		!strings.Contains(out, `"dispatch_rate_bytes": 0`) {
		t.Fatalf("get-policy after lifting the rate: %s", out)
	}
	if _, _, err := run(t, "", "namespaces", "set-policy", "public/paced", "--dispatch-rate-bytes", "10XB", "--url", s.url()); err == nil {
		t.Fatal("--dispatch-rate-bytes 10XB was accepted")
	}
}

// TestPublishRateHoldsProducersBackWithoutFailingThemOnARealStandalone:
// with a namespace publish rate of 50 messages a second, a producer
// sending 240 messages in batches of 40 as fast as it can has every one
// acknowledged, in order, but no faster than the rate allows after a
// second's burst, and without reconnecting though each batch waits longer
// than its receipt timeout (the node says which batch it holds); the time its stream
// was not read shows in /metrics; a topic's own policy lifts the rate for
// that topic alone.
func TestPublishRateHoldsProducersBackWithoutFailingThemOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const topic, rate, total, batch = "public/throttled/events", 50, 240, 40
	cli("", "namespaces", "set-policy", "public/throttled", "--publish-rate", fmt.Sprint(rate), "--publish-rate-bytes", "1MiB")
	if out := cli("", "namespaces", "get-policy", "public/throttled"); !strings.Contains(out, `"publish_rate_msgs": 50`) {
		t.Fatalf("get-policy: %s", out)
	}
	ctx := testContext(t, 2*time.Minute)
	reg := prometheus.NewRegistry()
	c := s.client(client.Metrics(reg))
	produce := func(topic string) time.Duration {
		t.Helper()
		// A receipt timeout shorter than the throttling: the node's
		// Throttled notices must keep the producer from taking the wait
		// for a frozen node and reconnecting.
		p, err := c.NewProducer(ctx, topic, client.ProducerBatchMaxMessages(batch), client.ProducerLinger(time.Millisecond),
			client.ProducerReceiptTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		start := time.Now()
		errs := make(chan error, total)
		for i := range total {
			p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte{byte(i)}}, func(_ client.MessageID, _ *client.ProducerMessage, err error) { errs <- err })
		}
		for range total {
			if err := <-errs; err != nil {
				t.Fatalf("a send under the publish rate failed: %v", err)
			}
		}
		return time.Since(start)
	}
	// A lower bound only: a loaded machine makes it slower, never faster.
	if took, least := produce(topic), time.Duration(total-rate-2*batch)*time.Second/rate; took < least {
		t.Fatalf("%d messages acknowledged in %v; at %d/s after a second's burst they take at least %v", total, took, rate, least)
	}
	if v := metricValue(t, s.http, `strata_publish_throttled_seconds_total{topic="`+topic+`"}`); v <= 0 {
		t.Fatalf("/metrics counts %v seconds throttled", v)
	}
	if n := gatheredValue(t, reg, "strata_client_producer_reconnects_total"); n != 0 {
		t.Fatalf("the throttled producer reconnected %v times", n)
	}
	cons, err := c.Subscribe(ctx, topic, "check", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	for want := range total {
		if m := receiveWithin(t, ctx, cons); m.Payload[0] != byte(want) {
			t.Fatalf("got message %d, want %d", m.Payload[0], want)
		}
	}
	cons.Close()
	// A topic no longer served here leaves no series behind.
	cli("", "topics", "unload", topic)
	waitFor(t, 30*time.Second, "the unloaded topic's throttling series gone", func() bool {
		return metricValue(t, s.http, `strata_publish_throttled_seconds_total{topic="`+topic+`"}`) < 0
	})
	const free = "public/throttled/unbounded"
	cli("", "topics", "set-policy", free, "--publish-rate", "0")
	if got := cli("", "topics", "get-policy", free); !strings.Contains(got, `"publish_rate_msgs": 0`) {
		t.Fatalf("topics get-policy: %s", got)
	}
	produce(free)                                                                                       // nothing to assert on its speed: it must only succeed
	if v := metricValue(t, s.http, `strata_publish_throttled_seconds_total{topic="`+free+`"}`); v > 0 { // absent: -1
		t.Fatalf("a topic whose own policy lifts the rate was throttled %v seconds", v)
	}
	// Messages the rate holds back past `produce --timeout` fail as
	// TIMEOUT: the close after the wait had failed them as CLOSED.
	_, _, err = run(t, "", "produce", "--url", s.url(), "--topic", "public/throttled/slow", "--count", "400", "--timeout", "1s")
	if errcode.CodeOf(err) != errcode.Timeout || !strings.Contains(err.Error(), "messages failed") {
		t.Fatalf("produce of 400 messages at 50 a second within 1 s: %v, want TIMEOUT", err)
	}
}

// TestWaitForExclusiveProducerTakesOverWhenTheHolderCloses: through the
// SDK on a real standalone, a second WaitForExclusive producer of a
// partitioned topic waits, past the operation timeout, while the first
// holds every partition; it opens once the first closes, and then keeps
// other producers out.
func TestWaitForExclusiveProducerTakesOverWhenTheHolderCloses(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client(client.OperationTimeout(500 * time.Millisecond))
	if err := c.Admin().CreateTopic(ctx, "elected", 3); err != nil {
		t.Fatal(err)
	}
	waitMode := client.ProducerAccess(client.AccessWaitForExclusive)
	leader, err := c.NewProducer(ctx, "elected", waitMode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Send(ctx, &client.ProducerMessage{Payload: []byte("from the leader")}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   *client.Producer
		err error
	}
	next := make(chan result, 1)
	go func() {
		p, err := c.NewProducer(ctx, "elected", waitMode)
		next <- result{p, err}
	}()
	// Three operation timeouts: the wait is bounded by ctx alone.
	select {
	case r := <-next:
		t.Fatalf("the second producer returned while the first held the topic: %v", r.err)
	case <-time.After(1500 * time.Millisecond):
	}
	leader.Close()
	r := <-next
	if r.err != nil {
		t.Fatalf("the second producer after the first closed: %v", r.err)
	}
	defer r.p.Close()
	if _, err := r.p.Send(ctx, &client.ProducerMessage{Payload: []byte("from the successor")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewProducer(ctx, "elected"); !errors.Is(err, client.ErrProducerFenced) {
		t.Fatalf("a shared producer beside the successor: %v, want ErrProducerFenced", err)
	}
}

// TestExclusiveWithFencingStopsThePreviousLeadersWrites: through the SDK
// on a real standalone, a producer opened with AccessExclusiveWithFencing
// takes the topic from an exclusive one, whose next send fails with
// ErrProducerFenced for good (no reconnect lets it write again), and the
// topic holds nothing of the old producer's after the fence.
func TestExclusiveWithFencingStopsThePreviousLeadersWrites(t *testing.T) {
	s := newStandalone(t)
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	send := func(p *client.Producer, payload string) error {
		_, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte(payload)})
		return err
	}
	old, err := c.NewProducer(ctx, "leader-log", client.ProducerAccess(client.AccessExclusive))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := send(old, "old-1"); err != nil {
		t.Fatal(err)
	}
	leader, err := c.NewProducer(ctx, "leader-log", client.ProducerAccess(client.AccessExclusiveWithFencing))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if err := send(old, "old-2"); !errors.Is(err, client.ErrProducerFenced) {
		t.Fatalf("the old producer's send after the fence: %v, want ErrProducerFenced", err)
	}
	if err := send(leader, "new-1"); err != nil {
		t.Fatal(err)
	}
	leader.Close()
	if err := send(old, "old-3"); !errors.Is(err, client.ErrProducerFenced) && !errors.Is(err, client.ErrClosed) {
		t.Fatalf("the fenced producer once the topic is free: %v, want it failed for good", err)
	}
	got := payloads(cliAt(t, s.url())("", "consume", "--topic", "leader-log", "--subscription", "audit", "--position", "earliest",
		"--count", "2", "--timeout", "20s"))
	if !slices.Equal(got, []string{"old-1", "new-1"}) {
		t.Fatalf("the topic holds %q, want old-1 new-1", got)
	}
	if _, _, err := run(t, "", "consume", "--url", s.url(), "--topic", "leader-log", "--subscription", "audit",
		"--count", "1", "--timeout", "1s"); err == nil {
		t.Fatal("a third message is on the topic")
	}
}

// gatheredValue answers the value of the counter or gauge name in reg (0
// when it has no sample).
func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}
