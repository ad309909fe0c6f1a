package main

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/tiering"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a serving node (topics, producers, consumers) against etcd and bookies",
		Long: "serve runs one stateless serving node. It registers in etcd under a session lease,\n" +
			"owns the topics clients look up on it, and writes their entries to the bookies\n" +
			"registered in the same etcd.",
		Args: cobra.NoArgs,
		RunE: daemon(runServe),
	}
	f := cmd.Flags()
	f.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma separated")
	f.String("etcd-prefix", "/strata", "key prefix in etcd")
	f.String("grpc-addr", ":6650", "gRPC listen address")
	f.String("advertise-addr", "", "gRPC address clients are redirected to (default: host name and the --grpc-addr port)")
	f.String("http-addr", ":8080", "HTTP listen address (/healthz, /readyz, /metrics, the REST admin API /admin/v2, the console /console); empty: none")
	f.Bool("pprof", false, "also serve Go's profiler on --http-addr at /debug/pprof/ (CPU, heap, goroutines, execution trace)")
	f.String("node-id", "", "node id in etcd (default: the advertised address)")
	f.Duration("lease-ttl", 3*time.Second, "session lease: a dead node's topics move after about this long")
	// A cluster keeps every entry on three bookies and acknowledges it once
	// two have it, so that losing a bookie loses nothing and stalls no
	// writer; a cluster of fewer bookies must say so (standalone uses 1/1/1
	// in process).
	f.Int("ensemble", 3, "default ensemble size E for namespaces that set none (needs E live bookies)")
	f.Int("write-quorum", 3, "default write quorum Qw: the bookies each entry is written to")
	f.Int("ack-quorum", 2, "default ack quorum Qa: the bookies that must have fsync'd an entry before it is acknowledged")
	addTierFlags(cmd, "object store for offloaded ledgers: s3://bucket/prefix?endpoint=host:port&secure=false or a directory (default: none, offload disabled)")
	addPolicyFlags(cmd)
	addServerSecurityFlags(cmd)
	addHTTPFlags(cmd)
	return cmd
}

// addTierFlags adds --object-store and --offload-interval.
func addTierFlags(cmd *cobra.Command, storeHelp string) {
	cmd.Flags().String("object-store", "", storeHelp)
	cmd.Flags().Duration("offload-interval", 30*time.Second, "how often each topic checks its namespace's offload policy")
}

// addPolicyFlags adds the intervals of a serving node's periodic work
// (policy checks, rebalancing, bookie recovery, the ledger check and
// garbage collection) and
// --allow-auto-topic-creation.
func addPolicyFlags(cmd *cobra.Command) {
	cmd.Flags().Duration("rebalance-interval", time.Minute,
		"how often a node unloads, a few at a time, the topics that belong on a node that joined or came back (negative: never)")
	cmd.Flags().Duration("lost-bookie-recovery-delay", 5*time.Minute,
		"copy the closed ledgers of a bookie missing this long to other bookies, so every entry has its copies again (negative: never)")
	cmd.Flags().Duration("ledger-check-interval", ledger.DefaultCheckInterval,
		"how often a pass checks every closed ledger's copies and copies back to a bookie the entries of its write sets it misses (negative: never)")
	cmd.Flags().Duration("ledger-gc-interval", ledger.DefaultCollectInterval,
		"how often a pass compares the ledgers each bookie stores with their metadata and deletes the copies nothing names any more (negative: never)")
	cmd.Flags().Duration("overreplicated-ledger-grace", ledger.DefaultOverreplicatedGrace,
		"delete a bookie's copy of a closed ledger that no longer names the bookie only once the garbage collection has seen it so this long (negative: never)")
	cmd.Flags().Duration("retention-check-interval", time.Minute,
		"how often each topic deletes consumed ledgers past retention, expires messages past their TTL and checks its compaction threshold")
	cmd.Flags().Duration("backlog-quota-check-interval", serving.DefaultBacklogQuotaCheckInterval,
		"how often each topic checks its subscriptions' backlogs against the namespace's backlog quota")
	cmd.Flags().Bool("allow-auto-topic-creation", true,
		"create a topic on its first produce or subscribe; false: only strata topics create makes topics (a misspelt name fails)")
	cmd.Flags().Int("default-num-partitions", 0,
		"partitions of a topic created on its first produce or subscribe (Kafka's num.partitions); 0: not partitioned")
}

// tierConfig opens the object store that --object-store names (def when
// the flag is empty); nil, with a log line, when neither names one.
func tierConfig(cmd *cobra.Command, def string, reg prometheus.Registerer, log *slog.Logger) (*serving.TierConfig, error) {
	url, _ := cmd.Flags().GetString("object-store")
	if url == "" {
		url = def
	}
	if url == "" {
		log.Info("no --object-store: offload disabled")
		return nil, nil
	}
	st, err := tiering.OpenStore(cmd.Context(), url)
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	every, _ := cmd.Flags().GetDuration("offload-interval")
	log.Info("object store", "url", url)
	return &serving.TierConfig{Store: st, Interval: every, Metrics: tiering.NewMetrics(reg)}, nil
}

func runServe(cmd *cobra.Command, _ []string) error {
	log := newLogger(cmd)
	f := cmd.Flags()
	str := func(name string) string { v, _ := f.GetString(name); return v }
	num := func(name string) int { v, _ := f.GetInt(name); return v }
	ttl, _ := f.GetDuration("lease-ttl")

	ctx := cmd.Context()
	store, err := metadata.Open(ctx, metadata.Config{Endpoints: serveSplitList(str("etcd")), Prefix: str("etcd-prefix"), Logger: log})
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer store.Close()
	cfg := serving.Config{NodeID: str("node-id"), GRPCAddr: str("advertise-addr"), LeaseTTL: ttl,
		Ensemble: num("ensemble"), WriteQuorum: num("write-quorum"), AckQuorum: num("ack-quorum")}
	return runServingNode(cmd, store, nodeSpec{cfg: cfg, ready: func(grpcAddr string, _ net.Listener) {
		log.Info("serving", "grpc", grpcAddr, "http", str("http-addr"), "tls", str("tls-cert-file") != "", "auth", str("auth-token-file") != "")
	}}, log)
}

// serveSplitList splits a comma-separated flag value, dropping empty items.
func serveSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
