package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

// bookieShutdownGrace bounds how long SIGTERM waits for open streams to end
// before closing them.
const bookieShutdownGrace = 5 * time.Second

func newBookieCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bookie",
		Short: "Run a bookie: the fsync'd group-commit journal that stores ledger entries",
		Long: "bookie runs one storage node. It keeps ledger entries in an append-only journal\n" +
			"under --data-dir, acknowledges each add only after fsync, and serves adds, reads,\n" +
			"LAC, fence and delete over gRPC on --listen. SIGTERM removes the bookie's etcd\n" +
			"registration, stops accepting requests, answers the adds received (ending the\n" +
			"Add streams), finishes the group commit in flight and closes the journal.",
		Args: cobra.NoArgs,
		RunE: daemon(runBookie),
	}
	f := cmd.Flags()
	f.String("data-dir", "", "directory of the journal and index (required)")
	f.String("listen", "127.0.0.1:3181", "gRPC listen address")
	f.Int("max-entry-bytes", bookie.DefaultMaxEntryBytes, "largest entry accepted")
	f.Int("group-max-bytes", bookie.DefaultGroupMaxBytes, "group commit: stop collecting at this many bytes")
	f.Duration("group-max-delay", bookie.DefaultGroupMaxDelay, "group commit: stop collecting this long after the first add")
	f.Int64("journal-file-bytes", bookie.DefaultJournalFileBytes, "size of one journal segment")
	f.Int("journal-recycle-segments", bookie.DefaultJournalRecycleSegments, "reclaimed journal segments kept to be written again instead of new files (faster fdatasyncs, no zeros to write); they hold this many times --journal-file-bytes of disk; -1 keeps none")
	f.Float64("disk-usage-threshold", bookie.DefaultDiskUsageThreshold, "turn read-only (refuse new adds, so writers move to other bookies) once this fraction of the data directory's disk is used, as df counts it; negative disables")
	f.Float64("disk-usage-low-water", 0, "take adds again once disk usage is under this fraction (default: the threshold minus 0.05)")
	addScrubFlags(f)
	f.String("metrics-listen", "", "serve Prometheus /metrics on this address (off when empty)")
	f.Bool("unsafe-no-fsync", false, "UNSAFE, benchmarks only: acknowledge adds without fsync (a machine crash loses acknowledged data)")
	f.String("etcd", "", "etcd endpoints, comma separated: register the bookie there so serving nodes can pick it (cluster mode)")
	f.String("tls-cert-file", "", "PEM certificate (chain) for TLS on --listen, with --tls-key-file (read again when it changes); serving nodes then need --bookie-tls-ca-file")
	f.String("tls-key-file", "", "PEM private key of --tls-cert-file")
	f.String("tls-client-ca-file", "", "PEM certificate authorities: callers must present a certificate they signed (mutual TLS; serving nodes give --bookie-tls-cert-file). Without it, anyone who reaches --listen may fence, write and delete ledgers")
	f.String("etcd-prefix", "/strata", "key prefix in etcd")
	f.String("advertise-addr", "", "address serving nodes dial, registered in etcd (default: the --listen address)")
	f.Duration("lease-ttl", 10*time.Second, "registration lease: a dead bookie leaves the ensemble choices after about this long")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

func bookieConfig(cmd *cobra.Command) bookie.Config {
	f := cmd.Flags()
	var c bookie.Config
	c.DataDir, _ = f.GetString("data-dir")
	c.MaxEntryBytes, _ = f.GetInt("max-entry-bytes")
	c.GroupMaxBytes, _ = f.GetInt("group-max-bytes")
	c.GroupMaxDelay, _ = f.GetDuration("group-max-delay")
	c.JournalFileBytes, _ = f.GetInt64("journal-file-bytes")
	c.JournalRecycleSegments, _ = f.GetInt("journal-recycle-segments")
	c.DiskUsageThreshold, _ = f.GetFloat64("disk-usage-threshold")
	c.DiskUsageLowWater, _ = f.GetFloat64("disk-usage-low-water")
	c.UnsafeNoFsync, _ = f.GetBool("unsafe-no-fsync")
	c.ScrubInterval, c.ScrubBytesPerSecond = scrubFlags(f)
	return c
}

// addScrubFlags defines the scrubber's flags, which strata bookie and
// strata standalone share.
func addScrubFlags(f *pflag.FlagSet) {
	f.Duration("scrub-interval", bookie.DefaultScrubInterval, "read every stored entry back this often and mark the damaged ones, so that the auditor's ledger check copies them back from other bookies; 0 or negative disables")
	f.Int64("scrub-bytes-per-second", bookie.DefaultScrubBytesPerSecond, "bound on how fast the scrubber reads, so that it leaves the disk to adds and reads; 0 or negative: no bound")
}

// scrubFlags answers the scrubber's settings as bookie.Config takes them:
// there zero means the default, here it means off (or unbounded).
func scrubFlags(f *pflag.FlagSet) (interval time.Duration, bytesPerSecond int64) {
	interval, _ = f.GetDuration("scrub-interval")
	bytesPerSecond, _ = f.GetInt64("scrub-bytes-per-second")
	if interval <= 0 {
		interval = -1
	}
	if bytesPerSecond <= 0 {
		bytesPerSecond = -1
	}
	return interval, bytesPerSecond
}

func runBookie(cmd *cobra.Command, _ []string) error {
	log := newLogger(cmd)
	cfg := bookieConfig(cmd)
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	procs := bookie.RaiseProcs()
	if cfg.UnsafeNoFsync {
		log.Warn("--unsafe-no-fsync: adds are acknowledged without fsync; a machine crash loses acknowledged data")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg
	store, err := openClusterStore(cmd, &cfg)
	if err != nil {
		return err
	}
	if store != nil {
		defer store.Close()
	}
	b, err := bookie.Open(cfg, log)
	if err != nil {
		return err
	}
	if addr, _ := cmd.Flags().GetString("metrics-listen"); addr != "" {
		stopMetrics, err := serveMetrics(addr, reg)
		if err != nil {
			b.Close()
			return err
		}
		defer stopMetrics()
		log.Info("metrics", "listen", addr)
	}
	listen, _ := cmd.Flags().GetString("listen")
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		b.Close()
		return err
	}
	opts := b.ServerOptions()
	if certFile, keyFile := flagString(cmd, "tls-cert-file"), flagString(cmd, "tls-key-file"); certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			lis.Close()
			b.Close()
			return fmt.Errorf("TLS: give both --tls-cert-file and --tls-key-file")
		}
		certs, err := newCertReloader(certFile, keyFile, log)
		if err != nil {
			lis.Close()
			b.Close()
			return err
		}
		tcfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
		if ca := flagString(cmd, "tls-client-ca-file"); ca != "" {
			if tcfg.ClientCAs, err = loadCertPool(ca, "TLS client CA"); err != nil {
				lis.Close()
				b.Close()
				return err
			}
			tcfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tcfg)))
	} else if flagString(cmd, "tls-client-ca-file") != "" {
		lis.Close()
		b.Close()
		return fmt.Errorf("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	srv := grpc.NewServer(opts...)
	b.Register(srv)
	fmt.Fprintf(cmd.OutOrStdout(), "bookie %s listening on %s (data dir %s)\n", b.ID(), lis.Addr(), cfg.DataDir)
	log.Info("bookie started", "id", b.ID(), "listen", lis.Addr().String(), "data_dir", cfg.DataDir, "gomaxprocs", procs)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	unregister := func() {}
	if store != nil {
		unregister, err = registerBookie(cmd, store, lis.Addr().String(), b)
		if err != nil {
			stopGracefully(srv, bookieShutdownGrace)
			<-served
			return errors.Join(err, b.Close())
		}
	}
	select {
	case err = <-served:
		unregister()
	case <-cmd.Context().Done():
		log.Info("bookie shutting down")
		// Unregistered first, so that no new ensemble picks a bookie on
		// its way out. Then the serving nodes' Add streams, which never
		// end on their own, end once their adds are answered, rather than
		// hold the graceful stop for its whole grace.
		unregister()
		b.StopAdds()
		stopGracefully(srv, bookieShutdownGrace)
		err = <-served
	}
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return errors.Join(err, b.Close())
}

// serveMetrics serves reg on addr/metrics until the returned stop is called.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(lis); close(done) }()
	return func() { srv.Close(); <-done }, nil
}

// stopGracefully stops accepting connections and waits up to grace for
// open calls to end, then closes them.
func stopGracefully(srv *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		srv.Stop()
		<-done
	}
}

// openClusterStore connects to the etcd of --etcd and --etcd-prefix and
// sets cfg.ClusterID to the cluster's id (creating it for a new cluster),
// so that bookie.Open refuses a data directory of another cluster before
// the bookie serves or registers: the cluster's garbage collection would
// take the directory's ledgers for deleted ones. Without --etcd there is
// no store and no check.
func openClusterStore(cmd *cobra.Command, cfg *bookie.Config) (*metadata.Store, error) {
	endpoints := serveSplitList(flagString(cmd, "etcd"))
	if len(endpoints) == 0 {
		return nil, nil
	}
	ctx := cmd.Context()
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: endpoints, Prefix: flagString(cmd, "etcd-prefix"), Logger: newLogger(cmd)})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if cfg.ClusterID, err = store.InitClusterID(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return store, nil
}

// registerBookie registers the bookie in etcd under a session lease of its
// own, so that it leaves the ensemble choices when the process dies, and
// keeps its read-only mark up to date (keepBookieRegistration).
func registerBookie(cmd *cobra.Command, store *metadata.Store, listenAddr string, b *bookie.Bookie) (unregister func(), err error) {
	ctx := cmd.Context()
	ttl, _ := cmd.Flags().GetDuration("lease-ttl")
	addr := flagString(cmd, "advertise-addr")
	if addr == "" {
		addr = serving.AdvertisedAddr(listenAddr)
	}
	sess, err := store.NewSession(ctx, ttl)
	info := metadata.BookieInfo{ID: addr, Addr: addr}
	info.ReadOnly, _ = b.ReadOnly()
	if err == nil {
		err = store.RegisterBookie(ctx, sess, info)
	}
	if err != nil {
		if sess != nil {
			// The registration may have landed before the error
			// (a cancelled request can still commit): revoking the lease
			// takes it away now rather than after the TTL.
			sess.Close()
		}
		return nil, fmt.Errorf("register bookie: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "bookie registered in etcd as %s\n", addr)
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	kept := make(chan struct{})
	go func() { keepBookieRegistration(kctx, store, sess, ttl, info, b, newLogger(cmd)); close(kept) }()
	return func() { stop(); <-kept }, nil
}

// readOnlySource is what keepBookieRegistration watches: a *bookie.Bookie.
type readOnlySource interface {
	ReadOnly() (readOnly bool, changed <-chan struct{})
}

// keepBookieRegistration keeps the bookie's registration true until ctx
// ends, then closes the session it holds (which removes it). It registers
// again each time the bookie turns read-only or writable, so that new
// ensembles leave a read-only bookie out (metadata.WritableBookies); and
// when the session ends under it (its lease expired while etcd was out of
// reach, taking the registration with it), it takes a new session of ttl
// and registers again: a bookie left unregistered would get no new
// ledgers, and the auditor would copy its ledgers away. Failures are
// tried again every second.
func keepBookieRegistration(ctx context.Context, store *metadata.Store, sess *metadata.Session, ttl time.Duration, info metadata.BookieInfo, b readOnlySource, log *slog.Logger) {
	defer func() { sess.Close() }()
	var retry <-chan time.Time
	dirty := false // the registration may not say info any more
	for {
		ro, changed := b.ReadOnly()
		if ro != info.ReadOnly || dirty {
			next := info
			next.ReadOnly = ro
			retry = nil
			if err := store.RegisterBookie(ctx, sess, next); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("updating the bookie's registration failed; retrying", "read_only", ro, "err", err)
				dirty, retry = true, time.After(time.Second)
			} else {
				info, dirty = next, false
				log.Info("bookie registration updated", "read_only", ro)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			log.Warn("the bookie's etcd session ended, and its registration with it; registering again under a new session")
			for {
				ns, err := store.NewSession(ctx, ttl)
				if err == nil {
					sess, dirty = ns, true
					break
				}
				log.Warn("starting a new etcd session failed; retrying", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		case <-changed:
		case <-retry:
		}
	}
}

// flagString returns a string flag's value ("" when it is not defined).
func flagString(cmd *cobra.Command, name string) string {
	v, _ := cmd.Flags().GetString(name)
	return v
}
