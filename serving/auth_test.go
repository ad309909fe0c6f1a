package serving_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"

	"github.com/strata-mq/strata/internal/errcode"
	meta "github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// startAuthNode serves a node over real gRPC with auth enforced.
func startAuthNode(t *testing.T, c *cluster, auth serving.AuthConfig) servingpb.BrokerClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := serving.NewNode(serving.Config{NodeID: "a", GRPCAddr: lis.Addr().String()}, c.meta, c.ledgers, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	opts, err := n.AuthOptions(auth)
	if err != nil {
		t.Fatal(err)
	}
	return serveNodeWith(t, n, lis, opts).client
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestStaticTokenRolesAreAuthorizedPerCallAndPerStream: with static tokens
// that carry roles and authorization on, every unary call and every
// stream's opening message is checked against the superusers and the
// namespace grants, over real gRPC.
func TestStaticTokenRolesAreAuthorizedPerCallAndPerStream(t *testing.T) {
	c := newCluster(t)
	b := startAuthNode(t, c, serving.AuthConfig{
		Tokens: map[string]string{"root-token": "root", "app-token": "app", "other-token": "other", "ops-token": "acme-ops",
			"one-token": "one-topic"},
		Authorization:  true,
		SuperUserRoles: []string{"root"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, app, other := withToken(ctx, "root-token"), withToken(ctx, "app-token"), withToken(ctx, "other-token")
	const topic = "acme/orders/created"
	codeOf := func(err error) errcode.Code { return errcode.CodeOf(errcode.FromError(err)) }

	if _, err := b.Lookup(ctx, &servingpb.LookupRequest{Topic: topic}); codeOf(err) != errcode.Unauthenticated {
		t.Fatalf("lookup without a token: %v", err)
	}
	if _, err := b.Lookup(withToken(ctx, "nope"), &servingpb.LookupRequest{Topic: topic}); codeOf(err) != errcode.Unauthenticated {
		t.Fatalf("lookup with an unknown token: %v", err)
	}
	if _, err := b.Lookup(app, &servingpb.LookupRequest{Topic: topic}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("lookup without a grant: %v", err)
	}
	if _, err := b.GrantPermission(app, &servingpb.GrantPermissionRequest{Namespace: "acme/orders", Role: "app", Actions: []string{"produce"}}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a role granting itself: %v", err)
	}
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Namespace: "acme/orders", Role: "app", Actions: []string{"publish"}}); codeOf(err) != errcode.InvalidArgument {
		t.Fatalf("an unknown action: %v", err)
	}
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Namespace: "acme/orders", Role: "app", Actions: []string{"produce"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lookup(app, &servingpb.LookupRequest{Topic: topic}); err != nil {
		t.Fatalf("lookup with a produce grant: %v", err)
	}
	if _, err := b.Lookup(other, &servingpb.LookupRequest{Topic: topic}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("another role's lookup: %v", err)
	}

	openProducer := func(ctx context.Context, name string) error {
		s, err := b.Produce(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&servingpb.ProduceRequest{Kind: &servingpb.ProduceRequest_Open{Open: &servingpb.OpenProducer{Topic: topic, ProducerName: name}}}); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	subscribe := func(ctx context.Context) error {
		s, err := b.Consume(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Subscribe{Subscribe: &servingpb.Subscribe{Topic: topic, Subscription: "s"}}}); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	if err := openProducer(app, "p"); err != nil {
		t.Fatalf("a producer with a produce grant: %v", err)
	}
	if err := openProducer(other, "q"); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a producer without a grant: %v", err)
	}
	if err := subscribe(app); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a consumer with only a produce grant: %v", err)
	}
	if _, err := b.CreateSubscription(app, &servingpb.CreateSubscriptionRequest{Topic: topic, Subscription: "s"}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a subscription made with only a produce grant: %v", err)
	}
	if _, err := b.CreateTopic(app, &servingpb.CreateTopicRequest{Topic: "acme/orders/new"}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a topic created by a role that is no superuser: %v", err)
	}
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Namespace: "acme/orders", Role: "other", Actions: []string{"consume"}}); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(other); err != nil {
		t.Fatalf("a consumer with a consume grant: %v", err)
	}
	got, err := b.GetPermissions(root, &servingpb.GetPermissionsRequest{Namespace: "acme/orders"})
	if err != nil || len(got.GetRoles()) != 2 || got.GetRoles()["other"].GetActions()[0] != string(meta.ActionConsume) {
		t.Fatalf("permissions: %v %v", got, err)
	}
	if _, err := b.RevokePermission(root, &servingpb.RevokePermissionRequest{Namespace: "acme/orders", Role: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RevokePermission(root, &servingpb.RevokePermissionRequest{Namespace: "acme/orders", Role: "other"}); codeOf(err) != errcode.InvalidArgument {
		t.Fatalf("revoked twice: %v", err)
	}
	if err := subscribe(other); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a consumer after the revoke: %v", err)
	}

	// A topic's own grant adds to the namespace's, for that topic (every
	// partition of a partitioned one) only.
	one := withToken(ctx, "one-token")
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Topic: topic, Role: "one-topic", Actions: []string{"produce"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Topic: "acme/orders/parted", Role: "one-topic", Actions: []string{"consume"}}); err != nil {
		t.Fatal(err)
	}
	if err := openProducer(one, "one"); err != nil {
		t.Fatalf("a producer with a grant on its topic: %v", err)
	}
	if _, err := b.Lookup(one, &servingpb.LookupRequest{Topic: "acme/orders/other"}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("lookup of a topic not granted: %v", err)
	}
	if _, err := b.GrantPermission(root, &servingpb.GrantPermissionRequest{Topic: "acme/orders/parted-partition-1", Role: "x",
		Actions: []string{"consume"}}); codeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a grant on a partition: %v", err)
	}
	if _, err := b.Lookup(one, &servingpb.LookupRequest{Topic: "acme/orders/parted-partition-1"}); err != nil {
		t.Fatalf("lookup of a partition of a topic granted: %v", err)
	}

	// A tenant's admins may do everything within it, and nothing beyond.
	ops := withToken(ctx, "ops-token")
	if _, err := b.CreateTopic(ops, &servingpb.CreateTopicRequest{Topic: "acme/orders/audit"}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a topic created by a role before it administers the tenant: %v", err)
	}
	if _, err := b.SetTenant(ops, &servingpb.SetTenantRequest{Tenant: "acme", AdminRoles: []string{"acme-ops"}}); codeOf(err) != errcode.Unauthorized {
		t.Fatalf("a role making itself a tenant's admin: %v", err)
	}
	if _, err := b.SetTenant(root, &servingpb.SetTenantRequest{Tenant: "acme", AdminRoles: []string{"acme-ops"}}); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"create a topic": func() error {
			_, err := b.CreateTopic(ops, &servingpb.CreateTopicRequest{Topic: "acme/orders/audit"})
			return err
		}(),
		"grant": func() error {
			_, err := b.GrantPermission(ops, &servingpb.GrantPermissionRequest{Namespace: "acme/billing", Role: "app", Actions: []string{"consume"}})
			return err
		}(),
		"list namespaces": func() error {
			_, err := b.ListNamespaces(ops, &servingpb.ListNamespacesRequest{Tenant: "acme"})
			return err
		}(),
		"read its tenant": func() error { _, err := b.GetTenant(ops, &servingpb.GetTenantRequest{Tenant: "acme"}); return err }(),
		"produce":         openProducer(ops, "ops"),
		"set a ns policy": func() error {
			_, err := b.GetNamespacePolicy(ops, &servingpb.GetNamespacePolicyRequest{Namespace: "acme/orders"})
			return err
		}(),
	} {
		if err != nil {
			t.Errorf("the tenant's admin: %s: %v", what, err)
		}
	}
	for what, err := range map[string]error{
		"create a topic elsewhere": func() error {
			_, err := b.CreateTopic(ops, &servingpb.CreateTopicRequest{Topic: "globex/orders/x"})
			return err
		}(),
		"list every namespace": func() error { _, err := b.ListNamespaces(ops, &servingpb.ListNamespacesRequest{}); return err }(),
		"list the cluster":     func() error { _, err := b.ListCluster(ops, &servingpb.ListClusterRequest{}); return err }(),
		"set its tenant's admins": func() error {
			_, err := b.SetTenant(ops, &servingpb.SetTenantRequest{Tenant: "acme", AdminRoles: []string{"x"}})
			return err
		}(),
		"look up another's topic": func() error { _, err := b.Lookup(ops, &servingpb.LookupRequest{Topic: "globex/orders/x"}); return err }(),
	} {
		if codeOf(err) != errcode.Unauthorized {
			t.Errorf("the tenant's admin: %s: %v, want UNAUTHORIZED", what, err)
		}
	}
}

// TestAuthConfigThatCannotBeEnforcedIsRefused: authorization without any
// way to authenticate, and static tokens without roles under
// authorization, are refused when the node starts rather than letting
// calls through.
func TestAuthConfigThatCannotBeEnforcedIsRefused(t *testing.T) {
	c := newCluster(t)
	n, err := serving.NewNode(serving.Config{NodeID: "a", GRPCAddr: "127.0.0.1:1"}, c.meta, c.ledgers, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]serving.AuthConfig{
		"no authentication":    {Authorization: true, SuperUserRoles: []string{"root"}},
		"a token without role": {Authorization: true, Tokens: map[string]string{"t": ""}},
		"a bad superuser":      {Authorization: true, Tokens: map[string]string{"t": "root"}, SuperUserRoles: []string{"a/b"}},
		"a key of no kind":     {JWTKey: "a string"},
	} {
		if _, err := n.AuthOptions(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
