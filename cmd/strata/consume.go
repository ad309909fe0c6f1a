package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

type consumeOpts struct {
	url          string
	topic        string
	subscription string
	subType      string
	consumerName string
	position     string
	count        int
	timeout      time.Duration
	output       string
	pattern      string
	discovery    time.Duration
	compacted    bool
	decrypt      []string
	onFailure    string
}

func newConsumeCmd() *cobra.Command {
	var o consumeOpts
	cmd := &cobra.Command{
		Use:   "consume (--topic T | --topic-pattern TENANT/NS/REGEXP) --subscription S",
		Short: "Receive and acknowledge messages of a subscription, printing them",
		Long: `Receive messages of a subscription, print each one and acknowledge it.
--position applies only when the subscription is new. With --count N, exit 0
after N messages; with --timeout, stop waiting after that long (exit 1 when
fewer than --count messages arrived). Without --count, run until interrupted
or until the timeout, then exit 0.

With --topic-pattern, consume every topic of the namespace whose name matches
the regular expression (the whole local name: 'public/default/logs-.*'),
including topics created later, found every --pattern-discovery.

Text output is one line per message: id, key and payload separated by tabs
(a payload that is not UTF-8 is printed as base64: followed by its base64).
JSON lines output is one object per message: id, topic, key, publish_time,
properties and payload (or payload_base64).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConsume(cmd, o) },
	}
	addURLFlag(cmd.Flags(), &o.url)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic: tenant/namespace/name, or a bare name in public/default")
	f.StringVar(&o.subscription, "subscription", "", "subscription name")
	f.StringVar(&o.subType, "type", "exclusive", "subscription type: exclusive, shared, failover, key_shared")
	f.StringVar(&o.consumerName, "consumer-name", "", "consumer name (default: assigned); on a failover subscription the active consumer is chosen by name")
	f.StringVar(&o.position, "position", "latest", "where a new subscription starts: latest or earliest")
	f.IntVar(&o.count, "count", 0, "exit after this many messages (0: no limit)")
	f.DurationVar(&o.timeout, "timeout", 0, "stop waiting after this long (0: no limit)")
	f.StringVar(&o.output, "output", "text", "output format: text or jsonl")
	f.StringVar(&o.pattern, "topic-pattern", "", "consume every topic of a namespace whose name matches: TENANT/NS/REGEXP (instead of --topic)")
	f.DurationVar(&o.discovery, "pattern-discovery", time.Minute, "with --topic-pattern: how often to look for new matching topics")
	f.BoolVar(&o.compacted, "read-compacted", false, "exclusive or failover: read the topic's compaction first, the latest message of each key, then what follows")
	f.StringArrayVar(&o.decrypt, "decryption-key", nil, "decrypt payloads encrypted for NAME with the PEM private key in FILE: NAME=FILE (repeatable)")
	f.StringVar(&o.onFailure, "crypto-failure", "fail", "a message that does not decrypt: fail (stop, it is redelivered later), discard (acknowledge it) or consume (print it encrypted)")
	cmd.MarkFlagsOneRequired("topic", "topic-pattern")
	cmd.MarkFlagsMutuallyExclusive("topic", "topic-pattern")
	_ = cmd.MarkFlagRequired("subscription")
	return cmd
}

func parseSubscriptionType(s string) (client.SubscriptionType, error) {
	switch strings.ToLower(s) {
	case "exclusive":
		return client.Exclusive, nil
	case "shared":
		return client.Shared, nil
	case "failover":
		return client.Failover, nil
	case "key_shared", "key-shared", "keyshared":
		return client.KeyShared, nil
	}
	return 0, errcode.New(errcode.InvalidSubscription, "--type %q: want exclusive, shared, failover or key_shared", s)
}

func parsePosition(s string) (client.InitialPosition, error) {
	switch strings.ToLower(s) {
	case "latest":
		return client.Latest, nil
	case "earliest":
		return client.Earliest, nil
	}
	return 0, errcode.New(errcode.InvalidArgument, "--position %q: want latest or earliest", s)
}

// messagePrinter writes messages in the chosen output format.
type messagePrinter func(*client.Message) error

func newPrinter(w *bufio.Writer, format string) (messagePrinter, error) {
	switch format {
	case "jsonl":
		jw := client.NewJSONLWriter(w)
		return func(m *client.Message) error {
			if err := jw.Write(m); err != nil {
				return err
			}
			return w.Flush()
		}, nil
	case "text":
		return func(m *client.Message) error {
			fmt.Fprintf(w, "%s\t%s\t%s\n", m.ID, m.Key, textPayload(m.Payload))
			return w.Flush()
		}, nil
	}
	return nil, errcode.New(errcode.InvalidArgument, "--output %q: want text or jsonl", format)
}

// startPrinting is what consume and read start with: the printer of
// --output, a client, and the context of --timeout; done releases them.
func startPrinting(cmd *cobra.Command, url, output string, timeout time.Duration) (messagePrinter, *client.Client, context.Context, func(), error) {
	emit, err := newPrinter(bufio.NewWriter(cmd.OutOrStdout()), output)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, err := newClient(cmd, url)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := withTimeout(cmd.Context(), timeout)
	return emit, c, ctx, func() { cancel(); _ = c.Close() }, nil
}

func textPayload(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

func runConsume(cmd *cobra.Command, o consumeOpts) error {
	t, err := parseSubscriptionType(o.subType)
	if err != nil {
		return err
	}
	pos, err := parsePosition(o.position)
	if err != nil {
		return err
	}
	if o.count < 0 {
		return errcode.New(errcode.InvalidArgument, "--count must not be negative")
	}
	emit, c, ctx, done, err := startPrinting(cmd, o.url, o.output, o.timeout)
	if err != nil {
		return err
	}
	defer done()
	opts := []client.ConsumerOption{client.ConsumerType(t), client.ConsumerInitialPosition(pos)}
	if o.consumerName != "" {
		opts = append(opts, client.ConsumerName(o.consumerName))
	}
	if o.compacted {
		opts = append(opts, client.ConsumerReadCompacted())
	}
	keys, err := decryptionKeys(o.decrypt)
	if err != nil {
		return err
	}
	if keys != nil {
		action, err := parseCryptoFailure(o.onFailure)
		if err != nil {
			return err
		}
		opts = append(opts, client.ConsumerDecryption(keys, action))
	}
	var cons receiver
	if o.pattern != "" {
		m, err := c.SubscribePattern(ctx, o.pattern, o.subscription, append(opts, client.ConsumerPatternDiscovery(o.discovery))...)
		if err != nil {
			return err
		}
		defer m.Close()
		cons = m
	} else {
		one, err := c.Subscribe(ctx, o.topic, o.subscription, opts...)
		if err != nil {
			return err
		}
		defer one.Close()
		cons = one
	}
	n, err := consumeLoop(ctx, cmd.ErrOrStderr(), cons, o.count, emit)
	if err != nil {
		return err
	}
	if o.count > 0 && n < o.count {
		return &exitError{code: 1, err: fmt.Errorf("received %d of %d messages before the timeout or the end of the topic", n, o.count)}
	}
	return nil
}

// receiver is a Consumer or a MultiConsumer.
type receiver interface {
	Receive(ctx context.Context) (*client.Message, error)
	Ack(msg *client.Message) error
}

// consumeLoop prints and acknowledges messages until count (if > 0) or
// until ctx ends, and returns how many it handled. A failed ack is reported
// on stderr and not fatal (the message is redelivered).
func consumeLoop(ctx context.Context, stderr io.Writer, cons receiver, count int, emit messagePrinter) (int, error) {
	n := 0
	for count == 0 || n < count {
		m, err := cons.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			if errors.Is(err, client.ErrTopicTerminated) {
				fmt.Fprintln(stderr, "end of topic: it was terminated and every message was received")
				return n, nil
			}
			return n, err
		}
		if err := emit(m); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return n, nil
			}
			return n, err
		}
		if err := cons.Ack(m); err != nil {
			// The consumer is reconnecting: the message will come again.
			fmt.Fprintf(stderr, "warning: ack %v: %v\n", m.ID, err)
		}
		n++
	}
	return n, nil
}
