package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/internal/rpcpool"
	topicname "github.com/strata-mq/strata/internal/topic"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving/servingpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// TimeFinder resolves a publish time to a position through the tiering
// tier's time index, for topics whose ledgers were offloaded: the first
// entry of the topic published at or after ts.
type TimeFinder interface {
	PositionAt(ctx context.Context, topic string, ts int64) (ids.Position, error)
}

// Node is one serving node: it owns topics through its session lease and
// serves the Broker gRPC service for them.
type Node struct {
	servingpb.UnimplementedBrokerServer

	cfg     Config
	meta    Meta
	ledgers Ledgers
	times   TimeFinder
	tier    *tier // nil: no object store
	// access caches what authorization reads (nil: authorization is off);
	// set by AuthOptions, before the node serves.
	access *recordCache
	// schemas caches topics' schema versions (schema.go).
	schemas *recordCache
	log     *slog.Logger
	m       *metrics
	gather  prometheus.Gatherer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// compactions holds a *sync.Mutex per topic name: one compaction of a
	// topic at a time, across its reloads (compaction.go).
	compactions sync.Map

	mu struct {
		sync.Mutex
		session Session
		topics  map[string]*topic
		// handedOff names the node each topic was just moved to by a
		// rebalance round, until the next round (handOffLocked).
		handedOff map[string]handOff
		started   bool
		closed    bool
	}
}

// NewNode builds a node over narrow dependencies (see New for the etcd
// store and the bookie ledger client). reg may be nil; when it is also a
// prometheus.Gatherer, /metrics serves it.
func NewNode(cfg Config, meta Meta, ledgers Ledgers, log *slog.Logger, reg prometheus.Registerer) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg.withDefaults(), meta: meta, ledgers: ledgers, log: log.With("node", cfg.withDefaults().NodeID), m: newMetrics(reg)}
	n.schemas = newRecordCache(meta, schemaCacheTTL, n.cfg.MetaTimeout)
	if g, ok := reg.(prometheus.Gatherer); ok {
		n.gather = g
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mu.topics = make(map[string]*topic)
	return n, nil
}

// SetTimeFinder installs the time index used by seeks and readers by time.
// Call before Start.
func (n *Node) SetTimeFinder(f TimeFinder) { n.times = f }

// ServerOptions are the options the gRPC server hosting the node needs: the
// errcode interceptors and message limits that let a full entry through.
func (n *Node) ServerOptions() []grpc.ServerOption {
	limit := 2*n.cfg.MaxEntryBytes + 1<<20
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(errcode.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(errcode.StreamServerInterceptor()),
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(limit),
		rpcpool.ServerOption(),
		// Clients ping every 10 s (even without streams) to notice a frozen
		// peer; allow it, and drop clients that stop answering our pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
	}
}

// Register installs the Broker service on s, which should be built with
// ServerOptions.
func (n *Node) Register(s *grpc.Server) { servingpb.RegisterBrokerServer(s, n) }

// Start opens the node's session and registers the node; ctx bounds only
// these first calls. The node keeps serving until Close.
func (n *Node) Start(ctx context.Context) error {
	s, err := n.register(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.mu.session, n.mu.started = s, true
	n.mu.Unlock()
	n.wg.Add(1)
	go n.watchSession(s)
	if pw, ok := n.meta.(PolicyWatcher); ok {
		n.wg.Add(1)
		go n.followPolicies(pw)
	}
	if n.cfg.RebalanceInterval > 0 {
		n.wg.Add(1)
		go n.rebalanceLoop()
	}
	n.log.Info("serving node started", "grpc", n.cfg.GRPCAddr, "lease_ttl", n.cfg.LeaseTTL)
	return nil
}

func (n *Node) register(ctx context.Context) (Session, error) {
	s, err := n.meta.NewSession(ctx, n.cfg.LeaseTTL)
	if err != nil {
		return nil, fmt.Errorf("serving: session: %w", err)
	}
	info := metadata.NodeInfo{ID: n.cfg.NodeID, GRPCAddr: n.cfg.GRPCAddr, HTTPAddr: n.cfg.HTTPAddr, StartedAt: time.Now().UnixNano()}
	if err := n.meta.RegisterNode(ctx, s, info); err != nil {
		s.Close()
		return nil, fmt.Errorf("serving: register node: %w", err)
	}
	return s, nil
}

// watchSession drops every topic at once when the lease is lost, then opens
// a new session so the node can own topics again.
func (n *Node) watchSession(s Session) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-s.Done():
		}
		n.log.Warn("session lease lost: dropping every topic")
		n.mu.Lock()
		n.mu.session = nil
		n.mu.Unlock()
		n.dropAll(reasonSession, errcode.New(errcode.NotOwner, "node %s lost its lease", n.cfg.NodeID), false)
		s = n.reregister()
		if s == nil {
			return
		}
	}
}

func (n *Node) reregister() Session {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MetaTimeout)
		s, err := n.register(ctx)
		cancel()
		if err == nil {
			n.mu.Lock()
			n.mu.session = s
			n.mu.Unlock()
			return s
		}
		n.log.Warn("re-registering node", "err", err)
		select {
		case <-n.ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// dropAll drops every topic and answers them.
func (n *Node) dropAll(reason string, err error, graceful bool) []*topic {
	n.mu.Lock()
	ts := make([]*topic, 0, len(n.mu.topics))
	for _, t := range n.mu.topics {
		ts = append(ts, t)
	}
	n.mu.Unlock()
	for _, t := range ts {
		<-t.ready
		t.drop(reason, err, graceful)
	}
	return ts
}

// Close unloads every topic gracefully (appends in flight answered, cursors
// flushed, ledgers closed and recorded, ownership released), closes the
// session and waits for every goroutine.
func (n *Node) Close() error {
	if !n.closing() {
		return nil
	}
	// Out of the placement first: while the topics below are handed over,
	// lookups (here and on the other nodes) send their clients to the
	// nodes that stay, instead of back here, where they would wait for
	// the unload and be sent on again. Best effort: the record goes with
	// the session at the end anyway.
	if n.session() != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.MetaTimeout)
		if err := n.meta.DeregisterNode(ctx, n.cfg.NodeID); err != nil {
			n.log.Warn("deregistering the node before its unloads", "err", err)
		}
		cancel()
	}
	// The node's context ends the topics' own goroutines, which turn the
	// appends in flight into receipts: only once the unloads are done.
	for _, t := range n.dropAll(reasonUnload, errcode.New(errcode.NotOwner, "node %s is shutting down", n.cfg.NodeID), true) {
		<-t.gone
	}
	n.cancel()
	n.wg.Wait()
	n.closeTier()
	n.mu.Lock()
	s := n.mu.session
	n.mu.Unlock()
	if s != nil {
		s.Close()
	}
	return nil
}

// Kill stops the node as a crash would: no cursor is flushed, no ledger
// closed, no ownership released. Then its session ends (the lease is
// revoked), so its keys vanish as they would once a dead node's lease
// expires. For in-process failover tests; a real crash is a killed process.
func (n *Node) Kill() {
	if !n.closing() {
		return
	}
	n.cancel()
	n.dropAll(reasonKilled, errcode.New(errcode.Closed, "node killed"), false)
	n.wg.Wait()
	n.closeTier()
	if s := n.session(); s != nil {
		s.Close()
	}
}

func (n *Node) closing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return false
	}
	n.mu.closed = true
	return true
}

func (n *Node) session() Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.session
}

func (n *Node) ownership(name string) metadata.Ownership {
	return metadata.Ownership{Topic: name, NodeID: n.cfg.NodeID, GRPCAddr: n.cfg.GRPCAddr}
}

// forget removes t from the owned topics.
func (n *Node) forget(t *topic) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.topics[t.name] == t {
		delete(n.mu.topics, t.name)
		n.m.ownedTopics.Set(float64(len(n.mu.topics)))
	}
}

// release gives up an ownership key of a topic this node no longer serves
// (a no-op when someone else owns it by now).
func (n *Node) release(o metadata.Ownership) {
	if o.Version == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.MetaTimeout)
	defer cancel()
	err := n.meta.ReleaseOwnership(ctx, o)
	if err != nil && !errors.Is(err, metadata.ErrNotFound) && !errors.Is(err, metadata.ErrBadVersion) {
		n.log.Warn("releasing ownership", "topic", o.Topic, "err", err)
	}
}

// policyOf answers a namespace's policy, the default when none is stored.
func (n *Node) policyOf(ctx context.Context, ns string) (metadata.NamespacePolicy, error) {
	p, err := n.meta.GetNamespacePolicy(ctx, ns)
	if errors.Is(err, metadata.ErrNotFound) {
		return metadata.DefaultNamespacePolicy(), nil
	}
	if err != nil {
		return p, unavailable("reading namespace policy", err)
	}
	return p, nil
}

// Handler serves /healthz (the process is up), /readyz (registered with a
// live session) and /metrics.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if n.session() == nil {
			http.Error(w, "no session", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if n.gather != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(n.gather, promhttp.HandlerOpts{}))
	}
	return mux
}

// canonical parses a topic name into its full form.
func canonical(name string) (topicname.Name, error) { return topicname.Parse(name) }
