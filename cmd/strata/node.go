package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

// nodeSpec is what `serve` and `standalone` decide about their serving node;
// runServingNode does the rest the same way for both.
type nodeSpec struct {
	// cfg.GRPCAddr empty: advertise the --grpc-addr listener's address.
	cfg serving.Config
	// defaultStore is the object store used when --object-store is empty
	// ("" leaves offload disabled).
	defaultStore string
	// ready is called once the node serves, with its advertised gRPC address
	// and its HTTP listener (nil when --http-addr is empty).
	ready func(grpcAddr string, http net.Listener)
	// registry serves /metrics; nil: a new one with the Go and process
	// collectors.
	registry *prometheus.Registry
	// localBookies are bookies in this process, by address, called without
	// gRPC (ledger.ClientConfig.Local).
	localBookies map[string]bookiepb.BookieClient
}

// newRegistry returns a metrics registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// runServingNode listens on --grpc-addr and --http-addr and runs a serving
// node on store until the command's context ends.
func runServingNode(cmd *cobra.Command, store *metadata.Store, spec nodeSpec, log *slog.Logger) error {
	tlsCfg, err := serverTLS(cmd)
	if err != nil {
		return err
	}
	auth, err := serverAuth(cmd)
	if err != nil {
		return err
	}
	btls, err := bookieTLS(cmd)
	if err != nil {
		return err
	}
	// Draining bookies are kept out of new ensembles (strata bookies decommission).
	lc := ledger.NewClient(ledger.ClientConfig{Local: spec.localBookies, TLS: btls}, store, metadata.WritableBookies{Store: store}, log)
	defer lc.Close()
	glis, err := net.Listen("tcp", flagString(cmd, "grpc-addr"))
	if err != nil {
		return err
	}
	var hlis net.Listener
	if a := flagString(cmd, "http-addr"); a != "" {
		if hlis, err = net.Listen("tcp", a); err != nil {
			glis.Close()
			return err
		}
	}
	if spec.cfg.GRPCAddr == "" {
		spec.cfg.GRPCAddr = serving.AdvertisedAddr(glis.Addr().String())
	}
	var httpAddr string
	if hlis != nil {
		httpAddr = hlis.Addr().String()
	}
	gw, err := adminGateway(cmd, spec.cfg.GRPCAddr, httpAddr, tlsCfg, log)
	if err == nil {
		hlis, err = httpListener(cmd, hlis, tlsCfg)
	}
	if err != nil {
		glis.Close()
		if hlis != nil {
			hlis.Close()
		}
		return err
	}
	var mountAdmin func(*http.ServeMux)
	if gw != nil {
		defer gw.Close() // after Serve: the HTTP server has stopped
		mountAdmin = gw.Mount
	}
	spec.cfg.BacklogQuotaCheckInterval, _ = cmd.Flags().GetDuration("backlog-quota-check-interval")
	spec.cfg.TrimInterval, _ = cmd.Flags().GetDuration("retention-check-interval")
	spec.cfg.RebalanceInterval, _ = cmd.Flags().GetDuration("rebalance-interval")
	spec.cfg.LostBookieRecoveryDelay, _ = cmd.Flags().GetDuration("lost-bookie-recovery-delay")
	spec.cfg.LedgerCheckInterval, _ = cmd.Flags().GetDuration("ledger-check-interval")
	spec.cfg.LedgerGCInterval, _ = cmd.Flags().GetDuration("ledger-gc-interval")
	spec.cfg.OverreplicatedLedgerGrace, _ = cmd.Flags().GetDuration("overreplicated-ledger-grace")
	if auto, err := cmd.Flags().GetBool("allow-auto-topic-creation"); err == nil {
		spec.cfg.NoTopicAutoCreation = !auto
	}
	if n, err := cmd.Flags().GetInt("default-num-partitions"); err == nil {
		if n < 0 || n > metadata.MaxPartitions {
			glis.Close()
			if hlis != nil {
				hlis.Close()
			}
			return fmt.Errorf("--default-num-partitions %d: want 0 to %d", n, metadata.MaxPartitions)
		}
		spec.cfg.DefaultNumPartitions = n
	}
	reg := spec.registry
	if reg == nil {
		reg = newRegistry()
	}
	tc, err := tierConfig(cmd, spec.defaultStore, reg, log)
	if err != nil {
		glis.Close()
		if hlis != nil {
			hlis.Close()
		}
		return err
	}
	return serving.Serve(cmd.Context(), serving.ServeOptions{
		Config: spec.cfg, GRPC: glis, HTTP: hlis, Store: store, Ledgers: lc, Log: log, Registry: reg, Tier: tc, TLS: tlsCfg, BookieTLS: btls, Auth: auth,
		Ready: func(*serving.Node) { spec.ready(spec.cfg.GRPCAddr, hlis) },
		Mount: mounts(pprofMount(cmd), mountAdmin),
	})
}

// pprofMount adds Go's profiler to the HTTP mux when --pprof is set: the way
// to see where a running node spends its CPU or why its latency has a tail
// (go tool pprof http://HOST/debug/pprof/profile; .../trace?seconds=5).
func pprofMount(cmd *cobra.Command) func(*http.ServeMux) {
	if on, _ := cmd.Flags().GetBool("pprof"); !on {
		return nil
	}
	return func(mux *http.ServeMux) {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}
