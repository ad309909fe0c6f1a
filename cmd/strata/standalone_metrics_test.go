package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/client"
)

// TestStandaloneMetricsShowTheBookieAndTheServingNode checks that one
// /metrics shows both tiers of a standalone broker: operators watch fsync
// latency there.
func TestStandaloneMetricsShowTheBookieAndTheServingNode(t *testing.T) {
	s := newStandalone(t)
	s.start()
	c := s.client()
	ctx := testContext(t, time.Minute)
	p, err := c.NewProducer(ctx, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &client.ProducerMessage{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"strata_bookie_journal_fsync_seconds", "strata_bookie_adds_total", "go_goroutines"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if code := httpStatus(t, "http://"+s.http+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: status %d, want 404 (the profiler is opt-in)", code)
	}
}

func TestStandaloneServesTheProfilerOnlyWithPprof(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--pprof"}
	s.start()
	resp, err := http.Get("http://" + s.http + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine with --pprof: status %d, body %.200q", resp.StatusCode, body)
	}
	if code := httpStatus(t, "http://"+s.http+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with --pprof: status %d", code)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStandaloneOverGRPCToItsOwnBookieDeliversEveryMessage covers
// --local-bookie=false: the serving node reaches the embedded bookie over
// gRPC, as a cluster's nodes do, instead of in process (the default, which
// every other standalone test uses).
func TestStandaloneOverGRPCToItsOwnBookieDeliversEveryMessage(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--local-bookie=false"}
	s.start()
	ctx := testContext(t, time.Minute)
	c := s.client()
	p, err := c.NewProducer(ctx, "over-grpc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: []byte(fmt.Sprintf("m%d", i))}, func(_ client.MessageID, _ *client.ProducerMessage, err error) {
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := c.Subscribe(ctx, "over-grpc", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range n {
		m := receiveWithin(t, ctx, cons)
		if string(m.Payload) != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d: %q", i, m.Payload)
		}
		cons.Ack(m)
	}
}

// TestBacklogAgeShowsInMetricsAndSubscriptionsListOnARealStandalone: a
// subscription nobody drains shows how old its oldest message is, in
// /metrics and in `subscriptions list`, and zero once its backlog is
// cleared.
func TestBacklogAgeShowsInMetricsAndSubscriptionsListOnARealStandalone(t *testing.T) {
	s := newStandalone(t)
	s.extraArgs = []string{"--backlog-quota-check-interval", "100ms"}
	s.start()
	cli := cliAt(t, s.url())
	cli("", "subscriptions", "create", "--topic", "aged", "--subscription", "nobody")
	cli("old news\n", "produce", "--topic", "aged")
	age := func() float64 {
		return metricValue(t, s.http, `strata_subscription_backlog_age_seconds{subscription="nobody",topic="public/default/aged"}`)
	}
	waitFor(t, 30*time.Second, "a backlog age in /metrics", func() bool { return age() > 0 })
	if out := cli("", "subscriptions", "list", "--topic", "aged"); !strings.Contains(out, "BACKLOG AGE") || strings.Contains(out, " - ") {
		t.Fatalf("subscriptions list without the backlog's age:\n%s", out)
	}
	cli("", "subscriptions", "clear-backlog", "--topic", "aged", "--subscription", "nobody")
	waitFor(t, 30*time.Second, "the age back to zero", func() bool { return age() == 0 })
}

// defaultProcs is this process's GOMAXPROCS before any test ran one of the
// server commands in process (which raise it): the default a child starts
// from.
var defaultProcs = runtime.GOMAXPROCS(0)

// TestStandaloneRunsTwoMorePsThanCPUsForTheJournal checks that `strata
// standalone` raises GOMAXPROCS (bookie.RaiseProcs): with as many Ps as
// CPUs, the journal's writer and syncer in their system calls hold them
// all, and the adds they made durable wait for an answer.
func TestStandaloneRunsTwoMorePsThanCPUsForTheJournal(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set: the standalone keeps it (TestRaiseProcsLeavesAnOperatorsGOMAXPROCS)")
	}
	s := newStandalone(t)
	s.start()
	want := float64(defaultProcs + bookie.ExtraProcs)
	if got := metricValue(t, s.http, "go_sched_gomaxprocs_threads"); got != want {
		t.Fatalf("/metrics: go_sched_gomaxprocs_threads %v, want %v (-1: absent)", got, want)
	}
}
