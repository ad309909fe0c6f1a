package client_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

func TestAdminTopicLifecycle(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	a := c.Admin()
	if err := a.CreateTopic(ctx, "orders", 3); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopic(ctx, "orders", 3); !errors.Is(err, client.ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	info, err := a.GetTopic(ctx, "public/default/orders")
	if err != nil || info.Partitions != 3 {
		t.Fatalf("GetTopic: %+v %v", info, err)
	}
	list, err := a.ListTopics(ctx, "public/default")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListTopics: %+v %v", list, err)
	}
	if err := a.DeleteTopic(ctx, "orders", false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetTopic(ctx, "orders"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("GetTopic after delete: %v", err)
	}
	if _, err := a.ListTopics(ctx, "no-slash"); !errors.Is(err, client.ErrInvalidTopicName) {
		t.Fatalf("bad namespace: %v", err)
	}
}

func TestNamespacePolicyRoundTrips(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	a := c.Admin()
	if _, err := a.GetNamespacePolicy(ctx, "public/default"); !errors.Is(err, client.ErrNamespaceNotFound) {
		t.Fatalf("policy of a new namespace: %v", err)
	}
	want := client.NamespacePolicy{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2, Retention: 7 * 24 * time.Hour,
		TTL: time.Hour, MaxMessageBytes: 1 << 20, OffloadThresholdBytes: 0, OffloadAge: 0, OffloadDeletionLag: time.Minute,
		BacklogQuotaBytes: 1 << 30, BacklogQuotaPolicy: client.ConsumerBacklogEviction}
	if err := a.SetNamespacePolicy(ctx, "public/default", want); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetNamespacePolicy(ctx, "public/default")
	if err != nil || got != want {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
	forever := want
	forever.Retention = client.Forever
	if err := a.SetNamespacePolicy(ctx, "public/default", forever); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetNamespacePolicy(ctx, "public/default"); got.Retention != client.Forever {
		t.Fatalf("retention forever came back as %v", got.Retention)
	}
	bad := want
	bad.AckQuorum = 3
	if err := a.SetNamespacePolicy(ctx, "public/default", bad); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("ack quorum over write quorum: %v", err)
	}
}

// A negative duration is refused, not stored as another value: a deletion
// lag of -1 used to become 0 (delete offloaded ledgers from the bookies at
// once), a TTL of -1 0 (none), a retention of -5 ns Forever. The policy
// stays as it was.
func TestPolicyDurationsRefuseNegativesOtherThanForever(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	a := c.Admin()
	base := client.NamespacePolicy{Retention: time.Hour, OffloadDeletionLag: time.Minute, BacklogQuotaPolicy: client.ProducerException}
	if err := a.SetNamespacePolicy(ctx, "public/default", base); err != nil {
		t.Fatal(err)
	}
	lag, ttl := -time.Second, -time.Millisecond
	for what, p := range map[string]client.NamespacePolicy{
		"deletion lag -1s": {Retention: time.Hour, OffloadDeletionLag: lag},
		"ttl -1ms":         {Retention: time.Hour, TTL: ttl},
		"retention -5ns":   {Retention: -5},
		"offload age -2ns": {Retention: time.Hour, OffloadAge: -2},
	} {
		if err := a.SetNamespacePolicy(ctx, "public/default", p); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("namespace policy with %s: %v, want ErrInvalidArgument", what, err)
		}
	}
	if got, err := a.GetNamespacePolicy(ctx, "public/default"); err != nil || got != base {
		t.Fatalf("policy after the refusals: %+v %v, want %+v", got, err, base)
	}
	for what, p := range map[string]client.TopicPolicy{
		"deletion lag -1s": {OffloadDeletionLag: &lag},
		"ttl -1ms":         {TTL: &ttl},
	} {
		if err := a.SetTopicPolicy(ctx, "t", p); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("topic policy with %s: %v, want ErrInvalidArgument", what, err)
		}
	}
}

func TestResetCursorResolvesWithoutExecuteAndMovesWithIt(t *testing.T) {
	cl, _, c := setup(t, 0)
	ctx := testCtx(t)
	publish(cl, testTopic, 0, 4)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, ctx, cons, 4, true)
	_ = cons.Close()
	a := c.Admin()
	waitFor(t, "backlog 0", func() bool {
		st, err := a.TopicStats(ctx, "t")
		return err == nil && len(st.Subscriptions) == 1 && st.Subscriptions[0].Backlog == 0
	})
	res, err := a.ResetCursor(ctx, "t", "s", client.CursorTarget{Time: msgs[2].PublishTime}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Executed || res[0].Position.Entry > msgs[2].ID.Entry {
		t.Fatalf("dry run resolved %+v", res)
	}
	st, _ := a.TopicStats(ctx, "t")
	if st.Subscriptions[0].Backlog != 0 {
		t.Fatal("reset without execute moved the cursor")
	}
	if _, err := a.ResetCursor(ctx, "t", "s", client.CursorTarget{ID: &msgs[2].ID}, true); err != nil {
		t.Fatal(err)
	}
	st, _ = a.TopicStats(ctx, "t")
	if st.Subscriptions[0].Backlog != 2 {
		t.Fatalf("backlog after executed reset %d, want 2", st.Subscriptions[0].Backlog)
	}
	if err := a.DeleteSubscription(ctx, "t", "s"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteSubscription(ctx, "t", "s"); !errors.Is(err, client.ErrSubscriptionNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "http://x:1", "strata://", "strata://host", "strata://a:1,"} {
		if _, err := client.New(u); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("New(%q): %v, want ErrInvalidArgument", u, err)
		}
	}
	seeds, err := client.ParseURL("strata://a:1,b:2")
	if err != nil || len(seeds) != 2 || seeds[1] != "b:2" {
		t.Fatalf("ParseURL: %v %v", seeds, err)
	}
	if seeds, err := client.ParseURL("strata+tls://a:1"); err != nil || len(seeds) != 1 || seeds[0] != "a:1" {
		t.Fatalf("ParseURL of a TLS URL: %v %v", seeds, err)
	}
}

// TestNewRejectsTLSOptionsItCannotUse: TLS options with a plain URL, a
// client certificate without its key, and unreadable or empty files are
// ErrInvalidArgument from New, before any connection.
func TestNewRejectsTLSOptionsItCannotUse(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		url string
		opt client.Option
	}{
		"TLS option, plain URL": {"strata://a:1", client.TLSConfig(&tls.Config{})},
		"certificate, no key":   {"strata+tls://a:1", client.TLSClientCert(empty, "")},
		"missing CA file":       {"strata+tls://a:1", client.TLSCAFile(filepath.Join(t.TempDir(), "nope.pem"))},
		"CA file without PEM":   {"strata+tls://a:1", client.TLSCAFile(empty)},
		"unreadable key pair":   {"strata+tls://a:1", client.TLSClientCert(empty, empty)},
	} {
		if _, err := client.New(tc.url, tc.opt); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := client.New("strata+tls://a:1"); err != nil {
		t.Fatalf("a TLS URL with the system's authorities: %v", err)
	}
}

func TestUnreachableBrokerIsUnavailableAndRetriable(t *testing.T) {
	c := newClient(t, "strata://127.0.0.1:1")
	ctx := testCtx(t)
	_, err := c.Admin().ListTopics(ctx, "")
	if !errors.Is(err, client.ErrUnavailable) || !client.IsRetriable(err) {
		t.Fatalf("got %v, want retriable ErrUnavailable", err)
	}
}

// TestSubscriptionAdminRejectsAmbiguousTargetsBeforeSending: a reset needs
// exactly one target and a created subscription a known start; anything
// else is ErrInvalidArgument and nothing is sent.
func TestSubscriptionAdminRejectsAmbiguousTargetsBeforeSending(t *testing.T) {
	_, _, c := setup(t, 0)
	ctx := testCtx(t)
	a := c.Admin()
	id := client.MessageID{Ledger: 1}
	for _, to := range []client.CursorTarget{
		{},
		{Earliest: true, Latest: true},
		{ID: &id, Latest: true},
		{Time: time.Now(), Earliest: true},
	} {
		if _, err := a.ResetCursor(ctx, "t", "s", to, true); !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("reset to %+v: %v, want ErrInvalidArgument", to, err)
		}
	}
	if err := a.CreateSubscription(ctx, "t", "s", client.InitialPosition(5)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("create at position 5: %v, want ErrInvalidArgument", err)
	}
}
