package serving

import (
	"context"
	"errors"
	"slices"

	"github.com/strata-mq/strata/internal/errcode"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
)

// permissionScope answers the namespace or the topic (exactly one) a
// permission call names; topic is "" for a namespace's.
func permissionScope(namespace, topicName string) (ns, topic string, err error) {
	switch {
	case (namespace == "") == (topicName == ""):
		return "", "", errcode.New(errcode.InvalidArgument, "name a namespace or a topic, not both or neither")
	case topicName != "":
		n, err := topicname.Parse(topicName)
		if err != nil {
			return "", "", err
		}
		if i, parent := n.PartitionIndex(); i >= 0 {
			return "", "", errcode.New(errcode.InvalidArgument, "%s is a partition; grant on %s", n, parent)
		}
		return n.NamespaceName(), n.String(), nil
	}
	_, _, err = topicname.ParseNamespace(namespace)
	return namespace, "", err
}

// GrantPermission gives a role actions in a namespace, or on one topic
// (auth.go says how they are checked). Any node answers: it is metadata
// only; this node checks the change at once, the others within their
// AuthConfig.GrantCacheTTL.
func (n *Node) GrantPermission(ctx context.Context, req *servingpb.GrantPermissionRequest) (*servingpb.GrantPermissionResponse, error) {
	ns, topic, err := permissionScope(req.GetNamespace(), req.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := metadata.CheckRole(req.GetRole()); err != nil {
		return nil, err
	}
	if len(req.GetActions()) == 0 {
		return nil, errcode.New(errcode.InvalidArgument, "a grant needs at least one action (produce, consume)")
	}
	actions := make([]metadata.Action, 0, len(req.GetActions()))
	for _, s := range req.GetActions() {
		a, err := metadata.ParseAction(s)
		if err != nil {
			return nil, err
		}
		actions = append(actions, a)
	}
	if topic != "" {
		err = n.meta.GrantTopicPermission(ctx, topic, req.GetRole(), actions)
	} else {
		err = n.meta.GrantPermission(ctx, ns, req.GetRole(), actions)
	}
	if err != nil {
		return nil, unavailable("granting permission", err)
	}
	n.forgetAccess(grantsKey(ns, topic))
	n.log.Info("permission granted", "namespace", ns, "topic", topic, "role", req.GetRole(), "actions", actions, "by", RoleOf(ctx))
	return &servingpb.GrantPermissionResponse{}, nil
}

// RevokePermission takes every action of a role in a namespace, or on one
// topic, away.
func (n *Node) RevokePermission(ctx context.Context, req *servingpb.RevokePermissionRequest) (*servingpb.RevokePermissionResponse, error) {
	ns, topic, err := permissionScope(req.GetNamespace(), req.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := metadata.CheckRole(req.GetRole()); err != nil {
		return nil, err
	}
	where := ns
	if topic != "" {
		where = topic
		err = n.meta.RevokeTopicPermission(ctx, topic, req.GetRole())
	} else {
		err = n.meta.RevokePermission(ctx, ns, req.GetRole())
	}
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		return nil, errcode.New(errcode.InvalidArgument, "role %q holds no permission on %s", req.GetRole(), where)
	case err != nil:
		return nil, unavailable("revoking permission", err)
	}
	n.forgetAccess(grantsKey(ns, topic))
	n.log.Info("permission revoked", "on", where, "role", req.GetRole(), "by", RoleOf(ctx))
	return &servingpb.RevokePermissionResponse{}, nil
}

// GetPermissions answers a namespace's, or one topic's, grants by role.
func (n *Node) GetPermissions(ctx context.Context, req *servingpb.GetPermissionsRequest) (*servingpb.GetPermissionsResponse, error) {
	ns, topic, err := permissionScope(req.GetNamespace(), req.GetTopic())
	if err != nil {
		return nil, err
	}
	var grants map[string]metadata.Grant
	if topic != "" {
		grants, err = n.meta.GetTopicPermissions(ctx, topic)
	} else {
		grants, err = n.meta.GetPermissions(ctx, ns)
	}
	if err != nil {
		return nil, unavailable("reading permissions", err)
	}
	out := &servingpb.GetPermissionsResponse{Roles: make(map[string]*servingpb.RoleActions, len(grants))}
	for role, g := range grants {
		ra := &servingpb.RoleActions{}
		for _, a := range g.Actions {
			ra.Actions = append(ra.Actions, string(a))
		}
		slices.Sort(ra.Actions)
		out.Roles[role] = ra
	}
	return out, nil
}

// SetTenant replaces a tenant's admin roles (none removes them).
func (n *Node) SetTenant(ctx context.Context, req *servingpb.SetTenantRequest) (*servingpb.SetTenantResponse, error) {
	if err := topicname.CheckTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	for _, r := range req.GetAdminRoles() {
		if err := metadata.CheckRole(r); err != nil {
			return nil, err
		}
	}
	if err := n.meta.SetTenant(ctx, req.GetTenant(), metadata.Tenant{AdminRoles: req.GetAdminRoles()}); err != nil {
		return nil, unavailable("setting the tenant", err)
	}
	n.forgetAccess(tenantAccessKey(req.GetTenant()))
	n.log.Info("tenant admins set", "tenant", req.GetTenant(), "admins", req.GetAdminRoles(), "by", RoleOf(ctx))
	return &servingpb.SetTenantResponse{}, nil
}

// GetTenant answers a tenant's admin roles (none when it has no record).
func (n *Node) GetTenant(ctx context.Context, req *servingpb.GetTenantRequest) (*servingpb.GetTenantResponse, error) {
	if err := topicname.CheckTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	t, err := n.meta.GetTenant(ctx, req.GetTenant())
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return nil, unavailable("reading the tenant", err)
	}
	return &servingpb.GetTenantResponse{AdminRoles: t.AdminRoles}, nil
}

// grantsKey is the access cache's key of a namespace's grants, or of
// topic's when it is set.
func grantsKey(ns, topic string) string {
	if topic != "" {
		return topicGrantsKey(topic)
	}
	return nsGrantsKey(ns)
}

// forgetAccess makes this node's next authorization check read key afresh.
func (n *Node) forgetAccess(key string) {
	if n.access != nil {
		n.access.forget(key)
	}
}
