package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
)

// Replay defaults and limits.
const (
	// defaultReplayIdle is how long a partition may stay silent before the
	// end of its data is reached (see --idle-timeout).
	defaultReplayIdle = 10 * time.Second
	// replayTail is how long a partition may stay silent once its last entry
	// (at the start of the replay) was reached: the rest of that entry's
	// batch is already buffered by then, so this only absorbs scheduling.
	replayTail = 300 * time.Millisecond
	// maxReplayRate caps --rate (messages per second).
	maxReplayRate = 10_000_000
)

// replayOpts are the flags of `strata replay`.
type replayOpts struct {
	url         string
	topic       string
	from, to    string
	output      string
	out         string
	into        string
	rate        string
	idleTimeout time.Duration
	progress    string
}

// replayPlan is replayOpts checked and parsed.
type replayPlan struct {
	url         string
	topic       string
	from, to    time.Time // to is zero: up to the end of the topic
	output      string    // jsonl, arrow or parquet ("" with into)
	out         string    // file, "" for stdout
	into        string    // target topic, "" when writing
	rate        float64   // messages per second, 0: unlimited
	idleTimeout time.Duration
	progress    string // auto, always, never
}

func newReplayCmd() *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay --topic T --from TIME [--to TIME] [--output jsonl|arrow|parquet] [--out FILE] [--into TOPIC] [--rate N/s]",
		Short: "Read a time range of a topic from whichever tier holds it: write it out or republish it",
		Long: `Read the messages of a topic published in [--from, --to) through a
non-durable reader (no subscription is created or moved), from bookies or
from offloaded storage, and write them out or republish them.

TIME is RFC 3339 (2026-01-02T15:04:05Z), relative to now (-2h, -30m, -1d),
"now", or @milliseconds since the epoch. Without --to, the replay stops at the
end of the topic as it was when the replay started.

--output jsonl (default) writes the JSON lines of "strata consume --output
jsonl" to --out or stdout; arrow (IPC file) and parquet write one row per
message (id, ledger, entry, batch_index, topic, key, publish_time, event_time,
producer, sequence_id, properties, payload), readable by DuckDB, pandas and
Spark. A file given with --out appears only when the replay succeeded.

--into republishes the range to another topic, keeping key, properties and
event time, at most --rate messages per second (N or N/s; 0: unlimited). It
exits 0 only when every republished message was acknowledged.

Every partition of a partitioned topic is replayed; messages are merged by
publish time (the order within a partition is kept). Bad arguments exit 2,
any other failure exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := o.plan(cmd, time.Now())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return runReplay(cmd, plan)
		},
	}
	addURLFlag(cmd.Flags(), &o.url)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic to replay: tenant/namespace/name, or a bare name in public/default")
	f.StringVar(&o.from, "from", "", "start of the range, inclusive: RFC 3339 or relative (-2h)")
	f.StringVar(&o.to, "to", "", "end of the range, exclusive (default: the end of the topic)")
	f.StringVar(&o.output, "output", "jsonl", "output format: jsonl, arrow or parquet")
	f.StringVar(&o.out, "out", "", "output file (default: stdout)")
	f.StringVar(&o.into, "into", "", "republish the range to this topic instead of writing it")
	f.StringVar(&o.rate, "rate", "0", "with --into, at most this many messages per second (N or N/s; 0: unlimited)")
	f.DurationVar(&o.idleTimeout, "idle-timeout", defaultReplayIdle, "give up on a partition that sends nothing for this long before its end")
	f.StringVar(&o.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always or never")
	// --topic and --from are required, but checked in plan rather than
	// marked so to cobra: its "required flag(s) not set" is untyped and
	// exits 1, where bad input exits 2 with INVALID_ARGUMENT.
	return cmd
}

// badInput is a typed error for a bad argument.
func badInput(format string, args ...any) error {
	return errcode.New(errcode.InvalidArgument, format, args...)
}

// plan checks the flags; every error is bad input (exit 2).
func (o replayOpts) plan(cmd *cobra.Command, now time.Time) (replayPlan, error) {
	p := replayPlan{url: o.url, out: o.out, idleTimeout: o.idleTimeout, progress: o.progress}
	if o.topic == "" || o.from == "" {
		return p, badInput("--topic and --from are required")
	}
	name, err := topic.Canonical(o.topic)
	if err != nil {
		return p, fmt.Errorf("--topic: %w", err)
	}
	p.topic = name
	if p.from, err = client.ParseTime(o.from, now); err != nil {
		return p, fmt.Errorf("--from: %w", err)
	}
	if o.to != "" {
		if p.to, err = client.ParseTime(o.to, now); err != nil {
			return p, fmt.Errorf("--to: %w", err)
		}
		if !p.to.After(p.from) {
			return p, badInput("--to (%s) must be after --from (%s)",
				p.to.UTC().Format(time.RFC3339Nano), p.from.UTC().Format(time.RFC3339Nano))
		}
	}
	if p.rate, err = parseRate(o.rate); err != nil {
		return p, err
	}
	if o.idleTimeout <= 0 {
		return p, badInput("--idle-timeout must be positive")
	}
	switch o.progress {
	case "auto", "always", "never":
	default:
		return p, badInput("--progress %q: want auto, always or never", o.progress)
	}
	if o.into != "" {
		return p, p.planInto(cmd, o)
	}
	if p.rate > 0 {
		return p, badInput("--rate applies to --into only")
	}
	switch o.output {
	case "jsonl", "arrow", "parquet":
		p.output = o.output
	default:
		return p, badInput("--output %q: want jsonl, arrow or parquet", o.output)
	}
	return p, nil
}

func (p *replayPlan) planInto(cmd *cobra.Command, o replayOpts) error {
	into, err := topic.Canonical(o.into)
	if err != nil {
		return fmt.Errorf("--into: %w", err)
	}
	if into == p.topic {
		return badInput("--into must name another topic than --topic")
	}
	if cmd.Flags().Changed("output") || o.out != "" {
		return badInput("--into republishes: --output and --out do not apply")
	}
	p.into = into
	return nil
}

// parseRate parses N or N/s (messages per second); 0 means unlimited.
func parseRate(s string) (float64, error) {
	num := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	r, err := strconv.ParseFloat(num, 64)
	if err != nil || r < 0 || r != r || r > maxReplayRate {
		return 0, badInput("--rate %q: want N or N/s, 0 <= N <= %d", s, maxReplayRate)
	}
	return r, nil
}

// runReplay reads the range and hands it to the sink the plan names.
func runReplay(cmd *cobra.Command, p replayPlan) error {
	c, err := newClient(cmd, p.url)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer c.Close()
	ctx := cmd.Context()
	src, err := openReplaySource(ctx, c, p, newLogger(cmd))
	if err != nil {
		return classifyReplayErr(err)
	}
	defer src.close()
	snk, err := openSink(ctx, c, p, cmd.OutOrStdout())
	if err != nil {
		return classifyReplayErr(err)
	}
	prog := startProgress(cmd.ErrOrStderr(), p, progressWanted(p.progress, cmd.ErrOrStderr()))
	n, err := pump(ctx, src, snk, prog)
	if err != nil {
		snk.abort()
		prog.stop()
		return classifyReplayErr(err)
	}
	err = snk.finish(ctx)
	prog.stop()
	if err != nil {
		return classifyReplayErr(err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "replayed %d messages of %s%s\n", n, p.topic, snk.describe())
	return nil
}

// pump copies messages from src to snk until src ends.
func pump(ctx context.Context, src *replaySource, snk sink, prog *progress) (int, error) {
	n := 0
	for {
		m, err := src.next(ctx)
		if err != nil {
			return n, err
		}
		if m == nil {
			return n, nil
		}
		if err := snk.write(ctx, m); err != nil {
			return n, err
		}
		n++
		prog.add(m)
	}
}

// classifyReplayErr maps bad input found on the server (unknown topic,
// invalid name) to exit 2 and everything else to exit 1.
func classifyReplayErr(err error) error {
	var e *exitError
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, client.ErrInvalidTopicName),
		errors.Is(err, client.ErrTopicNotFound):
		return &exitError{code: 2, err: err}
	}
	return &exitError{code: 1, err: err}
}

// progressWanted reports whether to draw the progress bar on w.
func progressWanted(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
