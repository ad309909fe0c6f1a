package metadata

import (
	"context"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/internal/errcode"
)

// Action is what a role may do in a namespace, as in Pulsar's
// grant-permission: produce to its topics, or consume from them.
type Action string

// The actions a namespace grant may hold.
const (
	ActionProduce Action = "produce"
	ActionConsume Action = "consume"
)

// ParseAction answers the Action named s, or an InvalidArgument error.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case ActionProduce, ActionConsume:
		return a, nil
	}
	return "", errcode.New(errcode.InvalidArgument, "unknown action %q: want produce or consume", s)
}

// Grant is what one role may do in a namespace.
type Grant struct {
	Actions []Action `json:"actions"`
}

// Allows reports whether g holds a.
func (g Grant) Allows(a Action) bool { return slices.Contains(g.Actions, a) }

// maxRoleBytes bounds a role name, which is the last element of a key.
const maxRoleBytes = 128

// CheckRole accepts a role name: 1 to 128 bytes of letters, digits and
// ".-_@:", so that it is safe as a key element and in a token's subject.
func CheckRole(role string) error {
	if role == "" || len(role) > maxRoleBytes {
		return errcode.New(errcode.InvalidArgument, "role %q must be 1 to %d bytes", role, maxRoleBytes)
	}
	for _, r := range role {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_@:", r)
		if !ok {
			return errcode.New(errcode.InvalidArgument, "role %q: only letters, digits and .-_@: are allowed", role)
		}
	}
	return nil
}

// GrantPermission gives role the actions in namespace, replacing what it
// held there. The namespace need not exist yet, so that access can be
// granted before the first topic; the grants go with the namespace when it
// is deleted.
func (s *Store) GrantPermission(ctx context.Context, namespace, role string, actions []Action) error {
	if err := checkNamespace(namespace); err != nil {
		return err
	}
	return s.grant(ctx, s.keys.permissions(namespace), role, actions)
}

// GrantTopicPermission gives role the actions on one topic (every
// partition of a partitioned one), replacing what it held there; it adds
// to what the role's namespace grant allows. The topic need not exist
// yet; the grants go with the topic, or its namespace, when deleted.
func (s *Store) GrantTopicPermission(ctx context.Context, topic, role string, actions []Action) error {
	if err := checkPolicyTopic(topic); err != nil {
		return err
	}
	return s.grant(ctx, s.keys.topicPermissions(topic), role, actions)
}

// grant stores role's grant of actions under dir.
func (s *Store) grant(ctx context.Context, dir, role string, actions []Action) error {
	if err := CheckRole(role); err != nil {
		return err
	}
	if len(actions) == 0 {
		return errcode.New(errcode.InvalidArgument, "a grant needs at least one action (produce, consume)")
	}
	var g Grant
	for _, a := range actions {
		if _, err := ParseAction(string(a)); err != nil {
			return err
		}
		if !g.Allows(a) {
			g.Actions = append(g.Actions, a)
		}
	}
	slices.Sort(g.Actions)
	return s.put(ctx, "grant permission", dir+role, g)
}

// RevokePermission takes every action of role in namespace away;
// ErrNotFound when it held none.
func (s *Store) RevokePermission(ctx context.Context, namespace, role string) error {
	if err := checkNamespace(namespace); err != nil {
		return err
	}
	return s.revoke(ctx, s.keys.permissions(namespace), role)
}

// RevokeTopicPermission takes every action of role on topic away (its
// namespace grant stays); ErrNotFound when it held none.
func (s *Store) RevokeTopicPermission(ctx context.Context, topic, role string) error {
	if err := checkPolicyTopic(topic); err != nil {
		return err
	}
	return s.revoke(ctx, s.keys.topicPermissions(topic), role)
}

// revoke deletes role's grant under dir.
func (s *Store) revoke(ctx context.Context, dir, role string) error {
	if err := CheckRole(role); err != nil {
		return err
	}
	resp, err := s.txn(ctx, "revoke permission", nil, []clientv3.Op{clientv3.OpDelete(dir + role)}, nil)
	if err != nil {
		return err
	}
	if resp.Responses[0].GetResponseDeleteRange().GetDeleted() == 0 {
		return ErrNotFound
	}
	return nil
}

// GetPermissions answers the grants of namespace by role (empty when none).
func (s *Store) GetPermissions(ctx context.Context, namespace string) (map[string]Grant, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	return s.grants(ctx, s.keys.permissions(namespace))
}

// GetTopicPermissions answers the grants of one topic by role (empty when
// none; a partition's are its topic's).
func (s *Store) GetTopicPermissions(ctx context.Context, topic string) (map[string]Grant, error) {
	if err := checkPolicyTopic(topic); err != nil {
		return nil, err
	}
	return s.grants(ctx, s.keys.topicPermissions(topic))
}

// grants reads the grants under dir by role.
func (s *Store) grants(ctx context.Context, dir string) (map[string]Grant, error) {
	kvs, err := s.list(ctx, "get permissions", dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Grant, len(kvs))
	for _, kv := range kvs {
		var g Grant
		if err := decode(kv, &g); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(string(kv.Key), dir)] = g
	}
	return out, nil
}
