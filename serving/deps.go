package serving

import (
	"context"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Session is one etcd session lease. Every ownership key of a node is attached
// to its session, so losing the session (Done closes) loses every topic.
type Session interface {
	Done() <-chan struct{}
	Close()
}

// Meta is the part of the metadata store that a serving node uses. The etcd
// store implements it through an adapter (see adapt.go); tests of this
// package may use the in-memory twin in servingtest.
type Meta interface {
	metadata.LedgerStore

	NewSession(ctx context.Context, ttl time.Duration) (Session, error)
	RegisterNode(ctx context.Context, s Session, n metadata.NodeInfo) error
	// DeregisterNode removes node id's record while its session lives on.
	DeregisterNode(ctx context.Context, id string) error
	// ListNodes answers the registered nodes in id order.
	ListNodes(ctx context.Context) ([]metadata.NodeInfo, error)
	ListBookies(ctx context.Context) ([]metadata.BookieInfo, error)
	// CountOwnedTopics answers how many topics each node owns, by node id.
	CountOwnedTopics(ctx context.Context) (map[string]int, error)

	CreateTopic(ctx context.Context, t *metadata.Topic) error
	GetTopic(ctx context.Context, name string) (*metadata.Topic, error)
	ListTopics(ctx context.Context, namespace string) ([]metadata.Topic, error)
	// ListNamespaces answers, sorted, the namespaces with a policy or a
	// topic (of tenant, when not empty).
	ListNamespaces(ctx context.Context, tenant string) ([]string, error)
	// DeleteTopic deletes the topic's record, managed ledger and cursors.
	DeleteTopic(ctx context.Context, name string) error
	// AddPartitions raises a partitioned topic's partition count to n and
	// creates subs' cursors at the start of each new partition, in one step
	// (metadata.Store.AddPartitions).
	AddPartitions(ctx context.Context, name string, n int, subs []metadata.Cursor) error

	// AcquireOwnership claims o for s's lease unless someone owns the topic:
	// it answers the current ownership and whether this call acquired it.
	AcquireOwnership(ctx context.Context, s Session, o metadata.Ownership) (metadata.Ownership, bool, error)
	// GetOwnership answers metadata.ErrNotFound when nobody owns the topic.
	GetOwnership(ctx context.Context, topic string) (metadata.Ownership, error)
	// ReleaseOwnership deletes the ownership key iff it is still at
	// o.Version (nil when nobody owns the topic any more).
	ReleaseOwnership(ctx context.Context, o metadata.Ownership) error

	GetManagedLedger(ctx context.Context, topic string) (*metadata.ManagedLedger, error)
	// PutManagedLedger is a compare-and-swap on ml.Version (0: create).
	PutManagedLedger(ctx context.Context, ml *metadata.ManagedLedger) error

	GetCursor(ctx context.Context, topic, sub string) (*metadata.Cursor, error)
	PutCursor(ctx context.Context, c *metadata.Cursor) error
	ListCursors(ctx context.Context, topic string) ([]metadata.Cursor, error)
	DeleteCursor(ctx context.Context, topic, sub string) error

	// GetNamespacePolicy answers metadata.ErrNotFound for a namespace
	// without a stored policy.
	GetNamespacePolicy(ctx context.Context, namespace string) (metadata.NamespacePolicy, error)
	SetNamespacePolicy(ctx context.Context, namespace string, p metadata.NamespacePolicy) error
	// GetTopicPolicy answers metadata.ErrNotFound for a topic without a
	// policy of its own.
	GetTopicPolicy(ctx context.Context, topic string) (metadata.TopicPolicy, error)
	SetTopicPolicy(ctx context.Context, topic string, p metadata.TopicPolicy) error
	DeleteTopicPolicy(ctx context.Context, topic string) error
	// DeleteNamespace deletes a namespace's policy; metadata.ErrNamespaceNotEmpty
	// while it has a topic, metadata.ErrNamespaceNotFound when it has
	// neither.
	DeleteNamespace(ctx context.Context, namespace string) error

	// GrantPermission, RevokePermission and GetPermissions keep what each
	// role may do in a namespace (metadata.Store's); RevokePermission
	// answers metadata.ErrNotFound when the role held nothing there.
	GrantPermission(ctx context.Context, namespace, role string, actions []metadata.Action) error
	RevokePermission(ctx context.Context, namespace, role string) error
	GetPermissions(ctx context.Context, namespace string) (map[string]metadata.Grant, error)
	// The same for one topic's own grants (metadata.Store's).
	GrantTopicPermission(ctx context.Context, topic, role string, actions []metadata.Action) error
	RevokeTopicPermission(ctx context.Context, topic, role string) error
	GetTopicPermissions(ctx context.Context, topic string) (map[string]metadata.Grant, error)
	// GetTenant answers metadata.ErrNotFound for a tenant without a record.
	GetTenant(ctx context.Context, tenant string) (metadata.Tenant, error)
	SetTenant(ctx context.Context, tenant string, t metadata.Tenant) error

	// ListSchemas answers every version of a topic's schema, oldest first;
	// AddSchema adds version next, metadata.ErrBadVersion when another was
	// added meanwhile (metadata.Store's).
	ListSchemas(ctx context.Context, topic string) ([]metadata.SchemaVersion, error)
	AddSchema(ctx context.Context, topic string, next uint64, sc metadata.Schema) error
}

// CreateOptions are the replication settings of a new ledger.
type CreateOptions struct {
	Ensemble    int
	WriteQuorum int
	AckQuorum   int
	Topic       string
	// After is the topic's newest ledger: the new one's id is greater, so
	// message ids grow along the topic across owners.
	After ids.LedgerID
}

// Entry is one entry read back from a ledger.
type Entry struct {
	ID      ids.EntryID
	Payload []byte
}

// Ledgers is the quorum ledger client: the only way the serving tier touches
// bookies. Errors carrying errcode.Fenced mean the ledger was fenced by a
// newer owner.
type Ledgers interface {
	Create(ctx context.Context, o CreateOptions) (Writer, error)
	// Recover fences the ledger, recovers its last entry, closes it in the
	// metadata store (calling annotate on the record before the close is
	// written) and answers the closed record.
	Recover(ctx context.Context, id ids.LedgerID, annotate func(*metadata.Ledger)) (*metadata.Ledger, error)
	// Read answers entries of l from first on, in order, up to last
	// (inclusive); it may answer fewer (a read is bounded in entries and
	// bytes), so callers ask again from the entry after the last answered.
	Read(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]Entry, error)
	Delete(ctx context.Context, l *metadata.Ledger) error
}

// Writer appends to one open ledger.
type Writer interface {
	ID() ids.LedgerID
	// Append sends payload; done is called once per entry, in entry order,
	// from a goroutine of the writer. done must not block.
	Append(payload []byte, done func(ids.EntryID, error))
	LAC() ids.EntryID
	// Close waits for the appends in flight and closes the ledger.
	Close(ctx context.Context, annotate func(*metadata.Ledger)) error
}
