package client

import (
	"context"

	"github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/serving/servingpb"
)

// Action is what a role may do in a namespace when the nodes check
// authorization (Pulsar's grant-permission actions).
type Action string

// The actions a grant may hold.
const (
	// ActionProduce allows producing to the namespace's topics.
	ActionProduce Action = "produce"
	// ActionConsume allows subscribing to, reading and seeking the
	// namespace's topics, and managing their subscriptions.
	ActionConsume Action = "consume"
)

// GrantPermission gives role the actions in namespace (tenant/namespace),
// replacing what it held there. Superusers and the tenant's admins only; a
// namespace need not have a topic yet. Nodes check grants on each producer and
// consumer open and lookup, so a grant or a revoke applies to the next
// ones, not to those already open (at nodes other than the one that made
// it, within their --authorization-cache-ttl, 1 s by default).
func (a *Admin) GrantPermission(ctx context.Context, namespace, role string, actions ...Action) error {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return err
	}
	return a.grant(ctx, &servingpb.GrantPermissionRequest{Namespace: namespace, Role: role}, actions)
}

// grant sends req with actions.
func (a *Admin) grant(ctx context.Context, req *servingpb.GrantPermissionRequest, actions []Action) error {
	for _, x := range actions {
		req.Actions = append(req.Actions, string(x))
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.GrantPermission(ctx, req)
		return err
	})
}

// RevokePermission takes every action of role in namespace away
// (ErrInvalidArgument when it held none).
func (a *Admin) RevokePermission(ctx context.Context, namespace, role string) error {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.RevokePermission(ctx, &servingpb.RevokePermissionRequest{Namespace: namespace, Role: role})
		return err
	})
}

// Permissions answers namespace's grants: the actions of each role.
func (a *Admin) Permissions(ctx context.Context, namespace string) (map[string][]Action, error) {
	if _, _, err := topic.ParseNamespace(namespace); err != nil {
		return nil, err
	}
	return a.permissions(ctx, &servingpb.GetPermissionsRequest{Namespace: namespace})
}

// GrantTopicPermission gives role the actions on one topic (every
// partition of a partitioned one), replacing what it held there, in
// addition to its namespace grant (Pulsar's topics grant-permission).
// Superusers and the tenant's admins only.
func (a *Admin) GrantTopicPermission(ctx context.Context, topicName, role string, actions ...Action) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	return a.grant(ctx, &servingpb.GrantPermissionRequest{Topic: name, Role: role}, actions)
}

// RevokeTopicPermission takes every action of role on one topic away (its
// namespace grant stays; ErrInvalidArgument when it held none there).
func (a *Admin) RevokeTopicPermission(ctx context.Context, topicName, role string) error {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.RevokePermission(ctx, &servingpb.RevokePermissionRequest{Topic: name, Role: role})
		return err
	})
}

// TopicPermissions answers one topic's own grants (not its namespace's).
func (a *Admin) TopicPermissions(ctx context.Context, topicName string) (map[string][]Action, error) {
	name, err := topic.Canonical(topicName)
	if err != nil {
		return nil, err
	}
	return a.permissions(ctx, &servingpb.GetPermissionsRequest{Topic: name})
}

// permissions reads the grants req names, by role.
func (a *Admin) permissions(ctx context.Context, req *servingpb.GetPermissionsRequest) (map[string][]Action, error) {
	var out map[string][]Action
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		r, err := b.GetPermissions(ctx, req)
		if err != nil {
			return err
		}
		out = make(map[string][]Action, len(r.GetRoles()))
		for role, ra := range r.GetRoles() {
			for _, x := range ra.GetActions() {
				out[role] = append(out[role], Action(x))
			}
		}
		return nil
	})
	return out, err
}

// SetTenantAdmins replaces the admin roles of tenant (none removes them):
// with authorization, they may do within the tenant what superusers may,
// granting permissions included. Superusers only.
func (a *Admin) SetTenantAdmins(ctx context.Context, tenant string, roles ...string) error {
	if err := topic.CheckTenant(tenant); err != nil {
		return err
	}
	return a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		_, err := b.SetTenant(ctx, &servingpb.SetTenantRequest{Tenant: tenant, AdminRoles: roles})
		return err
	})
}

// TenantAdmins answers the admin roles of tenant (none when it has none).
func (a *Admin) TenantAdmins(ctx context.Context, tenant string) ([]string, error) {
	if err := topic.CheckTenant(tenant); err != nil {
		return nil, err
	}
	var roles []string
	err := a.c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		r, err := b.GetTenant(ctx, &servingpb.GetTenantRequest{Tenant: tenant})
		if err != nil {
			return err
		}
		roles = r.GetAdminRoles()
		return nil
	})
	return roles, err
}
