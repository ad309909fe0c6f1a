package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

type readOpts struct {
	url       string
	topic     string
	start     string
	compacted bool
	toEnd     bool
	count     int
	timeout   time.Duration
	output    string
}

func newReadCmd() *cobra.Command {
	var o readOpts
	cmd := &cobra.Command{
		Use:   "read --topic T [--start earliest|latest|ID|TIME] [--compacted] [--to-end]",
		Short: "Read a topic with a reader (no subscription, nothing acknowledged), printing the messages",
		Long: `Read a topic through a reader, as Pulsar's pulsar-client read: no durable
subscription is made and nothing is acknowledged. --start is earliest (the
default), latest, a message id (ledger:entry:batch) or a time (RFC 3339, or
-1h for an hour ago). --compacted reads the topic's compaction first (the
latest message of each key; see topics compact), then what follows it.
--to-end stops, exit 0, at the end of the topic as it is when each message is
read; --count N after N messages; --timeout after that long (exit 1 when
fewer than --count messages came). The output is consume's.`,
		Example: `  strata read --topic prices --compacted --to-end --output jsonl`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runRead(cmd, o) },
	}
	addURLFlag(cmd.Flags(), &o.url)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic: tenant/namespace/name, or a bare name in public/default")
	f.StringVar(&o.start, "start", "earliest", "where to start: earliest, latest, a message id (ledger:entry:batch) or a time")
	f.BoolVar(&o.compacted, "compacted", false, "read the topic's compaction first (with --start earliest)")
	f.BoolVar(&o.toEnd, "to-end", false, "stop at the end of the topic")
	f.IntVar(&o.count, "count", 0, "exit after this many messages (0: no limit)")
	f.DurationVar(&o.timeout, "timeout", 0, "stop waiting after this long (0: no limit)")
	f.StringVar(&o.output, "output", "text", "output format: text or jsonl")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// readerStart parses --start.
func readerStart(s string) (client.ReaderOption, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "earliest":
		return client.ReaderStartEarliest(), nil
	case "latest":
		return client.ReaderStartLatest(), nil
	}
	if id, err := client.ParseMessageID(s); err == nil {
		return client.ReaderStartMessageID(id), nil
	}
	t, err := client.ParseTime(s, time.Now())
	if err != nil {
		return nil, fmt.Errorf("--start %q: want earliest, latest, a message id (ledger:entry:batch) or a time", s)
	}
	return client.ReaderStartTime(t), nil
}

func runRead(cmd *cobra.Command, o readOpts) error {
	if o.count < 0 {
		return fmt.Errorf("--count must not be negative")
	}
	start, err := readerStart(o.start)
	if err != nil {
		return err
	}
	opts := []client.ReaderOption{start}
	if o.compacted {
		opts = append(opts, client.ReaderReadCompacted())
	}
	emit, c, ctx, done, err := startPrinting(cmd, o.url, o.output, o.timeout)
	if err != nil {
		return err
	}
	defer done()
	r, err := c.NewReader(ctx, o.topic, opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	n, atEnd := 0, false
	for o.count == 0 || n < o.count {
		if o.toEnd {
			more, err := r.HasNext(ctx)
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				return err
			}
			if atEnd = !more; atEnd {
				break
			}
		}
		m, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if err := emit(m); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			return err
		}
		n++
	}
	switch {
	case o.toEnd && !atEnd && (o.count == 0 || n < o.count):
		return &exitError{code: 1, err: fmt.Errorf("read %d messages; the timeout came before the end of the topic", n)}
	case !o.toEnd && o.count > 0 && n < o.count:
		return &exitError{code: 1, err: fmt.Errorf("read %d of %d messages before the timeout", n, o.count)}
	}
	return nil
}
