// Package servingtest holds in-memory twins of the serving tier's
// dependencies (metadata store, quorum ledger client) for unit tests of
// package serving. The real etcd store and bookies are tested end to end in
// serving's integration tests.
package servingtest

import (
	"context"
	"github.com/strata-mq/strata/internal/errcode"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

// Session is an in-memory lease; Expire ends it as a lost lease would.
type Session struct {
	m    *Meta
	id   int64
	done chan struct{}
	once sync.Once
}

// Done closes when the session expires or is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close revokes the session: its keys vanish.
func (s *Session) Close() { s.Expire() }

// Expire ends the session as if its lease timed out.
func (s *Session) Expire() {
	s.once.Do(func() {
		s.m.expire(s.id)
		close(s.done)
	})
}

// Meta is an in-memory serving.Meta. Every record is versioned like etcd.
type Meta struct {
	mu            sync.Mutex
	rev           int64
	nextSess      int64
	nextLed       ids.LedgerID
	sessions      map[int64]*Session
	nodes         map[string]nodeRec
	topics        map[string]metadata.Topic
	owners        map[string]ownerRec
	mls           map[string]metadata.ManagedLedger
	cursors       map[string]metadata.Cursor
	policies      map[string]metadata.NamespacePolicy
	topicPolicies map[string]metadata.TopicPolicy
	grants        map[string]map[string]metadata.Grant // namespace → role → grant
	tenants       map[string]metadata.Tenant
	ledgers       map[ids.LedgerID]metadata.Ledger
	schemas       map[string][]metadata.SchemaVersion
}

type nodeRec struct {
	info metadata.NodeInfo
	sess int64
}

type ownerRec struct {
	o    metadata.Ownership
	sess int64
}

// NewMeta returns an empty store.
func NewMeta() *Meta {
	return &Meta{nextLed: 1, sessions: map[int64]*Session{}, nodes: map[string]nodeRec{}, topics: map[string]metadata.Topic{},
		owners: map[string]ownerRec{}, mls: map[string]metadata.ManagedLedger{}, cursors: map[string]metadata.Cursor{},
		policies: map[string]metadata.NamespacePolicy{}, topicPolicies: map[string]metadata.TopicPolicy{}, grants: map[string]map[string]metadata.Grant{}, tenants: map[string]metadata.Tenant{}, ledgers: map[ids.LedgerID]metadata.Ledger{},
		schemas: map[string][]metadata.SchemaVersion{}}
}

var _ serving.Meta = (*Meta)(nil)

func (m *Meta) bump() int64 { m.rev++; return m.rev }

func (m *Meta) expire(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, id)
	for k, n := range m.nodes {
		if n.sess == id {
			delete(m.nodes, k)
		}
	}
	for k, o := range m.owners {
		if o.sess == id {
			delete(m.owners, k)
		}
	}
}

// Sessions returns the live sessions, oldest first.
func (m *Meta) Sessions() []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Session
	for _, s := range m.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (m *Meta) NewSession(ctx context.Context, ttl time.Duration) (serving.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextSess++
	s := &Session{m: m, id: m.nextSess, done: make(chan struct{})}
	m.sessions[s.id] = s
	return s, nil
}

func (m *Meta) RegisterNode(ctx context.Context, s serving.Session, n metadata.NodeInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.ID] = nodeRec{info: n, sess: s.(*Session).id}
	return nil
}

func (m *Meta) DeregisterNode(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, id)
	return nil
}

func (m *Meta) ListNodes(ctx context.Context) ([]metadata.NodeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []metadata.NodeInfo
	for _, n := range m.nodes {
		out = append(out, n.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ListBookies answers no bookie: the in-memory ledgers need none.
func (m *Meta) ListBookies(ctx context.Context) ([]metadata.BookieInfo, error) { return nil, nil }

// CountOwnedTopics answers how many topics each node owns.
func (m *Meta) CountOwnedTopics(ctx context.Context) (map[string]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, o := range m.owners {
		out[o.o.NodeID]++
	}
	return out, nil
}

func (m *Meta) CreateTopic(ctx context.Context, t *metadata.Topic) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Like the etcd store: partition records come only with their topic,
	// all in one step.
	if t.PartitionOf != "" {
		return errcode.New(errcode.InvalidArgument, "servingtest: partition records are created with their topic")
	}
	parts := []metadata.Topic{*t}
	for i := 0; i < t.Partitions; i++ {
		parts = append(parts, metadata.Topic{Name: metadata.PartitionName(t.Name, i), PartitionOf: t.Name, CreatedAt: t.CreatedAt})
	}
	for _, p := range parts {
		if _, ok := m.topics[p.Name]; ok {
			return metadata.ErrTopicExists
		}
	}
	t.Version = m.bump()
	for _, p := range parts {
		p.Version = t.Version
		m.topics[p.Name] = p
	}
	return nil
}

// AddPartitions is metadata.Store.AddPartitions, in one step under mu.
func (m *Meta) AddPartitions(ctx context.Context, name string, n int, subs []metadata.Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	switch {
	case !ok:
		return metadata.ErrTopicNotFound
	case t.PartitionOf != "" || t.Partitions == 0 || n <= t.Partitions || n > metadata.MaxPartitions:
		return errcode.New(errcode.InvalidArgument, "servingtest: cannot take %s from %d to %d partitions", name, t.Partitions, n)
	}
	for i := t.Partitions; i < n; i++ {
		p := metadata.PartitionName(name, i)
		if _, ok := m.topics[p]; ok {
			return errcode.New(errcode.TopicExists, "servingtest: partition %s exists already", p)
		}
		for _, s := range subs {
			if _, ok := m.cursors[ckey(p, s.Subscription)]; ok {
				return errcode.New(errcode.TopicExists, "servingtest: a cursor of %s exists already", p)
			}
		}
	}
	v := m.bump()
	for i := t.Partitions; i < n; i++ {
		p := metadata.PartitionName(name, i)
		m.topics[p] = metadata.Topic{Name: p, PartitionOf: name, Version: v}
		for _, s := range subs {
			m.cursors[ckey(p, s.Subscription)] = metadata.Cursor{Topic: p, Subscription: s.Subscription, Type: s.Type,
				MarkDelete: ids.Position{Entry: ids.NoEntry}, Version: v}
		}
	}
	t.Partitions, t.Version = n, v
	m.topics[name] = t
	return nil
}

func (m *Meta) GetTopic(ctx context.Context, name string) (*metadata.Topic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.topics[name]
	if !ok {
		return nil, metadata.ErrTopicNotFound
	}
	return &t, nil
}

func (m *Meta) ListTopics(ctx context.Context, namespace string) ([]metadata.Topic, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []metadata.Topic
	for name, t := range m.topics {
		if namespace == "" || strings.HasPrefix(name, namespace+"/") {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListNamespaces answers the namespaces with a policy or a topic.
func (m *Meta) ListNamespaces(ctx context.Context, tenant string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	add := func(name string) {
		parts := strings.SplitN(name, "/", 3)
		if len(parts) >= 2 && (tenant == "" || parts[0] == tenant) {
			seen[parts[0]+"/"+parts[1]] = true
		}
	}
	for ns := range m.policies {
		add(ns)
	}
	for name := range m.topics {
		add(name)
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out, nil
}

func (m *Meta) DeleteTopic(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.topics[name]; !ok {
		return metadata.ErrTopicNotFound
	}
	delete(m.topics, name)
	delete(m.mls, name)
	delete(m.schemas, name)
	for k, c := range m.cursors {
		if c.Topic == name {
			delete(m.cursors, k)
		}
	}
	return nil
}

func (m *Meta) AcquireOwnership(ctx context.Context, s serving.Session, o metadata.Ownership) (metadata.Ownership, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ss := s.(*Session)
	if cur, ok := m.owners[o.Topic]; ok {
		return cur.o, cur.sess == ss.id, nil // like etcd: the same lease re-acquires
	}
	if _, live := m.sessions[ss.id]; !live {
		return metadata.Ownership{}, false, context.Canceled
	}
	o.Version = m.bump()
	m.owners[o.Topic] = ownerRec{o: o, sess: ss.id}
	return o, true, nil
}

func (m *Meta) GetOwnership(ctx context.Context, topic string) (metadata.Ownership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.owners[topic]
	if !ok {
		return metadata.Ownership{}, metadata.ErrNotFound
	}
	return o.o, nil
}

func (m *Meta) ReleaseOwnership(ctx context.Context, o metadata.Ownership) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.owners[o.Topic]
	if !ok {
		return nil
	}
	if cur.o.Version != o.Version {
		return metadata.ErrBadVersion
	}
	delete(m.owners, o.Topic)
	return nil
}

func (m *Meta) GetManagedLedger(ctx context.Context, topic string) (*metadata.ManagedLedger, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ml, ok := m.mls[topic]
	if !ok {
		return nil, metadata.ErrNotFound
	}
	c := ml
	c.Ledgers = append([]metadata.LedgerInfo(nil), ml.Ledgers...)
	return &c, nil
}

func (m *Meta) PutManagedLedger(ctx context.Context, ml *metadata.ManagedLedger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mls[ml.Topic].Version != ml.Version {
		return metadata.ErrBadVersion
	}
	ml.Version = m.bump()
	c := *ml
	c.Ledgers = append([]metadata.LedgerInfo(nil), ml.Ledgers...)
	m.mls[ml.Topic] = c
	return nil
}

func ckey(topic, sub string) string { return topic + "\x00" + sub }

func (m *Meta) GetCursor(ctx context.Context, topic, sub string) (*metadata.Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cursors[ckey(topic, sub)]
	if !ok {
		return nil, metadata.ErrNotFound
	}
	return &c, nil
}

func (m *Meta) PutCursor(ctx context.Context, c *metadata.Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cursors[ckey(c.Topic, c.Subscription)].Version != c.Version {
		return metadata.ErrBadVersion
	}
	c.Version = m.bump()
	m.cursors[ckey(c.Topic, c.Subscription)] = *c
	return nil
}

func (m *Meta) ListCursors(ctx context.Context, topic string) ([]metadata.Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []metadata.Cursor
	for _, c := range m.cursors {
		if c.Topic == topic {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *Meta) DeleteCursor(ctx context.Context, topic, sub string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cursors, ckey(topic, sub))
	return nil
}

func (m *Meta) GetNamespacePolicy(ctx context.Context, ns string) (metadata.NamespacePolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.policies[ns]
	if !ok {
		return p, metadata.ErrNotFound
	}
	return p, nil
}

// GetTopicPolicy answers topic's policy, metadata.ErrNotFound when none.
func (m *Meta) GetTopicPolicy(ctx context.Context, topic string) (metadata.TopicPolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.topicPolicies[topic]
	if !ok {
		return p, metadata.ErrNotFound
	}
	return p, nil
}

// SetTopicPolicy stores topic's policy (an empty one deletes it).
func (m *Meta) SetTopicPolicy(ctx context.Context, topic string, p metadata.TopicPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.Empty() {
		delete(m.topicPolicies, topic)
		return nil
	}
	p.Version = m.bump()
	m.topicPolicies[topic] = p
	return nil
}

// DeleteTopicPolicy deletes topic's policy.
func (m *Meta) DeleteTopicPolicy(ctx context.Context, topic string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.topicPolicies, topic)
	return nil
}

// DeleteNamespace deletes ns's policy unless it has a topic.
func (m *Meta) DeleteNamespace(ctx context.Context, ns string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.topics {
		if strings.HasPrefix(name, ns+"/") {
			return metadata.ErrNamespaceNotEmpty
		}
	}
	if _, ok := m.policies[ns]; !ok {
		return metadata.ErrNamespaceNotFound
	}
	delete(m.policies, ns)
	delete(m.grants, ns)
	return nil
}

// GrantPermission gives role the actions in ns, replacing its grant.
func (m *Meta) GrantPermission(ctx context.Context, ns, role string, actions []metadata.Action) error {
	if err := metadata.CheckRole(role); err != nil {
		return err
	}
	for _, a := range actions {
		if _, err := metadata.ParseAction(string(a)); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grants[ns] == nil {
		m.grants[ns] = map[string]metadata.Grant{}
	}
	m.grants[ns][role] = metadata.Grant{Actions: slices.Clone(actions)}
	return nil
}

// RevokePermission deletes role's grant in ns; metadata.ErrNotFound when
// it had none.
func (m *Meta) RevokePermission(ctx context.Context, ns, role string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.grants[ns][role]; !ok {
		return metadata.ErrNotFound
	}
	delete(m.grants[ns], role)
	return nil
}

// GrantTopicPermission gives role the actions on topic (kept apart from
// the namespaces' grants under a "topic:" prefix).
func (m *Meta) GrantTopicPermission(ctx context.Context, topic, role string, actions []metadata.Action) error {
	return m.GrantPermission(ctx, "topic:"+topic, role, actions)
}

// RevokeTopicPermission deletes role's grant on topic.
func (m *Meta) RevokeTopicPermission(ctx context.Context, topic, role string) error {
	return m.RevokePermission(ctx, "topic:"+topic, role)
}

// GetTopicPermissions answers topic's grants by role.
func (m *Meta) GetTopicPermissions(ctx context.Context, topic string) (map[string]metadata.Grant, error) {
	return m.GetPermissions(ctx, "topic:"+topic)
}

// GetTenant answers tenant's record, metadata.ErrNotFound when none.
func (m *Meta) GetTenant(ctx context.Context, tenant string) (metadata.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tenants[tenant]
	if !ok {
		return t, metadata.ErrNotFound
	}
	return t, nil
}

// SetTenant stores tenant's record (no admins deletes it).
func (m *Meta) SetTenant(ctx context.Context, tenant string, t metadata.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(t.AdminRoles) == 0 {
		delete(m.tenants, tenant)
		return nil
	}
	m.tenants[tenant] = metadata.Tenant{AdminRoles: slices.Clone(t.AdminRoles)}
	return nil
}

// GetPermissions answers ns's grants by role.
func (m *Meta) GetPermissions(ctx context.Context, ns string) (map[string]metadata.Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.grants[ns]), nil
}

func (m *Meta) SetNamespacePolicy(ctx context.Context, ns string, p metadata.NamespacePolicy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.Version = m.bump()
	m.policies[ns] = p
	return nil
}

func (m *Meta) NewLedgerID(ctx context.Context) (ids.LedgerID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.nextLed
	m.nextLed++
	return id, nil
}

func (m *Meta) CreateLedger(ctx context.Context, l *metadata.Ledger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ledgers[l.ID]; ok {
		return metadata.ErrBadVersion
	}
	l.Version = m.bump()
	m.ledgers[l.ID] = *l
	return nil
}

func (m *Meta) GetLedger(ctx context.Context, id ids.LedgerID) (*metadata.Ledger, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.ledgers[id]
	if !ok {
		return nil, metadata.ErrNotFound
	}
	return &l, nil
}

func (m *Meta) UpdateLedger(ctx context.Context, l *metadata.Ledger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ledgers[l.ID].Version != l.Version {
		return metadata.ErrBadVersion
	}
	l.Version = m.bump()
	m.ledgers[l.ID] = *l
	return nil
}

func (m *Meta) DeleteLedger(ctx context.Context, id ids.LedgerID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ledgers, id)
	return nil
}

// ListSchemas answers topic's schema versions, oldest first.
func (m *Meta) ListSchemas(ctx context.Context, topic string) ([]metadata.SchemaVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.schemas[topic]), nil
}

// AddSchema adds version next of topic's schema, ErrBadVersion unless next
// is the number of versions.
func (m *Meta) AddSchema(ctx context.Context, topic string, next uint64, sc metadata.Schema) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if uint64(len(m.schemas[topic])) != next {
		return metadata.ErrBadVersion
	}
	m.schemas[topic] = append(m.schemas[topic], metadata.SchemaVersion{Version: next, Schema: sc})
	return nil
}
