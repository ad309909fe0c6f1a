package serving

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// New builds a node over the etcd metadata store and the bookies' quorum
// ledger client. The caller owns store and ledgers and closes them after
// the node.
func New(cfg Config, store *metadata.Store, ledgers *ledger.Client, log *slog.Logger, reg prometheus.Registerer) (*Node, error) {
	return NewNode(cfg, StoreMeta(store), LedgerClient(ledgers), log, reg)
}

// StoreMeta adapts the etcd store to Meta.
func StoreMeta(s *metadata.Store) Meta { return storeMeta{s} }

type storeMeta struct{ *metadata.Store }

type storeSession struct{ *metadata.Session }

func (s storeSession) Close() { _ = s.Session.Close() }

func (m storeMeta) NewSession(ctx context.Context, ttl time.Duration) (Session, error) {
	s, err := m.Store.NewSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	return storeSession{s}, nil
}

func sess(s Session) *metadata.Session {
	if ss, ok := s.(storeSession); ok {
		return ss.Session
	}
	return nil
}

func (m storeMeta) RegisterNode(ctx context.Context, s Session, n metadata.NodeInfo) error {
	return m.Store.RegisterNode(ctx, sess(s), n)
}

func (m storeMeta) AcquireOwnership(ctx context.Context, s Session, o metadata.Ownership) (metadata.Ownership, bool, error) {
	return m.Store.AcquireOwnership(ctx, sess(s), o)
}

func (m storeMeta) GetOwnership(ctx context.Context, topic string) (metadata.Ownership, error) {
	o, err := m.Store.GetOwnership(ctx, topic)
	if err != nil {
		return metadata.Ownership{}, err
	}
	return *o, nil
}

func (m storeMeta) ListTopics(ctx context.Context, namespace string) ([]metadata.Topic, error) {
	ts, err := m.Store.ListTopics(ctx, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]metadata.Topic, len(ts))
	for i, t := range ts {
		out[i] = *t
	}
	return out, nil
}

func (m storeMeta) ListCursors(ctx context.Context, topic string) ([]metadata.Cursor, error) {
	cs, err := m.Store.ListCursors(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make([]metadata.Cursor, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	return out, nil
}

// LedgerClient adapts the bookies' quorum ledger client to Ledgers.
func LedgerClient(c *ledger.Client) Ledgers { return ledgerClient{c} }

type ledgerClient struct{ c *ledger.Client }

type ledgerWriter struct{ *ledger.Writer }

func (w ledgerWriter) Close(ctx context.Context, annotate func(*metadata.Ledger)) error {
	_, err := w.Writer.Close(ctx, annotate)
	return err
}

func (l ledgerClient) Create(ctx context.Context, o CreateOptions) (Writer, error) {
	w, err := l.c.Create(ctx, ledger.CreateOptions{Ensemble: o.Ensemble, WriteQuorum: o.WriteQuorum, AckQuorum: o.AckQuorum, Topic: o.Topic, After: o.After})
	if err != nil {
		return nil, err
	}
	return ledgerWriter{w}, nil
}

func (l ledgerClient) Recover(ctx context.Context, id ids.LedgerID, annotate func(*metadata.Ledger)) (*metadata.Ledger, error) {
	return l.c.Recover(ctx, id, annotate)
}

func (l ledgerClient) Read(ctx context.Context, rec *metadata.Ledger, first, last ids.EntryID) ([]Entry, error) {
	es, err := l.c.Read(ctx, rec, first, last)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry{ID: e.ID, Payload: e.Payload}
	}
	return out, nil
}

func (l ledgerClient) Delete(ctx context.Context, rec *metadata.Ledger) error {
	return l.c.Delete(ctx, rec)
}
