package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/entry"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/tiering"
)

// TierConfig enables the object-store tier on a node: closed ledgers are
// offloaded by namespace policy (or TriggerOffload), catch-up reads of
// offloaded ledgers go to the object store, and seeks by time use the
// offloaded ledgers' time index. Zero fields take the documented defaults.
type TierConfig struct {
	// Store is the object store. Required.
	Store tiering.Store
	// Offloader and Reader configure the tiering library.
	Offloader tiering.OffloaderConfig
	Reader    tiering.ReaderConfig
	// Interval is how often each owned topic checks its offload policy.
	// Default 30 s.
	Interval time.Duration
	// MaxConcurrent bounds the ledgers being offloaded at once across the
	// node. Default 2.
	MaxConcurrent int
	// RetryBackoff is the wait before a topic retries a failed offload; it
	// doubles per consecutive failure up to MaxRetryBackoff. Defaults 1 s
	// and 2 min.
	RetryBackoff, MaxRetryBackoff time.Duration
	// BookieDeleter removes an offloaded ledger's entries from its bookies
	// while keeping its metadata (which names the segments). nil: offloaded
	// ledgers stay on the bookies too (logged once).
	BookieDeleter BookieDeleter
	// GCInterval is how often each topic deletes its segment objects that
	// no ledger record names (left by failed offloads) and that are older
	// than GCMinAge (which must exceed any offload's duration). Defaults
	// 1 h and 1 h.
	GCInterval, GCMinAge time.Duration
	// Metrics of the tiering library; default unregistered ones.
	Metrics *tiering.Metrics
}

func (c TierConfig) withDefaults() TierConfig {
	setDur(&c.Interval, 30*time.Second)
	setInt(&c.MaxConcurrent, 2)
	setDur(&c.RetryBackoff, time.Second)
	setDur(&c.MaxRetryBackoff, 2*time.Minute)
	setDur(&c.GCInterval, time.Hour)
	setDur(&c.GCMinAge, time.Hour)
	if c.Metrics == nil {
		c.Metrics = tiering.NewMetrics(nil)
	}
	return c
}

// Validate checks c after defaults are applied.
func (c TierConfig) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Store == nil:
		return errcode.New(errcode.InvalidArgument, "serving: tier needs an object store")
	case d.Interval < 0 || d.MaxConcurrent < 1 || d.RetryBackoff < 0 || d.MaxRetryBackoff < d.RetryBackoff ||
		d.GCInterval < 0 || d.GCMinAge < 0:
		return errcode.New(errcode.InvalidArgument, "serving: invalid tier config %+v", c)
	}
	if err := d.Offloader.Validate(); err != nil {
		return err
	}
	return d.Reader.Validate()
}

// BookieDeleter removes a ledger's entries from its bookies and nothing
// else: the ledger's metadata stays, since it names the offloaded segments.
// Deleting a ledger the bookies no longer hold is not an error.
type BookieDeleter interface {
	DeleteFromBookies(ctx context.Context, l *metadata.Ledger) error
}

// tier is a node's object-store tier.
type tier struct {
	cfg     TierConfig
	store   tiering.Store
	off     *tiering.Offloader
	reader  *tiering.Reader
	slots   chan struct{} // ledgers being offloaded, node-wide
	deleter BookieDeleter
}

// EnableTiering installs the object-store tier (see TierConfig) and, unless
// one is set already, tiering's TimeFinder. Call before Start.
func (n *Node) EnableTiering(cfg TierConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	oc := cfg.Offloader
	if oc.Logger == nil {
		oc.Logger = n.log
	}
	if oc.Metrics == nil {
		oc.Metrics = cfg.Metrics
	}
	off, err := tiering.NewOffloader(cfg.Store, entrySource{n.ledgers}, oc)
	if err != nil {
		return err
	}
	rc := cfg.Reader
	if rc.Metrics == nil {
		rc.Metrics = cfg.Metrics
	}
	rd, err := tiering.NewReader(cfg.Store, rc)
	if err != nil {
		return err
	}
	n.tier = &tier{cfg: cfg, store: cfg.Store, off: off, reader: rd,
		slots: make(chan struct{}, cfg.MaxConcurrent), deleter: cfg.BookieDeleter}
	if n.times == nil {
		tf := tiering.NewTimeFinder(cfg.Store, n.meta)
		tf.Seeker().WithMetrics(cfg.Metrics)
		n.times = tf
	}
	if cfg.BookieDeleter == nil {
		n.log.Warn("tiering: no bookie deleter; offloaded ledgers are kept on the bookies too")
	}
	n.log.Info("tiering enabled", "interval", cfg.Interval, "max_concurrent", cfg.MaxConcurrent)
	return nil
}

// closeTier stops the reader's read-ahead.
func (n *Node) closeTier() {
	if n.tier != nil {
		n.tier.reader.Close()
	}
}

// entrySource reads a closed ledger's entries from its bookies for the
// offloader: all of them, in as many reads as the ledger client needs.
type entrySource struct{ ledgers Ledgers }

func (s entrySource) ReadEntries(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]tiering.Entry, error) {
	out := make([]tiering.Entry, 0, last-first+1)
	for next := first; next <= last; {
		es, err := s.ledgers.Read(ctx, l, next, last)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, errcode.New(errcode.EntryNotFound, "ledger %d: no entry at %d", l.ID, next)
		}
		for _, e := range es {
			out = append(out, tiering.Entry{ID: e.ID, Payload: e.Payload})
		}
		next = es[len(es)-1].ID + 1
	}
	return out, nil
}

// readable reports whether l has a complete offload to read from.
func readable(l *metadata.Ledger) bool {
	return l.Offload != nil && (l.Offload.State == metadata.OffloadComplete || l.Offload.State == metadata.OffloadDeleted)
}

// readOffloaded reads entries first..last (or a prefix of them) of the
// offloaded ledger l from the object store and rebuilds the batches as
// producers sent them: same ledger, entry and batch index, same bytes.
func (tr *tier) readOffloaded(ctx context.Context, l *metadata.Ledger, first, last ids.EntryID) ([]*cachedEntry, error) {
	ers, err := tr.reader.ReadEntries(ctx, l, first, last)
	if err != nil {
		return nil, err
	}
	out := make([]*cachedEntry, 0, len(ers))
	for _, er := range ers {
		if len(er.Rows) == 0 {
			return nil, fmt.Errorf("%w: ledger %d entry %d has no rows", tiering.ErrCorruption, l.ID, er.Entry)
		}
		b := &entry.Batch{ProducerName: er.Rows[0].Producer, PublishTime: er.Rows[0].PublishTime,
			Messages: make([]entry.Message, len(er.Rows))}
		for i, r := range er.Rows {
			if int(r.BatchIndex) != i {
				return nil, fmt.Errorf("%w: ledger %d entry %d: batch index %d at row %d", tiering.ErrCorruption, l.ID, er.Entry, r.BatchIndex, i)
			}
			b.Messages[i] = entry.Message{SequenceID: r.SequenceID, Key: r.Key, Properties: r.Properties,
				Payload: r.Payload, EventTime: r.EventTime}
		}
		out = append(out, &cachedEntry{pos: ids.Position{Ledger: l.ID, Entry: er.Entry}, batch: b, size: entry.Size(b)})
	}
	return out, nil
}

// NewBookieDeleter returns a BookieDeleter over the bookies that store
// lists, with a ledger client of its own (dialing over TLS with tlsCfg when
// set). It deletes the bookies' copies only (ledger.Client.DeleteCopies):
// an offloaded ledger keeps its metadata, which names its objects. Close
// it after the node.
func NewBookieDeleter(store metadata.LedgerStore, bookies ledger.Bookies, log *slog.Logger, tlsCfg *tls.Config) *LedgerBookieDeleter {
	return &LedgerBookieDeleter{c: ledger.NewClient(ledger.ClientConfig{TLS: tlsCfg}, keepMetadata{store}, bookies, log)}
}

// LedgerBookieDeleter is the BookieDeleter of NewBookieDeleter.
type LedgerBookieDeleter struct{ c *ledger.Client }

// DeleteFromBookies deletes l on every bookie of its ensembles.
func (d *LedgerBookieDeleter) DeleteFromBookies(ctx context.Context, l *metadata.Ledger) error {
	return d.c.DeleteCopies(ctx, l)
}

// Close closes the deleter's connections.
func (d *LedgerBookieDeleter) Close() error { return d.c.Close() }

// keepMetadata is a LedgerStore that never deletes or changes a ledger's
// metadata: the deleter's client must leave an offloaded ledger's record as
// it is, whatever it is asked.
type keepMetadata struct{ metadata.LedgerStore }

func (keepMetadata) DeleteLedger(context.Context, ids.LedgerID) error { return nil }

func (keepMetadata) UpdateLedger(context.Context, *metadata.Ledger) error {
	return errcode.New(errcode.Internal, "the offload deleter does not change ledger metadata")
}

// isCorruption reports whether err says stored bytes failed verification.
func isCorruption(err error) bool {
	return tiering.IsCorruption(err) || errors.Is(err, tiering.ErrCorruption)
}

// damagedObject reports whether a read of an object that offload verified
// failed for the object itself: its bytes damaged, cut short (a range past
// its end) or the object gone. Anything else may pass (an outage).
func damagedObject(err error) bool {
	return isCorruption(err) || tiering.IsNotFound(err) || errors.Is(err, tiering.ErrInvalidRange)
}
