package adminhttp

import (
	"net/http"
	"sort"
	"strings"

	"github.com/strata-mq/strata/client"
)

// clusterView is GET /cluster.
type clusterView struct {
	Nodes   []client.ClusterNode   `json:"nodes"`
	Bookies []client.ClusterBookie `json:"bookies"`
}

func getCluster(r *http.Request, a *client.Admin) (any, error) {
	nodes, bookies, err := a.Cluster(r.Context())
	if err != nil {
		return nil, err
	}
	return clusterView{Nodes: nonNil(nodes), Bookies: nonNil(bookies)}, nil
}

func getBookies(r *http.Request, a *client.Admin) (any, error) {
	bs, err := a.Bookies(r.Context())
	return nonNil(bs), err
}

func drainBookie(undo bool) handler {
	return func(r *http.Request, a *client.Admin) (any, error) {
		return nil, a.DrainBookie(r.Context(), r.PathValue("bookie"), undo)
	}
}

// getTenants answers the tenants that have a namespace (Strata keeps no
// tenant records beyond their admin roles).
func getTenants(r *http.Request, a *client.Admin) (any, error) {
	nss, err := a.ListNamespaces(r.Context(), "")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := []string{}
	for _, ns := range nss {
		t, _, _ := strings.Cut(ns, "/")
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// tenantView is a tenant's record.
type tenantView struct {
	AdminRoles []string `json:"admin_roles"`
}

func getTenant(r *http.Request, a *client.Admin) (any, error) {
	roles, err := a.TenantAdmins(r.Context(), r.PathValue("tenant"))
	return tenantView{AdminRoles: nonNil(roles)}, err
}

func setTenant(r *http.Request, a *client.Admin) (any, error) {
	var v tenantView
	if err := decodeBody(r, &v); err != nil {
		return nil, err
	}
	return nil, a.SetTenantAdmins(r.Context(), r.PathValue("tenant"), v.AdminRoles...)
}

func getNamespaces(r *http.Request, a *client.Admin) (any, error) {
	nss, err := a.ListNamespaces(r.Context(), r.PathValue("tenant"))
	return nonNil(nss), err
}

func deleteNamespace(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.DeleteNamespace(r.Context(), namespaceName(r))
}

func getNamespacePolicy(r *http.Request, a *client.Admin) (any, error) {
	return a.GetNamespacePolicy(r.Context(), namespaceName(r))
}

// setNamespacePolicy sets the fields the body gives and keeps the others,
// so that {"ttl": 3600000000000} changes the TTL alone. Durations are
// nanoseconds, as GET answers them. Two concurrent updates may lose one.
func setNamespacePolicy(r *http.Request, a *client.Admin) (any, error) {
	ns := namespaceName(r)
	p, err := a.GetNamespacePolicy(r.Context(), ns)
	if err != nil {
		return nil, err
	}
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	return nil, a.SetNamespacePolicy(r.Context(), ns, p)
}

func getNamespacePermissions(r *http.Request, a *client.Admin) (any, error) {
	return a.Permissions(r.Context(), namespaceName(r))
}

func grantNamespacePermission(r *http.Request, a *client.Admin) (any, error) {
	actions, err := decodeActions(r)
	if err != nil {
		return nil, err
	}
	return nil, a.GrantPermission(r.Context(), namespaceName(r), r.PathValue("role"), actions...)
}

func revokeNamespacePermission(r *http.Request, a *client.Admin) (any, error) {
	return nil, a.RevokePermission(r.Context(), namespaceName(r), r.PathValue("role"))
}

// decodeActions reads a grant's body: a JSON array of actions.
func decodeActions(r *http.Request) ([]client.Action, error) {
	var actions []client.Action
	if err := decodeBody(r, &actions); err != nil {
		return nil, err
	}
	if len(actions) == 0 {
		return nil, invalid("a grant needs at least one action (%q, %q)", client.ActionProduce, client.ActionConsume)
	}
	return actions, nil
}

// nonNil makes an empty answer encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
