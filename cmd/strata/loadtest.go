package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/chaos"
	"github.com/strata-mq/strata/loadtest/jetstream"
	"github.com/strata-mq/strata/loadtest/stratadriver"
)

// loadtestFailedExit is the exit code of a run whose verification failed
// (something acknowledged was lost or reordered).
const loadtestFailedExit = 3

type loadtestOpts struct {
	drivers      string
	url          string
	clientOpts   []client.Option // the TLS and token flags'
	natsURL      string
	rate         string
	backlog      string
	w            loadtest.Workload
	subType      string
	keyDist      string
	jsonPath     string
	plotPath     string
	cluster      string
	chaosSpec    string
	seed         uint64
	restartAfter time.Duration
	pauseFor     time.Duration
	quiet        bool
	procs        int
	gogc         int
}

func newLoadtestCmd() *cobra.Command {
	o := loadtestOpts{w: loadtest.DefaultWorkload()}
	cmd := &cobra.Command{
		Use:   "loadtest [--driver strata,jetstream,jetstream-sync] [--url U] [--duration D] [--rate R|max] [--size B]",
		Short: "Generate load, measure throughput and latency, and verify delivery (loss, duplicates, order)",
		Long: `Run a workload against one or more brokers, one after the other, and report
throughput (msg/s, MB/s), publish and end-to-end latency (p50, p99, p99.9, max)
and a delivery verdict: every producer stamps a gap-free sequence number per
partition into each message and consumers check it.

Without --url the strata driver starts its own 'strata standalone' (temporary
directory, random ports) and stops it at the end; the jetstream drivers start
nats-server ($STRATA_NATS_BIN or PATH) unless --nats-url is given.

With --backlog SIZE (the OpenMessaging Benchmark's consumerBacklogSizeGB),
consumers do not receive until the producers have built a backlog of SIZE
(acknowledged, not yet received, counted once per subscription); then they
drain it while the producers keep to --rate, and the load ends once they have
caught up (the backlog is back to a second of publishing) or --duration has
passed. It reports the backlog built and how long that took, the drain's
time, consume rate and net drain rate (consume - publish), the publish latency
during the drain, and whether the consumers caught up. --duration bounds build
and drain together. e2e latency then measures mostly the backlog's age.

With --cluster local --chaos SCHEDULE, a local cluster of separate processes
(3 bookies, 2 serving nodes, E=3 Qw=3 Qa=2) is started and faults are injected
while the load runs, e.g. --chaos kill-bookie@10s,kill-serving@20s,pause-serving@30s.

Exits 3 when anything acknowledged was lost or reordered within a partition.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoadtest(cmd, &o) },
	}
	addLoadtestFlags(cmd, &o)
	return cmd
}

func addLoadtestFlags(cmd *cobra.Command, o *loadtestOpts) {
	f := cmd.Flags()
	w := &o.w
	f.StringVar(&o.drivers, "driver", "strata", "comma-separated drivers, run one after the other: strata, jetstream, jetstream-sync")
	f.StringVar(&o.url, "url", "", "Strata cluster, strata://host:port[,host:port] or strata+tls://... (empty: start a standalone)")
	addClientSecurityFlags(f)
	f.StringVar(&o.natsURL, "nats-url", "", "NATS server for the jetstream drivers (empty: start nats-server)")
	f.DurationVar(&w.Duration, "duration", w.Duration, "measured duration (after --warmup)")
	f.DurationVar(&w.Warmup, "warmup", w.Warmup, "warm-up before measuring (verified, not measured)")
	f.IntVar(&w.MessageSize, "size", w.MessageSize, "message size in bytes (at least 28)")
	f.StringVar((*string)(&w.Payload), "payload", string(w.Payload), "what fills the messages: random (incompressible) or text (log-like, compressible)")
	f.StringVar(&w.Compression, "compression", w.Compression, "strata producers compress each batch: none, lz4, zlib, zstd or snappy")
	f.StringVar(&o.rate, "rate", "1000", "target publish rate in msg/s over all producers, or max")
	f.StringVar(&o.backlog, "backlog", "0", "build a backlog of this size before the consumers start, then drain it while producing (500MB, 1GB; units are powers of 1024; 0: off)")
	f.IntVar(&w.Topics, "topics", w.Topics, "number of topics")
	f.IntVar(&w.Partitions, "partitions", w.Partitions, "partitions per topic")
	f.IntVar(&w.ProducersPerTopic, "producers", w.ProducersPerTopic, "producers per topic")
	f.IntVar(&w.SubscriptionsPerTopic, "subscriptions", w.SubscriptionsPerTopic, "subscriptions per topic")
	f.IntVar(&w.ConsumersPerSubscription, "consumers", w.ConsumersPerSubscription, "consumers per subscription")
	f.StringVar(&o.subType, "subscription-type", string(w.SubscriptionType), "exclusive, failover, shared or key_shared")
	f.StringVar(&o.keyDist, "key-distribution", string(w.KeyDistribution), "none, round-robin or random")
	f.IntVar(&w.Keys, "keys", w.Keys, "distinct keys (with a key distribution)")
	f.DurationVar(&w.BatchingDelay, "batching-delay", w.BatchingDelay, "producer batching delay (drivers that batch)")
	f.IntVar(&w.MaxPending, "max-pending", w.MaxPending, "messages in flight per producer and partition")
	f.Int64Var(&w.MaxMessagesPerProducer, "max-messages", 0, "stop each producer after this many messages (0: --duration only)")
	f.DurationVar(&w.DrainTimeout, "drain-timeout", w.DrainTimeout, "after the load, wait this long without progress for missing messages")
	f.StringVar(&w.TopicPrefix, "topic-prefix", "", "topic name prefix (default public/default/loadtest-<random>)")
	f.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file (an array with several drivers)")
	f.StringVar(&o.plotPath, "plot", "", "write a PNG of throughput and latency over time to this file")
	f.StringVar(&o.cluster, "cluster", "", "local: start a local multi-process cluster (with --chaos)")
	f.StringVar(&o.chaosSpec, "chaos", "", "fault schedule, e.g. kill-bookie@10s,kill-serving@20s,pause-serving@30s")
	f.Uint64Var(&o.seed, "seed", 1, "seed for key choice and chaos targets")
	f.DurationVar(&o.restartAfter, "chaos-restart-after", 3*time.Second, "how long a killed process stays down")
	f.DurationVar(&o.pauseFor, "chaos-pause-for", 10*time.Second, "how long a paused process stays stopped")
	f.BoolVar(&o.quiet, "quiet", false, "no progress line on stderr")
	f.IntVar(&o.procs, "procs", 0, "Go processors (GOMAXPROCS) of this load generator's own process (0: the runtime's default); brokers it starts keep their own")
	f.IntVar(&o.gogc, "gogc", 0, "GOGC of this load generator's own process, whose garbage collections take CPU from the clients it measures (0: $GOGC or the runtime's default of 100); brokers it starts keep their own")
}

// finish turns flag strings into the workload.
func (o *loadtestOpts) finish() error {
	o.w.SubscriptionType = loadtest.SubscriptionType(o.subType)
	o.w.KeyDistribution = loadtest.KeyDistribution(o.keyDist)
	o.w.Seed = int64(o.seed)
	if o.rate == "max" {
		o.w.Rate = 0
	} else {
		r, err := strconv.ParseFloat(o.rate, 64)
		if err != nil || r <= 0 {
			return errcode.New(errcode.InvalidArgument, "loadtest: --rate %q: want a positive number or max", o.rate)
		}
		o.w.Rate = r
	}
	if o.w.TopicPrefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.w.TopicPrefix = "public/default/loadtest-" + hex.EncodeToString(b[:])
	}
	if o.cluster != "" && o.cluster != "local" {
		return errcode.New(errcode.InvalidArgument, "loadtest: --cluster %q: only local is supported", o.cluster)
	}
	if o.chaosSpec != "" && o.cluster == "" {
		return errcode.New(errcode.InvalidArgument, "loadtest: --chaos needs --cluster local")
	}
	if err := o.parseBacklog(); err != nil {
		return err
	}
	if o.procs < 0 {
		return errcode.New(errcode.InvalidArgument, "loadtest: --procs %d: want 0 (the runtime's default) or more", o.procs)
	}
	if o.gogc < 0 {
		return errcode.New(errcode.InvalidArgument, "loadtest: --gogc %d: want 0 (the default) or more", o.gogc)
	}
	return o.w.Validate()
}

// parseBacklog turns --backlog into Workload.BacklogBytes.
func (o *loadtestOpts) parseBacklog() error {
	n, err := parseBytes(o.backlog)
	if err != nil || n < 0 {
		return errcode.New(errcode.InvalidArgument, "loadtest: --backlog %q: want a size such as 500MB or 1GB, or 0", o.backlog)
	}
	if n > 0 && o.cluster != "" {
		// The chaos schedule is laid over warm-up + duration, and a
		// backlog run ends when its consumers catch up.
		return errcode.New(errcode.InvalidArgument, "loadtest: --backlog does not combine with --cluster")
	}
	o.w.BacklogBytes = n
	return nil
}

func runLoadtest(cmd *cobra.Command, o *loadtestOpts) error {
	var err error
	if o.clientOpts, err = clientSecurityOptions(cmd); err != nil {
		return err
	}
	if err := o.finish(); err != nil {
		return err
	}
	if o.procs > 0 {
		// Set here, not through $GOMAXPROCS, which the standalone or the
		// cluster this command starts would inherit.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.procs))
	}
	if o.gogc > 0 {
		// Likewise not through $GOGC, which children would inherit.
		defer debug.SetGCPercent(debug.SetGCPercent(o.gogc))
	}
	log := newLogger(cmd)
	if o.cluster == "local" {
		return runChaosLoadtest(cmd, o, log)
	}
	names, err := parseDrivers(o.drivers)
	if err != nil {
		return err
	}
	var results []*loadtest.Result
	for _, name := range names {
		res, err := runOneDriver(cmd.Context(), o, name, log, cmd.ErrOrStderr())
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			return err
		}
	}
	return reportLoadtest(cmd.OutOrStdout(), o, results)
}

func parseDrivers(s string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(s, ",") {
		switch n = strings.TrimSpace(n); n {
		case "strata", "jetstream", "jetstream-sync":
			names = append(names, n)
		default:
			return nil, errcode.New(errcode.InvalidArgument, "loadtest: unknown driver %q (strata, jetstream, jetstream-sync)", n)
		}
	}
	return names, nil
}

func newDriver(o *loadtestOpts, name string, log *slog.Logger) loadtest.Driver {
	switch name {
	case "jetstream", "jetstream-sync":
		return jetstream.New(jetstream.Config{URL: o.natsURL, SyncAlways: name == "jetstream-sync", Logger: log})
	}
	return stratadriver.New(stratadriver.Config{URL: o.url, Logger: log, ClientOptions: o.clientOpts})
}

func progressFunc(o *loadtestOpts, driver string, stderr io.Writer) func(loadtest.Interval) {
	if o.quiet {
		return nil
	}
	return func(iv loadtest.Interval) { fmt.Fprintln(stderr, loadtest.ProgressLine(driver, iv)) }
}

func runOneDriver(ctx context.Context, o *loadtestOpts, name string, log *slog.Logger, stderr io.Writer) (*loadtest.Result, error) {
	d := newDriver(o, name, log)
	defer func() {
		if err := d.Close(); err != nil {
			log.Warn("loadtest: close driver", "driver", name, "err", err)
		}
	}()
	fmt.Fprintln(stderr, startLine(name, o.w))
	res, err := loadtest.Run(ctx, d, o.w, loadtest.RunOptions{Logger: log, Progress: progressFunc(o, name, stderr)})
	if err != nil {
		return res, fmt.Errorf("loadtest: %s: %w", name, err)
	}
	return res, nil
}

// startLine says what a run of driver name is about to do.
func startLine(name string, w loadtest.Workload) string {
	if w.BacklogBytes == 0 {
		return fmt.Sprintf("[%s] running for %v (+%v warm-up)", name, w.Duration, w.Warmup)
	}
	g := w.BacklogGoal()
	return fmt.Sprintf("[%s] building a backlog of %d msgs (%d bytes; about %v at %v msg/s), then draining it until caught up (%d msgs or fewer), for %v at most (+%v warm-up)",
		name, g.TargetMsgs, w.BacklogBytes, w.BacklogBuildTime().Round(time.Millisecond), w.Rate, g.CaughtUpMsgs, w.Duration, w.Warmup)
}

// chaosDrainTimeout is the default --drain-timeout in chaos mode: consumers
// may stall while a takeover or a restart runs.
const chaosDrainTimeout = 30 * time.Second

func runChaosLoadtest(cmd *cobra.Command, o *loadtestOpts, log *slog.Logger) error {
	ctx := cmd.Context()
	if !cmd.Flags().Changed("drain-timeout") {
		o.w.DrainTimeout = chaosDrainTimeout
	}
	events, err := chaos.ParseSchedule(o.chaosSpec)
	if err != nil {
		return err
	}
	cfg := chaos.ClusterConfig{Logger: log}
	steps, err := chaos.Plan(events, cfg.Counts(), o.seed, chaos.Defaults{RestartAfter: o.restartAfter, PauseFor: o.pauseFor})
	if err != nil {
		return err
	}
	if err := chaos.CheckFits(steps, o.w); err != nil {
		return err
	}
	c, err := chaos.StartLocalCluster(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(); err != nil {
			log.Warn("loadtest: stop cluster", "err", err)
		}
	}()
	stderr := cmd.ErrOrStderr()
	for _, s := range steps {
		fmt.Fprintf(stderr, "chaos plan: %v\n", s)
	}
	d := stratadriver.New(stratadriver.Config{URL: c.URL(), Durability: c.Durability(), Logger: log})
	defer d.Close()
	out, err := chaos.RunWithChaos(ctx, c, d, steps, o.w, loadtest.RunOptions{Logger: log, Progress: progressFunc(o, "strata", stderr)})
	if out != nil {
		for _, a := range out.Applied {
			fmt.Fprintf(stderr, "chaos applied at %v: %v (err: %v)\n", a.Offset.Round(time.Millisecond), a.Step, a.Err)
		}
	}
	if err != nil {
		return err
	}
	return reportLoadtest(cmd.OutOrStdout(), o, []*loadtest.Result{out.Result})
}

// reportLoadtest prints the table, writes --json and --plot, and returns
// an exit error when any run failed verification.
func reportLoadtest(stdout io.Writer, o *loadtestOpts, results []*loadtest.Result) error {
	if err := loadtest.WriteTable(stdout, results); err != nil {
		return err
	}
	if o.jsonPath != "" {
		if err := loadtest.WriteJSON(o.jsonPath, results); err != nil {
			return err
		}
	}
	if o.plotPath != "" {
		if err := loadtest.WritePlot(o.plotPath, results); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range results {
		if r.Failed {
			failed = append(failed, r.Driver)
		}
	}
	if len(failed) > 0 {
		return &exitError{code: loadtestFailedExit,
			err: errors.New("loadtest: verification failed for " + strings.Join(failed, ", ") + ": acknowledged messages lost or reordered")}
	}
	return nil
}
