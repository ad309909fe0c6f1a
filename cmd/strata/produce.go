package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// maxStdinLine is the longest stdin line produce accepts (one message).
const maxStdinLine = 8 << 20

// defaultURL is $STRATA_URL, else the local standalone.
func defaultURL() string {
	if u := os.Getenv("STRATA_URL"); u != "" {
		return u
	}
	return client.DefaultURL
}

// addURLFlag adds --url and the client TLS flags to flags.
func addURLFlag(flags *pflag.FlagSet, url *string) {
	flags.StringVar(url, "url", defaultURL(), "cluster address, strata://host:port[,host:port], or strata+tls://... (default from $STRATA_URL)")
	addClientSecurityFlags(flags)
}

// newClient connects the SDK to url with the command's logger and TLS
// flags.
func newClient(cmd *cobra.Command, url string) (*client.Client, error) {
	sec, err := clientSecurityOptions(cmd)
	if err != nil {
		return nil, err
	}
	return client.New(url, append([]client.Option{client.Logger(newLogger(cmd))}, sec...)...)
}

// withTimeout bounds ctx by d when d > 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

type produceOpts struct {
	url        string
	topic      string
	key        string
	count      int
	size       int
	properties []string
	linger     time.Duration
	timeout    time.Duration
	delay      time.Duration
	compress   string
	chunking   bool
	input      string
	schema     schemaFlags
	encrypt    []string
}

func newProduceCmd() *cobra.Command {
	var o produceOpts
	cmd := &cobra.Command{
		Use:   "produce --topic T [--key K] [--count N --size BYTES] [--input text|jsonl]",
		Short: "Send messages to a topic: N generated payloads, or one message per stdin line",
		Long: `Send messages to a topic. With --count, send N generated payloads of --size bytes;
otherwise send one message per line of standard input: the line is the payload
(--input text), or a JSON object as strata consume --output jsonl and strata
replay print them (--input jsonl): its key, properties, event_time and payload
(or payload_base64) are sent, the rest ignored, so a topic's messages can be
copied to another with their keys and properties:

  strata consume --topic a --subscription copy --output jsonl | strata produce --topic b --input jsonl

--key and --property give what a line leaves unset. Exits 0 only when every
message was acknowledged; otherwise prints the number of failures and exits 1.
A malformed line stops the input there (the lines before it are sent).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProduce(cmd, o) },
	}
	addURLFlag(cmd.Flags(), &o.url)
	f := cmd.Flags()
	f.StringVar(&o.topic, "topic", "", "topic: tenant/namespace/name, or a bare name in public/default")
	f.StringVar(&o.key, "key", "", "message key (routes to one partition)")
	f.IntVar(&o.count, "count", 0, "send this many generated payloads instead of reading stdin")
	f.IntVar(&o.size, "size", 100, "size in bytes of each generated payload (with --count)")
	f.StringArrayVar(&o.properties, "property", nil, "message property key=value (repeatable)")
	f.DurationVar(&o.linger, "linger", 10*time.Millisecond, "how long a batch waits for more messages")
	f.DurationVar(&o.delay, "deliver-after", 0, "delay the messages: shared and key_shared subscriptions deliver them this long after the send")
	f.DurationVar(&o.timeout, "timeout", 0, "give up on unacknowledged messages after this long (0: wait)")
	f.StringVar(&o.compress, "compression", "none", "compress each batch: none, lz4, zlib, zstd or snappy")
	f.StringVar(&o.input, "input", "text", "stdin format: text (a line is a payload) or jsonl (a line is a JSON message)")
	f.BoolVar(&o.chunking, "chunking", false, "send a message over the topic's size limit as chunks (consumers of exclusive and failover subscriptions get it whole)")
	o.schema.register(f, "schema-")
	f.StringArrayVar(&o.encrypt, "encryption-key", nil, "encrypt payloads end to end for the PEM public key in FILE, known to consumers as NAME: NAME=FILE (repeatable; any one key opens them)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func parseProperties(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	props := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("property %q: want key=value", kv)
		}
		props[k] = v
	}
	return props, nil
}

// maxGeneratedBytes bounds --size: far over any node's message limit
// (5 MiB by default), so only a chunked producer could send one this large.
const maxGeneratedBytes = 256 << 20

// generatedPayload is message i of a generated run: its index, padded with
// dots to size bytes (or cut to size).
func generatedPayload(i, size int) []byte {
	b := make([]byte, size)
	n := copy(b, fmt.Sprintf("message-%d ", i))
	for j := n; j < size; j++ {
		b[j] = '.'
	}
	return b
}

// produceTally counts the outcomes of SendAsync callbacks.
type produceTally struct {
	mu       sync.Mutex
	acked    int
	failed   int
	firstErr error
}

func (t *produceTally) done(_ client.MessageID, _ *client.ProducerMessage, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.acked++
}

// giveUp records err as the reason of the failures to come, unless a message
// failed already.
func (t *produceTally) giveUp(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstErr == nil {
		t.firstErr = err
	}
}

func runProduce(cmd *cobra.Command, o produceOpts) error {
	if o.count < 0 || o.size < 0 || o.delay < 0 {
		return errcode.New(errcode.InvalidArgument, "--count, --size and --deliver-after must not be negative")
	}
	if o.size > maxGeneratedBytes {
		// Checked before anything is made: the payload is allocated whole.
		return errcode.New(errcode.InvalidArgument, "--size %d: generated messages are at most %d bytes", o.size, maxGeneratedBytes)
	}
	if o.input != "text" && o.input != "jsonl" {
		return errcode.New(errcode.InvalidArgument, "--input %q: want text or jsonl", o.input)
	}
	props, err := parseProperties(o.properties)
	if err != nil {
		return err
	}
	codec, err := client.ParseCompression(o.compress)
	if err != nil {
		return fmt.Errorf("--compression: %w", err)
	}
	c, err := newClient(cmd, o.url)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := withTimeout(cmd.Context(), o.timeout)
	defer cancel()
	popts := []client.ProducerOption{client.ProducerLinger(o.linger), client.ProducerCompression(codec)}
	if o.chunking {
		popts = append(popts, client.ProducerChunking(0))
	}
	if keys, err := encryptionKeys(o.encrypt); err != nil {
		return err
	} else if len(keys) > 0 {
		popts = append(popts, client.ProducerEncryption(keys...))
	}
	if sc, err := o.schema.schema("schema-"); err != nil {
		return err
	} else if sc != nil {
		// The payloads are sent as given: the schema declares what they are.
		popts = append(popts, client.ProducerSchema(*sc))
	}
	p, err := c.NewProducer(ctx, o.topic, popts...)
	if err != nil {
		return err
	}
	var tally produceTally
	send := func(payload []byte) {
		p.SendAsync(ctx, &client.ProducerMessage{Key: o.key, Payload: payload, Properties: props, DeliverAfter: o.delay}, tally.done)
	}
	if o.input == "jsonl" {
		send = nil
	}
	sent, readErr := 0, error(nil)
	if o.count > 0 {
		for i := 0; i < o.count && ctx.Err() == nil; i++ {
			send(generatedPayload(i, o.size))
			sent++
		}
	} else {
		sc := bufio.NewScanner(cmd.InOrStdin())
		sc.Buffer(make([]byte, 64<<10), maxStdinLine)
		for line := 1; sc.Scan() && ctx.Err() == nil; line++ {
			if send != nil {
				send(append([]byte(nil), sc.Bytes()...))
				sent++
				continue
			}
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue // a blank line between JSON lines carries no message
			}
			m, err := jsonlMessage(sc.Bytes(), o.key, props)
			if err != nil {
				readErr = fmt.Errorf("line %d: %w", line, err)
				break
			}
			m.DeliverAfter = o.delay
			p.SendAsync(ctx, m, tally.done)
			sent++
		}
		if readErr == nil {
			readErr = sc.Err()
		}
	}
	if err := p.Flush(ctx); err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Close fails what is still pending as CLOSED, which would hide
		// that the wait ran out.
		tally.giveUp(errcode.New(errcode.Timeout, "not acknowledged within --timeout %s", o.timeout))
	}
	_ = p.Close() // fails whatever is still unacknowledged
	return produceResult(cmd, o.topic, sent, &tally, readErr)
}

// jsonlMessage parses one JSON line into a message; key and props are its
// defaults.
func jsonlMessage(line []byte, key string, props map[string]string) (*client.ProducerMessage, error) {
	var j client.JSONMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("not a JSON message: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value on the line")
	}
	if j.Payload != nil && j.PayloadBase64 != nil {
		return nil, fmt.Errorf("both payload and payload_base64")
	}
	payload, err := j.Bytes()
	if err != nil {
		return nil, err
	}
	m := &client.ProducerMessage{Key: key, Payload: payload, Properties: maps.Clone(props)}
	if j.Key != "" {
		m.Key = j.Key
	}
	if len(j.Properties) > 0 && m.Properties == nil {
		m.Properties = make(map[string]string, len(j.Properties))
	}
	maps.Copy(m.Properties, j.Properties)
	if j.EventTime != "" {
		if m.EventTime, err = time.Parse(time.RFC3339Nano, j.EventTime); err != nil {
			return nil, fmt.Errorf("event_time: %w", err)
		}
	}
	return m, nil
}

func produceResult(cmd *cobra.Command, topicName string, sent int, t *produceTally, readErr error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(cmd.ErrOrStderr(), "produced %d of %d messages to %s\n", t.acked, sent, topicName)
	if readErr != nil {
		return &exitError{code: 1, err: fmt.Errorf("reading stdin: %w", readErr)}
	}
	if failed := sent - t.acked; failed > 0 {
		err := fmt.Errorf("%d of %d messages failed", failed, sent)
		if t.firstErr != nil {
			err = fmt.Errorf("%d of %d messages failed: %w", failed, sent, t.firstErr)
		}
		return &exitError{code: 1, err: err}
	}
	return nil
}
