package metadata

import (
	"context"
	"errors"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// LedgerState is the life-cycle state of a ledger.
type LedgerState string

// Ledger states. A ledger only moves forward: open → in-recovery → closed, or
// open → closed.
const (
	LedgerOpen       LedgerState = "open"
	LedgerInRecovery LedgerState = "in-recovery"
	LedgerClosed     LedgerState = "closed"
)

// Fragment is a run of a ledger's entries written to one ensemble. Entry e of
// the fragment goes to the Qw bookies Bookies[(e+i) % E] for i in [0, Qw).
type Fragment struct {
	FirstEntry ids.EntryID `json:"first_entry"`
	// Bookie ids (their advertised gRPC addresses), E of them.
	Bookies []string `json:"bookies"`
}

// Ledger is a ledger's metadata as kept in etcd.
type Ledger struct {
	ID          ids.LedgerID `json:"id"`
	Ensemble    int          `json:"ensemble"`
	WriteQuorum int          `json:"write_quorum"`
	AckQuorum   int          `json:"ack_quorum"`
	State       LedgerState  `json:"state"`
	// Fragments in entry order; the last one is being written while open.
	Fragments []Fragment `json:"fragments"`
	// LastEntry is set when the ledger is closed (NoEntry when empty).
	LastEntry ids.EntryID `json:"last_entry"`
	// Bytes is the payload size of the entries, set when closed.
	Bytes uint64 `json:"bytes"`
	// The topic the ledger belongs to, for operators; bookies never see it.
	Topic string `json:"topic,omitempty"`
	// Publish-time range of the messages (unix nanoseconds), set when closed.
	FirstPublishTime int64 `json:"first_publish_time,omitempty"`
	LastPublishTime  int64 `json:"last_publish_time,omitempty"`
	CreatedAt        int64 `json:"created_at"`
	// Offload is set once tiering starts moving the ledger to object storage.
	Offload *Offload `json:"offload,omitempty"`
	// Properties are free-form annotations of the layer that owns the ledger.
	Properties map[string]string `json:"properties,omitempty"`
	// Deleting is set before the ledger is deleted from its bookies, so
	// that a deletion a bookie being down left half done is not forgotten
	// once no managed ledger names the ledger: the auditor deletes marked
	// ledgers again (ledger.Client.Delete).
	Deleting bool `json:"deleting,omitempty"`

	// Version is the etcd mod revision the record was read at; updates are a
	// compare-and-swap on it. 0 for a record not yet created.
	Version int64 `json:"-"`
}

// FragmentFor returns the fragment that holds entry e.
func (l *Ledger) FragmentFor(e ids.EntryID) *Fragment {
	for i := len(l.Fragments) - 1; i >= 0; i-- {
		if l.Fragments[i].FirstEntry <= e {
			return &l.Fragments[i]
		}
	}
	return nil
}

// OffloadState is where a ledger is in its move to object storage.
type OffloadState string

// Offload states, in order.
const (
	OffloadStarted  OffloadState = "started"  // objects may be partly written
	OffloadComplete OffloadState = "complete" // segments written and verified
	OffloadDeleted  OffloadState = "deleted"  // removed from the bookies
)

// Offload records a ledger's segments in the object store.
type Offload struct {
	State OffloadState `json:"state"`
	// Segment objects in entry order.
	Segments    []Segment `json:"segments"`
	CompletedAt int64     `json:"completed_at,omitempty"`
}

// Segment is one object of an offloaded ledger and its record-batch index.
type Segment struct {
	Key        string       `json:"key"`
	Bytes      int64        `json:"bytes"`
	FirstEntry ids.EntryID  `json:"first_entry"`
	LastEntry  ids.EntryID  `json:"last_entry"`
	Batches    []BatchIndex `json:"batches"`
}

// BatchIndex locates one Arrow record batch inside a segment object.
type BatchIndex struct {
	FirstEntry       ids.EntryID `json:"first_entry"`
	LastEntry        ids.EntryID `json:"last_entry"`
	FirstPublishTime int64       `json:"first_publish_time"`
	LastPublishTime  int64       `json:"last_publish_time"`
	Offset           int64       `json:"offset"`
	Length           int64       `json:"length"`
	Rows             int64       `json:"rows"`
	CRC32C           uint32      `json:"crc32c"`
}

// ErrBadVersion is returned by a compare-and-swap that lost to a concurrent
// update: re-read and decide again.
var ErrBadVersion = errcode.New(errcode.BadVersion, "metadata: version changed")

// ErrNotFound is returned for a key that does not exist.
var ErrNotFound = errors.New("metadata: not found")

// LedgerStore is the part of the metadata store that the ledger writer,
// reader and recovery need. The etcd Store implements it; simulations use an
// in-memory twin.
type LedgerStore interface {
	// NewLedgerID allocates a cluster-unique ledger id (ids come from ranges
	// reserved in etcd, so this rarely writes).
	NewLedgerID(ctx context.Context) (ids.LedgerID, error)
	// CreateLedger stores l, which must not exist yet, and sets l.Version.
	CreateLedger(ctx context.Context, l *Ledger) error
	// GetLedger reads a ledger's metadata with its Version. ErrNotFound if absent.
	GetLedger(ctx context.Context, id ids.LedgerID) (*Ledger, error)
	// UpdateLedger writes l if the stored version still equals l.Version
	// (ErrBadVersion otherwise) and sets l.Version to the new one.
	UpdateLedger(ctx context.Context, l *Ledger) error
	// DeleteLedger removes a ledger's metadata.
	DeleteLedger(ctx context.Context, id ids.LedgerID) error
}
