package metadata_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
)

func TestPermissionsAreGrantedRevokedAndGoWithTheirNamespace(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	both := []metadata.Action{metadata.ActionProduce, metadata.ActionConsume, metadata.ActionProduce}
	if err := s.GrantPermission(ctx, "acme/orders", "billing", both); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantPermission(ctx, "acme/orders", "audit", []metadata.Action{metadata.ActionConsume}); err != nil {
		t.Fatal(err)
	}
	// A namespace whose name extends this one's keeps its own grants.
	if err := s.GrantPermission(ctx, "acme/orders-archive", "audit", []metadata.Action{metadata.ActionProduce}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPermissions(ctx, "acme/orders")
	want := map[string]metadata.Grant{
		"billing": {Actions: []metadata.Action{metadata.ActionConsume, metadata.ActionProduce}},
		"audit":   {Actions: []metadata.Action{metadata.ActionConsume}},
	}
	if err != nil || !maps.EqualFunc(got, want, func(a, b metadata.Grant) bool { return slices.Equal(a.Actions, b.Actions) }) {
		t.Fatalf("grants %v %v, want %v", got, err, want)
	}
	if err := s.GrantPermission(ctx, "acme/orders", "billing", []metadata.Action{metadata.ActionConsume}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetPermissions(ctx, "acme/orders"); got["billing"].Allows(metadata.ActionProduce) {
		t.Fatalf("a second grant did not replace the first: %v", got)
	}
	if err := s.RevokePermission(ctx, "acme/orders", "audit"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokePermission(ctx, "acme/orders", "audit"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("revoked twice: %v, want ErrNotFound", err)
	}
	pol := metadata.DefaultNamespacePolicy()
	if err := s.SetNamespacePolicy(ctx, "acme/orders", pol); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteNamespace(ctx, "acme/orders"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetPermissions(ctx, "acme/orders"); err != nil || len(got) != 0 {
		t.Fatalf("grants after the namespace was deleted: %v %v", got, err)
	}
	if got, err := s.GetPermissions(ctx, "acme/orders-archive"); err != nil || !got["audit"].Allows(metadata.ActionProduce) {
		t.Fatalf("the other namespace's grants: %v %v", got, err)
	}
}

func TestPermissionsRefuseBadRolesActionsAndNamespaces(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	produce := []metadata.Action{metadata.ActionProduce}
	for _, c := range []struct {
		ns, role string
		actions  []metadata.Action
		code     errcode.Code
	}{
		{"acme/orders", "", produce, errcode.InvalidArgument},
		{"acme/orders", "a/b", produce, errcode.InvalidArgument},
		{"acme/orders", "two words", produce, errcode.InvalidArgument},
		{"acme/orders", "app", nil, errcode.InvalidArgument},
		{"acme/orders", "app", []metadata.Action{"delete"}, errcode.InvalidArgument},
		{"acme", "app", produce, errcode.InvalidTopicName},
	} {
		if err := s.GrantPermission(ctx, c.ns, c.role, c.actions); errcode.CodeOf(err) != c.code {
			t.Errorf("grant %q to %q in %q: %v, want %v", c.actions, c.role, c.ns, err, c.code)
		}
	}
	if got, err := s.GetPermissions(ctx, "acme/orders"); err != nil || len(got) != 0 {
		t.Fatalf("refused grants left %v %v", got, err)
	}
}

func TestTenantAdminsAreSetReadAndRemoved(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	if _, err := s.GetTenant(ctx, "acme"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("a tenant never set: %v, want ErrNotFound", err)
	}
	if err := s.SetTenant(ctx, "acme", metadata.Tenant{AdminRoles: []string{"ops", "dev", "ops"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTenant(ctx, "acme"); err != nil || !slices.Equal(got.AdminRoles, []string{"dev", "ops"}) {
		t.Fatalf("admins %v %v", got.AdminRoles, err)
	}
	if err := s.SetTenant(ctx, "acme", metadata.Tenant{AdminRoles: []string{"a b"}}); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a bad role: %v", err)
	}
	if err := s.SetTenant(ctx, "a/b", metadata.Tenant{AdminRoles: []string{"ops"}}); errcode.CodeOf(err) != errcode.InvalidTopicName {
		t.Fatalf("a bad tenant: %v", err)
	}
	if err := s.SetTenant(ctx, "acme", metadata.Tenant{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTenant(ctx, "acme"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("after removing the admins: %v, want ErrNotFound", err)
	}
}

func TestTopicPermissionsAreKeptApartAndGoWithTheirTopic(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := metatest.OpenStore(t)
	produce := []metadata.Action{metadata.ActionProduce}
	if err := s.GrantPermission(ctx, "acme/orders", "ns-role", produce); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, &metadata.Topic{Name: "acme/orders/created", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantTopicPermission(ctx, "acme/orders/created", "topic-role", produce); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantTopicPermission(ctx, "acme/orders/created-partition-0", "x", produce); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("a grant on a partition: %v, want InvalidArgument (grant on its topic)", err)
	}
	if ns, err := s.GetPermissions(ctx, "acme/orders"); err != nil || len(ns) != 1 || !ns["ns-role"].Allows(metadata.ActionProduce) {
		t.Fatalf("namespace grants %v %v: a topic's grant must not show there", ns, err)
	}
	if tg, err := s.GetTopicPermissions(ctx, "acme/orders/created"); err != nil || len(tg) != 1 || !tg["topic-role"].Allows(metadata.ActionProduce) {
		t.Fatalf("topic grants %v %v", tg, err)
	}
	if err := s.DeleteTopic(ctx, "acme/orders/created"); err != nil {
		t.Fatal(err)
	}
	if tg, err := s.GetTopicPermissions(ctx, "acme/orders/created"); err != nil || len(tg) != 0 {
		t.Fatalf("topic grants after the topic was deleted: %v %v", tg, err)
	}
	if err := s.GrantTopicPermission(ctx, "acme/orders/later", "topic-role", produce); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTopicPermission(ctx, "acme/orders/later", "topic-role"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTopicPermission(ctx, "acme/orders/later", "topic-role"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("revoked twice: %v", err)
	}
}
