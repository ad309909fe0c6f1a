package metadata_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func TestPolicyValidateRejectsOutOfRangeValues(t *testing.T) {
	t.Parallel()
	bad := map[string]func(*metadata.NamespacePolicy){
		"Qw > E":         func(p *metadata.NamespacePolicy) { p.Ensemble, p.WriteQuorum, p.AckQuorum = 2, 3, 2 },
		"Qa > Qw":        func(p *metadata.NamespacePolicy) { p.Ensemble, p.WriteQuorum, p.AckQuorum = 3, 2, 3 },
		"only E set":     func(p *metadata.NamespacePolicy) { p.Ensemble = 3 },
		"E too big":      func(p *metadata.NamespacePolicy) { p.Ensemble, p.WriteQuorum, p.AckQuorum = 1000, 3, 2 },
		"retention < -1": func(p *metadata.NamespacePolicy) { p.RetentionMs = -2 },
		"negative ttl":   func(p *metadata.NamespacePolicy) { p.TTLMs = -1 },
		"huge messages":  func(p *metadata.NamespacePolicy) { p.MaxMessageBytes = 1 << 40 },
		"threshold < -1": func(p *metadata.NamespacePolicy) { p.OffloadThresholdBytes = -5 },
		"age < -1":       func(p *metadata.NamespacePolicy) { p.OffloadAgeMs = -5 },
		"negative lag":   func(p *metadata.NamespacePolicy) { p.OffloadDeletionLagMs = -1 },
		"negative quota": func(p *metadata.NamespacePolicy) { p.BacklogQuotaBytes = -1 },
		"unknown quota policy": func(p *metadata.NamespacePolicy) {
			p.BacklogQuotaBytes, p.BacklogQuotaPolicy = 1, "drop_everything"
		},
	}
	for name, mutate := range bad {
		p := metadata.DefaultNamespacePolicy()
		mutate(&p)
		err := p.Validate()
		if !errors.Is(err, metadata.ErrInvalidPolicy) || errcode.CodeOf(err) != errcode.InvalidPolicy {
			t.Errorf("%s: got %v, want an InvalidPolicy error", name, err)
		}
	}
	good := metadata.DefaultNamespacePolicy()
	good.Ensemble, good.WriteQuorum, good.AckQuorum, good.RetentionMs = 3, 3, 2, -1
	for _, p := range []metadata.NamespacePolicy{metadata.DefaultNamespacePolicy(), good, {}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

func TestNamespacePolicyDefaultsWhenAbsentAndInvalidChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const ns = "acme/orders"
	p, err := s.GetNamespacePolicy(ctx, ns)
	if err != nil || p != metadata.DefaultNamespacePolicy() {
		t.Fatalf("absent policy: %+v %v", p, err)
	}
	p.Ensemble, p.WriteQuorum, p.AckQuorum, p.TTLMs = 3, 2, 2, 60_000
	if err := s.SetNamespacePolicy(ctx, ns, p); err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetNamespacePolicy(ctx, ns)
	if err != nil || stored.Version == 0 || stored.TTLMs != 60_000 || stored.Ensemble != 3 {
		t.Fatalf("stored: %+v %v", stored, err)
	}
	bad := stored
	bad.AckQuorum = 5
	if err := s.SetNamespacePolicy(ctx, ns, bad); errcode.CodeOf(err) != errcode.InvalidPolicy {
		t.Fatalf("invalid policy: %v", err)
	}
	after, _ := s.GetNamespacePolicy(ctx, ns)
	if after != stored {
		t.Fatalf("an invalid policy changed the stored one: %+v, was %+v", after, stored)
	}
	if _, err := s.GetNamespacePolicy(ctx, "no-slash"); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("bad namespace: %v", err)
	}
}

func TestOversizeRecordRejectedAndNothingWritten(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	c := &metadata.Cursor{Topic: "public/default/big", Subscription: "s", AckedRanges: make([]byte, metadata.MaxRecordBytes)}
	err := s.PutCursor(ctx, c)
	if !errors.Is(err, metadata.ErrRecordTooLarge) || errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("got %v, want ErrRecordTooLarge", err)
	}
	if _, err := s.GetCursor(ctx, c.Topic, "s"); err != metadata.ErrNotFound {
		t.Fatalf("oversize cursor written: %v", err)
	}
}

func TestCursorsListedAndDeleted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const topic = "public/default/cur"
	for _, sub := range []string{"b", "a"} {
		if err := s.PutCursor(ctx, &metadata.Cursor{Topic: topic, Subscription: sub, AckedRanges: []byte{1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutCursor(ctx, &metadata.Cursor{Topic: topic + "x", Subscription: "z"}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ListCursors(ctx, topic)
	if err != nil || len(cs) != 2 || cs[0].Subscription != "a" || string(cs[1].AckedRanges) != "\x01\x02" || cs[0].Version == 0 {
		t.Fatalf("list: %+v %v", cs, err)
	}
	if err := s.DeleteCursor(ctx, topic, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCursor(ctx, topic, "a"); err != metadata.ErrNotFound {
		t.Fatalf("deleted cursor: %v", err)
	}
	if err := s.DeleteCursor(ctx, topic, "a"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// TestListNamespacesHasThoseWithAPolicyOrATopic: a namespace is listed once
// when it has a stored policy, a topic, or both; a tenant filter keeps only
// its own; a bad tenant name is a typed error.
func TestListNamespacesHasThoseWithAPolicyOrATopic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	if err := s.SetNamespacePolicy(ctx, "acme/billing", metadata.DefaultNamespacePolicy()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNamespacePolicy(ctx, "acme/orders", metadata.DefaultNamespacePolicy()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"acme/orders/created", "acme/orders/paid", "public/default/t"} {
		if err := s.CreateTopic(ctx, &metadata.Topic{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListNamespaces(ctx, "")
	if err != nil || !slices.Equal(all, []string{"acme/billing", "acme/orders", "public/default"}) {
		t.Fatalf("all namespaces: %v %v", all, err)
	}
	acme, err := s.ListNamespaces(ctx, "acme")
	if err != nil || !slices.Equal(acme, []string{"acme/billing", "acme/orders"}) {
		t.Fatalf("acme's namespaces: %v %v", acme, err)
	}
	if none, err := s.ListNamespaces(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("an unknown tenant's namespaces: %v %v", none, err)
	}
	if _, err := s.ListNamespaces(ctx, "a/b"); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("a bad tenant: %v", err)
	}
}

func TestDeleteNamespaceOnlyWhenItHasNoTopic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	pol := metadata.DefaultNamespacePolicy()
	pol.TTLMs = 60_000
	for _, ns := range []string{"acme/orders", "acme/orders-archive"} {
		if err := s.SetNamespacePolicy(ctx, ns, pol); err != nil {
			t.Fatal(err)
		}
	}
	// A topic of a namespace whose name extends this one's does not count.
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: "acme/orders-archive/old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: "acme/orders/created", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamespace(ctx, "acme/orders"); !errors.Is(err, metadata.ErrNamespaceNotEmpty) {
		t.Fatalf("with a topic: %v, want ErrNamespaceNotEmpty", err)
	}
	if p, err := s.GetNamespacePolicy(ctx, "acme/orders"); err != nil || p.TTLMs != 60_000 {
		t.Fatalf("the refused delete changed the policy: %+v %v", p, err)
	}
	if err := s.DeleteTopic(ctx, "acme/orders/created"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamespace(ctx, "acme/orders"); err != nil {
		t.Fatalf("once empty: %v", err)
	}
	if p, err := s.GetNamespacePolicy(ctx, "acme/orders"); err != nil || p.TTLMs != 0 {
		t.Fatalf("after the delete the policy is %+v %v, want the default", p, err)
	}
	if ns, err := s.ListNamespaces(ctx, "acme"); err != nil || !slices.Equal(ns, []string{"acme/orders-archive"}) {
		t.Fatalf("namespaces after the delete: %v %v", ns, err)
	}
	if err := s.DeleteNamespace(ctx, "acme/orders"); !errors.Is(err, metadata.ErrNamespaceNotFound) {
		t.Fatalf("deleted twice: %v, want ErrNamespaceNotFound", err)
	}
	if err := s.DeleteNamespace(ctx, "acme"); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("a bad name: %v", err)
	}
}

func TestTopicPolicyOverridesItsNamespaceAndGoesWithItsTopic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	const name = "acme/orders/created"
	if _, err := s.GetTopicPolicy(ctx, name); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("no policy yet: %v", err)
	}
	day, small := int64(86_400_000), uint64(1024)
	if err := s.SetTopicPolicy(ctx, name, metadata.TopicPolicy{RetentionMs: &day, MaxMessageBytes: &small}); err != nil {
		t.Fatal(err)
	}
	tp, err := s.GetTopicPolicy(ctx, name)
	if err != nil || tp.RetentionMs == nil || *tp.RetentionMs != day || tp.TTLMs != nil {
		t.Fatalf("stored policy %+v %v", tp, err)
	}
	ns := metadata.DefaultNamespacePolicy()
	ns.TTLMs = 5000
	if eff := tp.Apply(ns); eff.RetentionMs != day || eff.MaxMessageBytes != small || eff.TTLMs != 5000 {
		t.Fatalf("applied: %+v", eff)
	}
	bad := int64(-2)
	if err := s.SetTopicPolicy(ctx, name, metadata.TopicPolicy{RetentionMs: &bad}); !errors.Is(err, metadata.ErrInvalidPolicy) {
		t.Fatalf("retention -2: %v", err)
	}
	if err := s.SetTopicPolicy(ctx, "acme/orders/created-partition-1", tp); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a partition's policy: %v", err)
	}
	// It goes with its topic.
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: name}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopicPolicy(ctx, name); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("after the topic's delete: %v", err)
	}
	// And with its namespace, when set before the topic was used.
	if err := s.SetTopicPolicy(ctx, "acme/orders/later", tp); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNamespacePolicy(ctx, "acme/orders", ns); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamespace(ctx, "acme/orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopicPolicy(ctx, "acme/orders/later"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("after the namespace's delete: %v", err)
	}
	// An empty policy deletes it.
	if err := s.SetTopicPolicy(ctx, name, tp); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTopicPolicy(ctx, name, metadata.TopicPolicy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopicPolicy(ctx, name); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("after setting an empty policy: %v", err)
	}
}
