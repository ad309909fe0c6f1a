package main

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a serving node (topics, producers, consumers) against etcd and bookies",
		Long: "serve runs one stateless serving node. It registers in etcd under a session lease,\n" +
			"owns the topics clients look up on it, and writes their entries to the bookies\n" +
			"registered in the same etcd.",
		Args: cobra.NoArgs,
		RunE: runServe,
	}
	f := cmd.Flags()
	f.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma separated")
	f.String("etcd-prefix", "/strata", "key prefix in etcd")
	f.String("grpc-addr", ":6650", "gRPC listen address")
	f.String("advertise-addr", "", "gRPC address clients are redirected to (default: host name and the --grpc-addr port)")
	f.String("http-addr", ":8080", "HTTP listen address (/healthz, /readyz, /metrics); empty: none")
	f.String("node-id", "", "node id in etcd (default: the advertised address)")
	f.Duration("lease-ttl", 3*time.Second, "session lease: a dead node's topics move after about this long")
	f.Int("ensemble", 1, "default ensemble size E for namespaces that set none")
	f.Int("write-quorum", 1, "default write quorum Qw")
	f.Int("ack-quorum", 1, "default ack quorum Qa")
	return cmd
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
	lc := ledger.NewClient(ledger.ClientConfig{}, store, store, log)
	defer lc.Close()

	glis, err := net.Listen("tcp", str("grpc-addr"))
	if err != nil {
		return err
	}
	var hlis net.Listener
	if a := str("http-addr"); a != "" {
		if hlis, err = net.Listen("tcp", a); err != nil {
			glis.Close()
			return err
		}
	}
	advertise := str("advertise-addr")
	if advertise == "" {
		advertise = serving.AdvertisedAddr(glis.Addr().String())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := serving.Config{NodeID: str("node-id"), GRPCAddr: advertise, LeaseTTL: ttl,
		Ensemble: num("ensemble"), WriteQuorum: num("write-quorum"), AckQuorum: num("ack-quorum")}
	return serving.Serve(ctx, serving.ServeOptions{Config: cfg, GRPC: glis, HTTP: hlis, Store: store, Ledgers: lc, Log: log, Registry: reg,
		Ready: func(n *serving.Node) { log.Info("serving", "grpc", advertise, "http", str("http-addr")) }})
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
