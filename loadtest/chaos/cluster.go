package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strata-mq/strata/loadtest/procs"
	"github.com/strata-mq/strata/metadata"
)

// NodeAddrs are the loopback addresses given to one cluster process.
type NodeAddrs struct {
	// Addr is the process's service address (bookie protocol or the
	// serving node's gRPC), HTTP its health/metrics address.
	Addr, HTTP string
	// DataDir is the process's own directory (kept across restarts).
	DataDir string
	// Etcd is the comma-separated etcd client endpoints.
	Etcd string
}

// ClusterConfig shapes a local cluster.
type ClusterConfig struct {
	// Exe is the strata binary (default os.Executable()).
	Exe string
	// Bookies (default 3) and Serving nodes (default 2).
	Bookies, Serving int
	// Ensemble, WriteQuorum and AckQuorum of new ledgers (default 3/3/2).
	Ensemble, WriteQuorum, AckQuorum int
	// Dir holds every process's data and log (default: a temporary
	// directory that Close removes).
	Dir string
	// BookieArgs and ServeArgs build each process's command line (default
	// DefaultBookieArgs and DefaultServeArgs).
	BookieArgs func(NodeAddrs) []string
	ServeArgs  func(NodeAddrs, ClusterConfig) []string
	// KeepBookiesUnregistered turns off the cluster's registering of each
	// bookie in etcd under a session lease of its own (prefix EtcdPrefix,
	// default "/strata"), dropped when the chaos schedule kills the bookie
	// and taken again on restart. The cluster does this rather than pass
	// `--etcd` because a SIGKILLed bookie's own registration lingers until
	// its lease expires, while the schedule wants it out of the ensemble
	// choices at once. Set it with BookieArgs adding `--etcd` to test the
	// bookie's own registration (its read-only mark, say).
	KeepBookiesUnregistered bool
	EtcdPrefix              string
	Logger                  *slog.Logger
}

// DefaultBookieArgs is `bookie --data-dir D --listen A`, the flags of
// `strata bookie`. Without `--etcd` the bookie does not register itself in
// etcd: the cluster does it for it (see ClusterConfig.KeepBookiesUnregistered).
func DefaultBookieArgs(a NodeAddrs) []string {
	return []string{"bookie", "--data-dir", a.DataDir, "--listen", a.Addr}
}

// DefaultServeArgs is `serve --etcd E --grpc-addr A --advertise-addr A
// --http-addr H --ensemble n --write-quorum n --ack-quorum n`, the flags of
// `strata serve`.
func DefaultServeArgs(a NodeAddrs, c ClusterConfig) []string {
	return []string{"serve", "--etcd", a.Etcd, "--grpc-addr", a.Addr, "--advertise-addr", a.Addr,
		"--http-addr", a.HTTP, "--ensemble", strconv.Itoa(c.Ensemble),
		"--write-quorum", strconv.Itoa(c.WriteQuorum), "--ack-quorum", strconv.Itoa(c.AckQuorum)}
}

func (c ClusterConfig) withDefaults() (ClusterConfig, error) {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Bookies, 3)
	setInt(&c.Serving, 2)
	setInt(&c.Ensemble, 3)
	setInt(&c.WriteQuorum, 3)
	setInt(&c.AckQuorum, 2)
	if c.BookieArgs == nil {
		c.BookieArgs = DefaultBookieArgs
	}
	if c.ServeArgs == nil {
		c.ServeArgs = DefaultServeArgs
	}
	if c.EtcdPrefix == "" {
		c.EtcdPrefix = "/strata"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("chaos: own executable: %w", err)
		}
		c.Exe = exe
	}
	return c, c.validate()
}

func (c ClusterConfig) validate() error {
	switch {
	case c.Bookies < 1 || c.Bookies > 16 || c.Serving < 1 || c.Serving > 16:
		return badSchedule("cluster: 1 to 16 bookies and serving nodes")
	case c.AckQuorum < 1 || c.AckQuorum > c.WriteQuorum || c.WriteQuorum > c.Ensemble || c.Ensemble > c.Bookies:
		return badSchedule("cluster: need 1 <= Qa <= Qw <= E <= bookies, got E=%d Qw=%d Qa=%d with %d bookies",
			c.Ensemble, c.WriteQuorum, c.AckQuorum, c.Bookies)
	}
	return nil
}

// Cluster is a local cluster: etcd embedded in this process, bookies and
// serving nodes as child processes of the strata binary.
type Cluster struct {
	cfg      ClusterConfig
	etcd     *metadata.Embedded
	store    *metadata.Store // nil with KeepBookiesUnregistered
	bookies  []*procs.Process
	bookieID []string // the bookies' ids (addresses), in target order
	serving  []*procs.Process
	targets  map[string]Target
	grpc     []string
	ready    map[*procs.Process]func(context.Context) error
	readyFor map[*procs.Process]string
	dir      string
	ownDir   bool
}

// StartLocalCluster starts etcd, then the bookies, then the serving nodes,
// waiting for each process's GET /readyz to answer 200.
func StartLocalCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, dir: cfg.Dir, targets: map[string]Target{},
		ready: map[*procs.Process]func(context.Context) error{}, readyFor: map[*procs.Process]string{}}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "strata-chaos-"); err != nil {
			return nil, fmt.Errorf("chaos: cluster dir: %w", err)
		}
		c.ownDir = true
	}
	if err := c.start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	var err error
	c.etcd, err = metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{
		Dir: filepath.Join(c.dir, "etcd"), ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:0",
	}, c.cfg.Logger)
	if err != nil {
		return err
	}
	if !c.cfg.KeepBookiesUnregistered {
		c.store, err = metadata.Open(ctx, metadata.Config{Endpoints: c.etcd.Endpoints(), Prefix: c.cfg.EtcdPrefix, Logger: c.cfg.Logger})
		if err != nil {
			return err
		}
	}
	etcd := strings.Join(c.etcd.Endpoints(), ",")
	for i := range c.cfg.Bookies {
		if err := c.startBookie(ctx, TargetName(Bookie, i), etcd); err != nil {
			return err
		}
	}
	for i := range c.cfg.Serving {
		if err := c.startServing(ctx, TargetName(Serving, i), etcd); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startBookie(ctx context.Context, name, etcd string) error {
	addrs, err := c.nodeAddrs(name, etcd)
	if err != nil {
		return err
	}
	p, err := c.startNode(ctx, name, c.cfg.BookieArgs(addrs), "tcp://"+addrs.Addr,
		func(ctx context.Context) error { return procs.WaitTCP(ctx, addrs.Addr) })
	if err != nil {
		return err
	}
	c.bookies = append(c.bookies, p)
	c.bookieID = append(c.bookieID, addrs.Addr)
	if c.store == nil {
		c.targets[name] = p
		return nil
	}
	bt := &registeredBookie{Process: p, store: c.store, info: metadata.BookieInfo{ID: addrs.Addr, Addr: addrs.Addr}, ready: c.ready[p]}
	c.targets[name] = bt
	return bt.register(ctx)
}

func (c *Cluster) startServing(ctx context.Context, name, etcd string) error {
	addrs, err := c.nodeAddrs(name, etcd)
	if err != nil {
		return err
	}
	url := "http://" + addrs.HTTP + "/readyz"
	p, err := c.startNode(ctx, name, c.cfg.ServeArgs(addrs, c.cfg), url,
		func(ctx context.Context) error { return procs.WaitHTTP(ctx, url) })
	if err != nil {
		return err
	}
	c.serving = append(c.serving, p)
	c.grpc = append(c.grpc, addrs.Addr)
	c.targets[name] = p
	return nil
}

// startNode starts a process and waits until probe says it is ready.
func (c *Cluster) startNode(ctx context.Context, name string, args []string, what string, probe func(context.Context) error) (*procs.Process, error) {
	p := procs.New(procs.Spec{Name: name, Path: c.cfg.Exe, Args: args, LogDir: c.dir}, c.cfg.Logger)
	if err := p.Start(); err != nil {
		return nil, err
	}
	c.ready[p], c.readyFor[p] = probe, what
	if err := c.waitReady(ctx, p); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (c *Cluster) nodeAddrs(name, etcd string) (NodeAddrs, error) {
	a := NodeAddrs{DataDir: filepath.Join(c.dir, name), Etcd: etcd}
	if err := os.MkdirAll(a.DataDir, 0o755); err != nil {
		return a, fmt.Errorf("chaos: %w", err)
	}
	for _, dst := range []*string{&a.Addr, &a.HTTP} {
		port, err := procs.FreePort()
		if err != nil {
			return a, err
		}
		*dst = "127.0.0.1:" + strconv.Itoa(port)
	}
	return a, nil
}

func (c *Cluster) waitReady(ctx context.Context, p *procs.Process) error {
	rctx, cancel := context.WithTimeout(ctx, procs.ReadyTimeout)
	defer cancel()
	if err := p.ReadyWhile(rctx, c.ready[p]); err != nil {
		return fmt.Errorf("chaos: %s not ready at %s (log in %s): %w", p.Name(), c.readyFor[p], filepath.Join(c.dir, p.Name()+".log"), err)
	}
	return nil
}

// WaitAllReady waits until every process answers /readyz (after the chaos
// schedule has restarted and resumed them).
func (c *Cluster) WaitAllReady(ctx context.Context) error {
	for _, p := range append(append([]*procs.Process(nil), c.bookies...), c.serving...) {
		if err := c.waitReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// URL is the client URL: strata://<every serving node>.
func (c *Cluster) URL() string { return "strata://" + strings.Join(c.grpc, ",") }

// Durability states what an acknowledgement means on this cluster.
func (c *Cluster) Durability() string {
	return fmt.Sprintf("fsync'd bookie journal on Qa=%d of Qw=%d bookies before ack (E=%d, %d bookies, %d serving nodes)",
		c.cfg.AckQuorum, c.cfg.WriteQuorum, c.cfg.Ensemble, c.cfg.Bookies, c.cfg.Serving)
}

// Counts returns the number of processes per role the config will start.
func (c ClusterConfig) Counts() map[Role]int {
	n := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	return map[Role]int{Bookie: n(c.Bookies, 3), Serving: n(c.Serving, 2)}
}

// Counts returns the number of processes per role.
func (c *Cluster) Counts() map[Role]int {
	return map[Role]int{Bookie: len(c.bookies), Serving: len(c.serving)}
}

// EtcdEndpoints answers the client URLs of the cluster's etcd.
func (c *Cluster) EtcdEndpoints() []string { return c.etcd.Endpoints() }

// BookieTarget answers the target name ("bookie-2") of the bookie whose id
// (its address, as ledger metadata names it) is id; "" when none is.
func (c *Cluster) BookieTarget(id string) string {
	for i, b := range c.bookieID {
		if b == id {
			return TargetName(Bookie, i)
		}
	}
	return ""
}

// Targets returns every process by name ("bookie-0", "serving-1").
func (c *Cluster) Targets() map[string]Target {
	t := make(map[string]Target, len(c.targets))
	for k, v := range c.targets {
		t[k] = v
	}
	return t
}

// Close stops the serving nodes, the bookies and etcd, and removes the
// directory if the cluster made it.
func (c *Cluster) Close() error {
	var errs []error
	for _, p := range append(append([]*procs.Process(nil), c.serving...), c.bookies...) {
		errs = append(errs, p.Stop())
	}
	for _, t := range c.targets {
		if rb, ok := t.(*registeredBookie); ok {
			errs = append(errs, rb.deregister())
		}
	}
	if c.store != nil {
		errs = append(errs, c.store.Close())
	}
	if c.etcd != nil {
		errs = append(errs, c.etcd.Close())
	}
	if c.ownDir {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
