package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/internal/rpcpool"
	"github.com/strata-mq/strata/metadata"
)

// Bookies lists the live bookies (metadata.Store implements it).
type Bookies interface {
	ListBookies(ctx context.Context) ([]metadata.BookieInfo, error)
}

// Client creates, writes, reads, recovers and deletes ledgers. It owns a
// pool of gRPC connections to bookies, keyed by bookie address, and every
// goroutine of its writers; Close stops them all.
type Client struct {
	cfg     ClientConfig
	store   metadata.LedgerStore
	bookies Bookies
	log     *slog.Logger

	mu struct {
		sync.Mutex
		conns   map[string]*grpc.ClientConn
		writers map[*Writer]struct{}
		closed  bool
	}
}

// NewClient returns a Client. cfg's zero fields take their defaults; an
// invalid cfg is reported by the first call (see ClientConfig.Validate).
func NewClient(cfg ClientConfig, store metadata.LedgerStore, bookies Bookies, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg.withDefaults(), store: store, bookies: bookies, log: log}
	c.mu.conns = map[string]*grpc.ClientConn{}
	c.mu.writers = map[*Writer]struct{}{}
	return c
}

// Close stops every writer (their pending appends fail with
// ErrLedgerClosed; their ledgers stay open, to be recovered) and closes the
// connections. It waits for every goroutine of the client.
func (c *Client) Close() error {
	c.mu.Lock()
	c.mu.closed = true
	writers := make([]*Writer, 0, len(c.mu.writers))
	for w := range c.mu.writers {
		writers = append(writers, w)
	}
	c.mu.Unlock()
	for _, w := range writers {
		w.stop()
		<-w.delivered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.mu.conns {
		_ = cc.Close()
		delete(c.mu.conns, addr)
	}
	return nil
}

// bookie returns a client of the bookie at addr, dialing it once.
func (c *Client) bookie(addr string) (bookiepb.BookieClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClientClosed
	}
	if bc, ok := c.cfg.Local[addr]; ok {
		return bc, nil
	}
	if cc, ok := c.mu.conns[addr]; ok {
		return bookiepb.NewBookieClient(cc), nil
	}
	opts := c.cfg.DialOptions
	if len(opts) == 0 {
		creds := insecure.NewCredentials()
		if c.cfg.TLS != nil {
			creds = credentials.NewTLS(c.cfg.TLS)
		}
		opts = []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			rpcpool.DialOption(),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxReadBytes+(1<<20)), grpc.MaxCallSendMsgSize(c.cfg.MaxEntryBytes+(1<<20))),
			// Ping every 10 s (bookies permit it) and drop the connection
			// when a ping goes unanswered for 3 s: a frozen bookie keeps
			// its TCP connections up, so streams to it would wait forever.
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}),
			// gRPC's default reconnect backoff grows to 120 s: a bookie
			// back after a minute or two down stayed unreachable from this
			// node for as long (publishes waited 13-22 s, new ensembles
			// took it and replaced it at once, and deletions and copies to
			// it failed). Bookies are few and close: retry every 2 s at most.
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: bookieBackoff, MinConnectTimeout: 5 * time.Second}),
		}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, errcode.New(errcode.Unavailable, "ledger: dial bookie %s: %v", addr, err)
	}
	c.mu.conns[addr] = cc
	return bookiepb.NewBookieClient(cc), nil
}

// bookieBackoff is the reconnect backoff of the connections to bookies.
var bookieBackoff = backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}

// Create allocates a ledger on E live bookies chosen at random, records its
// metadata and returns its writer. ErrNotEnoughBookies if fewer than E are
// live; ErrInvalidArgument for bad quorums.
func (c *Client) Create(ctx context.Context, opts CreateOptions) (*Writer, error) {
	opts = opts.withDefaults()
	if err := c.cfg.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ensemble, err := c.pickEnsemble(ctx, opts.Ensemble)
	if err != nil {
		return nil, err
	}
	id, err := c.newID(ctx, opts.After)
	if err != nil {
		return nil, fmt.Errorf("ledger: allocate id: %w", err)
	}
	l := &metadata.Ledger{
		ID: id, Ensemble: opts.Ensemble, WriteQuorum: opts.WriteQuorum, AckQuorum: opts.AckQuorum,
		State:      metadata.LedgerOpen,
		Fragments:  []metadata.Fragment{{FirstEntry: 0, Bookies: ensemble}},
		LastEntry:  ids.NoEntry,
		Topic:      opts.Topic,
		Properties: opts.Properties,
		CreatedAt:  time.Now().UnixNano(),
	}
	// Stored before the writer starts: no add reaches a bookie for a
	// ledger without metadata, so the garbage collection may take a
	// bookie's copy of a ledger whose metadata is missing as the copy of
	// a deleted one (collect.go).
	if err := c.store.CreateLedger(ctx, l); err != nil {
		return nil, fmt.Errorf("ledger: create %d: %w", id, err)
	}
	return c.startWriter(l)
}

// pickEnsemble returns n distinct live bookies in random order.
func (c *Client) pickEnsemble(ctx context.Context, n int) ([]string, error) {
	live, err := c.liveBookies(ctx)
	if err != nil {
		return nil, err
	}
	if len(live) < n {
		return nil, fmt.Errorf("%w: %d writable (registered, not draining, not read-only with a full disk), ensemble of %d", ErrNotEnoughBookies, len(live), n)
	}
	rand.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	return live[:n], nil
}

// liveBookies returns the ids (addresses) of the bookies new ensembles
// may take.
func (c *Client) liveBookies(ctx context.Context) ([]string, error) {
	return bookieIDs(ctx, c.bookies)
}

// bookieIDs returns the ids (addresses) of the bookies bs lists.
func bookieIDs(ctx context.Context, bs Bookies) ([]string, error) {
	infos, err := bs.ListBookies(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: list bookies: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, b := range infos {
		out = append(out, b.ID)
	}
	return out, nil
}

// Delete removes a ledger from every bookie of every fragment, then its
// metadata. It first marks the metadata Deleting: a bookie that is down
// makes it fail, after deleting the other bookies' copies, and leaves the
// marked metadata for the Auditor, which deletes it again every round
// until it is gone (or, from a bookie lost past the auditor's delay, goes
// without it). The caller's managed ledger has usually let go of the
// ledger already: without the mark nothing would ever name it again.
func (c *Client) Delete(ctx context.Context, l *metadata.Ledger) error {
	return c.deleteLedger(ctx, l, nil)
}

// deleteLedger is Delete leaving out the bookies gone says are lost for
// good.
func (c *Client) deleteLedger(ctx context.Context, l *metadata.Ledger, gone func(bookie string) bool) error {
	l, err := c.markDeleting(ctx, l)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil
	}
	if errors.Is(err, metadata.ErrBadVersion) {
		// Unmarked after re-reading a record that kept changing: nothing
		// will retry it, so the copies it names at least go (the caller no
		// longer names the ledger). After any other failure the record in
		// hand may be stale (missing a copy a re-replication added), so
		// nothing is deleted on its word.
		return fmt.Errorf("ledger: marking %d for deletion: %w", l.ID, errors.Join(err, c.deleteCopies(ctx, l, gone)))
	}
	if err != nil {
		return fmt.Errorf("ledger: marking %d for deletion: %w", l.ID, err)
	}
	if err := c.deleteCopies(ctx, l, gone); err != nil {
		return fmt.Errorf("ledger: %d left marked for deletion (the auditor retries it): %w", l.ID, err)
	}
	if err := c.store.DeleteLedger(ctx, l.ID); err != nil && err != metadata.ErrNotFound {
		return fmt.Errorf("ledger: delete metadata of %d: %w", l.ID, err)
	}
	return nil
}

// DeleteCopies deletes l from every bookie of its fragments and leaves its
// metadata as it is: for a ledger whose data lives on elsewhere (offloaded
// to object storage). A bookie that is down makes it fail after the others
// deleted theirs; calling it again is safe.
func (c *Client) DeleteCopies(ctx context.Context, l *metadata.Ledger) error {
	return c.deleteCopies(ctx, l, nil)
}

func (c *Client) deleteCopies(ctx context.Context, l *metadata.Ledger, gone func(bookie string) bool) error {
	var errs []error
	seen := map[string]bool{}
	for _, f := range l.Fragments {
		for _, b := range f.Bookies {
			if seen[b] || (gone != nil && gone(b)) {
				continue
			}
			seen[b] = true
			if err := c.deleteOn(ctx, b, l.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// markDeleting sets l's Deleting mark in the metadata, reading the ledger
// again when another writer (a re-replication) changed it meanwhile, and
// answers the record as marked.
func (c *Client) markDeleting(ctx context.Context, l *metadata.Ledger) (*metadata.Ledger, error) {
	for tries := 0; ; tries++ {
		if l.Deleting {
			return l, nil
		}
		marked := *l
		marked.Deleting = true
		err := c.store.UpdateLedger(ctx, &marked)
		if err == nil {
			return &marked, nil
		}
		if !errors.Is(err, metadata.ErrBadVersion) || tries == 3 {
			return l, err
		}
		cur, err := c.store.GetLedger(ctx, l.ID)
		if err != nil {
			return l, err
		}
		l = cur
	}
}

func (c *Client) deleteOn(ctx context.Context, b string, id ids.LedgerID) error {
	bc, err := c.bookie(b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	_, err = bc.Delete(ctx, &bookiepb.DeleteRequest{LedgerId: uint64(id)})
	if err = errcode.FromError(err); err != nil && errcode.CodeOf(err) != errcode.LedgerNotFound {
		return fmt.Errorf("ledger: delete %d on %s: %w", id, b, err)
	}
	return nil
}

func (c *Client) register(w *Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrClientClosed
	}
	c.mu.writers[w] = struct{}{}
	return nil
}

func (c *Client) unregister(w *Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.writers, w)
}

// idsAfter is a store that can hand out an id above a given one at once
// (metadata.Store); others are asked until they do.
type idsAfter interface {
	NewLedgerIDAfter(ctx context.Context, after ids.LedgerID) (ids.LedgerID, error)
}

// newID allocates a ledger id greater than after (any id when after is 0).
func (c *Client) newID(ctx context.Context, after ids.LedgerID) (ids.LedgerID, error) {
	if s, ok := c.store.(idsAfter); ok && after > 0 {
		return s.NewLedgerIDAfter(ctx, after)
	}
	for {
		id, err := c.store.NewLedgerID(ctx)
		if err != nil || id > after {
			return id, err
		}
	}
}
