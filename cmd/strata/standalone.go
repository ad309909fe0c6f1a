package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

func newStandaloneCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run a whole broker in one process: embedded etcd, one bookie, one serving node",
		Long: "standalone runs embedded etcd, one bookie and one serving node in this process,\n" +
			"with every entry fsync'd before it is acknowledged (E=Qw=Qa=1). Everything is kept\n" +
			"under --data-dir, so a restart on the same directory serves the same topics.\n" +
			"--etcd points it at an external etcd instead of the embedded one.",
		Args: cobra.NoArgs,
		RunE: daemon(runStandalone),
	}
	f := cmd.Flags()
	f.String("data-dir", "data", "directory for etcd, the bookie journal and the object store")
	f.String("grpc-addr", "127.0.0.1:6650", "gRPC listen address for clients")
	f.String("http-addr", "127.0.0.1:8080", "HTTP listen address (/healthz, /readyz, /metrics, the REST admin API /admin/v2, the console /console); empty: none")
	f.Bool("pprof", false, "also serve Go's profiler on --http-addr at /debug/pprof/ (CPU, heap, goroutines, execution trace)")
	f.String("bookie-addr", "127.0.0.1:3181", "gRPC listen address of the embedded bookie")
	f.Bool("local-bookie", true, "the serving node calls the embedded bookie in process; false: over gRPC on --bookie-addr, as in a cluster")
	f.String("etcd-addr", "127.0.0.1:2379", "client address of the embedded etcd (port 0: any free port)")
	f.String("etcd-peer-addr", "127.0.0.1:2380", "peer address of the embedded etcd (port 0: any free port)")
	f.String("etcd", "", "external etcd endpoints, comma separated (default: run etcd embedded)")
	f.Bool("unsafe-no-fsync", false, "UNSAFE, benchmarks only: the bookie acknowledges adds without fsync")
	addScrubFlags(f)
	f.Float64("disk-usage-threshold", bookie.DefaultDiskUsageThreshold, "the bookie turns read-only once this fraction of the data directory's disk is used, as df counts it: publishes then wait, and fail with retriable errors, until space comes back; negative disables")
	addTierFlags(cmd, "object store for offloaded ledgers: a directory or s3://bucket/prefix?endpoint=host:port&secure=false (default: <data-dir>/objects)")
	addPolicyFlags(cmd)
	addServerSecurityFlags(cmd)
	addHTTPFlags(cmd)
	return cmd
}

func runStandalone(cmd *cobra.Command, _ []string) error {
	log := newLogger(cmd)
	procs := bookie.RaiseProcs()
	f := cmd.Flags()
	str := func(name string) string { v, _ := f.GetString(name); return v }
	dir, err := filepath.Abs(str("data-dir"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := cmd.Context()

	endpoints := serveSplitList(str("etcd"))
	if len(endpoints) == 0 {
		etcd, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{
			Dir: filepath.Join(dir, "etcd"), ClientAddr: str("etcd-addr"), PeerAddr: str("etcd-peer-addr"),
		}, log)
		if err != nil {
			return fmt.Errorf("embedded etcd: %w", err)
		}
		defer etcd.Close()
		endpoints = etcd.Endpoints()
	}
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: endpoints, Logger: log})
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer store.Close()

	noFsync, _ := f.GetBool("unsafe-no-fsync")
	diskThreshold, _ := f.GetFloat64("disk-usage-threshold")
	// One registry for the bookie and the serving node: /metrics shows both.
	reg := newRegistry()
	bcfg := bookie.Config{DataDir: filepath.Join(dir, "bookie"), UnsafeNoFsync: noFsync, DiskUsageThreshold: diskThreshold, Registerer: reg}
	bcfg.ScrubInterval, bcfg.ScrubBytesPerSecond = scrubFlags(f)
	bk, err := startBookie(ctx, store, bcfg, str("bookie-addr"), log)
	if err != nil {
		return err
	}
	defer bk.stop()

	cfg := serving.Config{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1}
	var local map[string]bookiepb.BookieClient
	if on, _ := f.GetBool("local-bookie"); on {
		local = map[string]bookiepb.BookieClient{bk.addr: bk.b.LocalClient()}
	}
	scheme := "strata://"
	if str("tls-cert-file") != "" {
		scheme = "strata+tls://"
	}
	return runServingNode(cmd, store, nodeSpec{cfg: cfg, defaultStore: filepath.Join(dir, "objects"), registry: reg, localBookies: local,
		ready: func(grpcAddr string, hlis net.Listener) {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "strata standalone is running (data in %s)\n", dir)
			fmt.Fprintf(out, "  clients:  %s%s\n", scheme, grpcAddr)
			if hlis != nil {
				web := "http://"
				if on, _ := f.GetBool("http-tls"); on {
					web = "https://"
				}
				fmt.Fprintf(out, "  http:     %s%s/readyz  /metrics  /admin/v2  /console\n", web, hlis.Addr())
			}
			fmt.Fprintf(out, "  bookie:   %s\n  etcd:     %v\n", bk.addr, endpoints)
			log.Info("standalone ready", "grpc", grpcAddr, "bookie", bk.addr, "etcd", endpoints, "gomaxprocs", procs)
		}}, log)
}

// bookieSessionTTL is the lease of the standalone bookie's registration.
const bookieSessionTTL = 10 * time.Second

// runningBookie is a bookie serving gRPC and registered in etcd.
type runningBookie struct {
	addr    string
	b       *bookie.Bookie
	srv     *grpc.Server
	served  chan error
	session *metadata.Session
	// stopKeep ends the goroutine that keeps the registration true
	// (keepBookieRegistration), which then closes the session it holds;
	// keep closes when it has.
	stopKeep func()
	keep     chan struct{}
}

// startBookie opens a bookie, serves it on listen and registers it in etcd
// under a session lease of its own, so it disappears from the ensemble
// choices when the process dies. The bookie is bound to store's cluster
// id, so that a data directory started against other metadata (--etcd, or
// an etcd directory not its own) is refused rather than collected.
func startBookie(ctx context.Context, store *metadata.Store, cfg bookie.Config, listen string, log *slog.Logger) (*runningBookie, error) {
	if cfg.UnsafeNoFsync {
		log.Warn("unsafe-no-fsync: adds are acknowledged without fsync; a machine crash loses acknowledged data")
	}
	var err error
	if cfg.ClusterID, err = store.InitClusterID(ctx); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	b, err := bookie.Open(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("bookie: %w", err)
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		b.Close()
		return nil, err
	}
	rb := &runningBookie{addr: serving.AdvertisedAddr(lis.Addr().String()), b: b, srv: grpc.NewServer(b.ServerOptions()...), served: make(chan error, 1)}
	b.Register(rb.srv)
	go func() { rb.served <- rb.srv.Serve(lis) }()
	info := metadata.BookieInfo{ID: rb.addr, Addr: rb.addr}
	info.ReadOnly, _ = b.ReadOnly()
	if rb.session, err = store.NewSession(ctx, bookieSessionTTL); err == nil {
		err = store.RegisterBookie(ctx, rb.session, info)
	}
	if err != nil {
		rb.stop()
		return nil, fmt.Errorf("register bookie: %w", err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rb.keep = make(chan struct{})
	rb.stopKeep = stop
	go func() {
		keepBookieRegistration(kctx, store, rb.session, bookieSessionTTL, info, b, log)
		close(rb.keep)
	}()
	return rb, nil
}

// stop deregisters the bookie, stops serving and closes its journal.
func (rb *runningBookie) stop() error {
	var errs []error
	if rb.stopKeep != nil {
		rb.stopKeep()
		<-rb.keep
	}
	if rb.session != nil {
		errs = append(errs, rb.session.Close())
	}
	stopGracefully(rb.srv, bookieShutdownGrace)
	if err := <-rb.served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, rb.b.Close())...)
}
