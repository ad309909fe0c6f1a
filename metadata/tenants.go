package metadata

import (
	"context"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/topic"
)

// Tenant is what is kept of a tenant: the roles that administer it (as
// Pulsar's tenant admin roles): with authorization, they may do within the
// tenant what superusers may, and grant permissions there. Tenants are
// otherwise implicit: a tenant exists by its namespaces.
type Tenant struct {
	AdminRoles []string `json:"admin_roles"`

	// Version is the etcd mod revision the record was read at.
	Version int64 `json:"-"`
}

// SetTenant stores tenant's record (an empty list of admins deletes it).
func (s *Store) SetTenant(ctx context.Context, tenant string, t Tenant) error {
	if err := topic.CheckTenant(tenant); err != nil {
		return err
	}
	for _, r := range t.AdminRoles {
		if err := CheckRole(r); err != nil {
			return err
		}
	}
	if len(t.AdminRoles) == 0 {
		_, err := s.txn(ctx, "delete tenant", nil, []clientv3.Op{clientv3.OpDelete(s.keys.tenant(tenant))}, nil)
		return err
	}
	t.AdminRoles = slices.Compact(slices.Sorted(slices.Values(t.AdminRoles)))
	return s.put(ctx, "set tenant", s.keys.tenant(tenant), t)
}

// GetTenant reads tenant's record; ErrNotFound when it has none.
func (s *Store) GetTenant(ctx context.Context, tenant string) (Tenant, error) {
	if err := topic.CheckTenant(tenant); err != nil {
		return Tenant{}, err
	}
	kv, err := s.get(ctx, "get tenant", s.keys.tenant(tenant))
	if err != nil {
		return Tenant{}, err
	}
	if kv == nil {
		return Tenant{}, ErrNotFound
	}
	var t Tenant
	if err := decode(kv, &t); err != nil {
		return Tenant{}, err
	}
	t.Version = kv.ModRevision
	return t, nil
}
