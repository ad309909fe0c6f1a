package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/rpcpool"
	"github.com/strata-mq/strata/serving/servingpb"
)

// DefaultURL is the address of a local standalone broker.
const DefaultURL = "strata://127.0.0.1:6650"

const urlScheme = "strata://"

// Client is a connection to a Strata cluster. It is safe for concurrent use.
type Client struct {
	cfg     clientConfig
	seeds   []string
	creds   credentials.TransportCredentials // TLS for a strata+tls:// URL (tls.go)
	metrics *metrics                         // nil without the Metrics option
	linger  lingerClock                      // times every send loop's linger

	mu struct {
		sync.Mutex
		closed  bool
		conns   map[string]*grpc.ClientConn
		closers map[closer]struct{}
		// slow holds the seeds whose last attempt failed with a retriable
		// error: they are tried after the others until one answers again.
		slow map[string]struct{}
	}
}

// closer is a Producer, Consumer or Reader registered with its Client.
type closer interface{ Close() error }

// New returns a client for the cluster at url, strata://host:port[,host:port],
// or strata+tls://host:port[,...] for TLS (see TLSCAFile). It does not
// connect: connections are made on first use, so a bad address, or a node
// whose certificate does not verify, shows up as ErrUnavailable on the
// first call.
func New(url string, opts ...Option) (*Client, error) {
	cfg := defaultClientConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seeds, useTLS, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	creds, err := cfg.transportCredentials(useTLS)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.registerer)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, seeds: seeds, creds: creds, metrics: m}
	c.mu.conns = make(map[string]*grpc.ClientConn)
	c.mu.closers = make(map[closer]struct{})
	c.mu.slow = make(map[string]struct{})
	return c, nil
}

// ParseURL returns the host:port addresses of strata://host:port[,host:port]
// (or strata+tls://...).
func ParseURL(url string) ([]string, error) {
	seeds, _, err := parseURL(url)
	return seeds, err
}

// parseURL answers the seeds of url and whether it asks for TLS.
func parseURL(url string) (seeds []string, useTLS bool, err error) {
	useTLS, rest, ok := cutScheme(url)
	if !ok {
		return nil, false, invalidArg("url %q: want strata://host:port[,host:port] or strata+tls://...", url)
	}
	rest = strings.TrimSuffix(rest, "/")
	for _, hp := range strings.Split(rest, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" || port == "" {
			return nil, false, invalidArg("url %q: bad address %q", url, hp)
		}
		seeds = append(seeds, hp)
	}
	return seeds, useTLS, nil
}

// Close closes every producer, consumer and reader made from the client, then
// its connections. It blocks until their goroutines exit.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	closers := make([]closer, 0, len(c.mu.closers))
	for cl := range c.mu.closers {
		closers = append(closers, cl)
	}
	c.mu.Unlock()
	for _, cl := range closers {
		_ = cl.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for addr, conn := range c.mu.conns {
		errs = append(errs, conn.Close())
		delete(c.mu.conns, addr)
	}
	return errors.Join(errs...)
}

func (c *Client) register(cl closer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrClosed
	}
	c.mu.closers[cl] = struct{}{}
	return nil
}

func (c *Client) unregister(cl closer) {
	c.mu.Lock()
	delete(c.mu.closers, cl)
	c.mu.Unlock()
}

// clientKeepalive pings an idle connection every 10 s (grpc-go's minimum;
// serving nodes permit it) and drops it when a ping goes unanswered for 3 s:
// a frozen node keeps its TCP connections up, so without pings a stream to it
// would wait forever.
var clientKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}

// maxResponseBytes bounds one message received from a node. gRPC's default,
// 4 MiB, is below the default 5 MiB message limit: a larger message could
// be published and then never consumed, its consumer reconnecting in a
// loop. A node sends at most twice its entry limit plus 1 MiB (11 MiB by
// default); this leaves room for nodes configured higher. DialOptions can
// override it.
const maxResponseBytes = 64 << 20

// broker returns a stub for the node at addr, reusing its connection.
func (c *Client) broker(addr string) (servingpb.BrokerClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if conn, ok := c.mu.conns[addr]; ok {
		return servingpb.NewBrokerClient(conn), nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(c.creds), grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes)), rpcpool.DialOption()}
	if c.cfg.authToken != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(c.cfg.authToken)))
	}
	opts = append(opts, c.cfg.dialOpts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, errcode.New(errcode.Unavailable, "dial %s: %v", addr, err)
	}
	c.mu.conns[addr] = conn
	return servingpb.NewBrokerClient(conn), nil
}

// dropConn closes the cached connection to addr, which ends every stream on
// it; the next call there dials again. A backstop for a stream that does not
// end when its context is cancelled.
func (c *Client) dropConn(addr string) {
	c.mu.Lock()
	conn := c.mu.conns[addr]
	delete(c.mu.conns, addr)
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// opContext bounds ctx by the operation timeout.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.opTimeout)
}

// anyNode calls fn on the seeds in turn until one answers with something
// other than a retriable error; it follows a NOT_OWNER redirect. Each
// attempt is bounded by the operation timeout, so one frozen node does not
// stall the call.
func (c *Client) anyNode(ctx context.Context, fn func(context.Context, servingpb.BrokerClient) error) error {
	return c.anyNodeAvoiding(ctx, "", fn)
}

// anyNodeAvoiding is anyNode trying the seed at avoid (a node held suspect)
// last. When every seed fails, it returns the last error a node answered
// with, if any, and only otherwise the last transport error.
func (c *Client) anyNodeAvoiding(ctx context.Context, avoid string, fn func(context.Context, servingpb.BrokerClient) error) error {
	var best error
	bestAnswered := false
	for _, addr := range c.seedOrder(avoid) {
		answered := false
		noting := func(ctx context.Context, b servingpb.BrokerClient) error {
			err := fn(ctx, b)
			answered = errcode.IsAnswer(err)
			return err
		}
		actx, cancel := c.opContext(ctx)
		err := c.callAt(actx, addr, noting)
		cancel()
		c.noteSeed(addr, err == nil || !errcode.IsRetriable(err))
		if err == nil || !errcode.IsRetriable(err) || ctx.Err() != nil {
			return err
		}
		// A dead seed's "connection refused" must not hide why a live
		// node refused (NOT_ENOUGH_BOOKIES with its counts, say).
		if answered || !bestAnswered {
			best, bestAnswered = err, answered
		}
	}
	return best
}

// noteSeed records whether the seed at addr answered.
func (c *Client) noteSeed(addr string, answered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if answered {
		delete(c.mu.slow, addr)
	} else {
		c.mu.slow[addr] = struct{}{}
	}
}

// seedOrder returns the seeds in URL order, those that failed last time
// after the others, and avoid last of all.
func (c *Client) seedOrder(avoid string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seeds))
	for _, s := range c.seeds {
		if _, slow := c.mu.slow[s]; !slow && s != avoid {
			out = append(out, s)
		}
	}
	for _, s := range c.seeds {
		if _, slow := c.mu.slow[s]; slow && s != avoid {
			out = append(out, s)
		}
	}
	for _, s := range c.seeds {
		if s == avoid {
			out = append(out, s)
		}
	}
	return out
}

// ownerNode calls fn at the owner of topic, found with Lookup, for an
// admin call: a topic that does not exist is ErrTopicNotFound, not created.
func (c *Client) ownerNode(ctx context.Context, topic string, fn func(context.Context, servingpb.BrokerClient) error) error {
	return c.ownerNodeOf(ctx, topic, true, fn)
}

// ownerNodeOf is ownerNode; with existingOnly false a missing topic is
// created, as for a producer or consumer (CreateSubscription).
//
// A retriable failure (the owner died and its lease has not expired yet, a
// node still loading the topic, one unloading it) is tried again, looking
// the owner up afresh, until the operation timeout: an admin call made
// while a topic changes owner waits for the takeover, as a producer does,
// instead of failing at once. fn must thus be safe to call again; a call
// whose answer was lost may have taken effect (a deleted subscription is
// then not found).
func (c *Client) ownerNodeOf(ctx context.Context, topic string, existingOnly bool, fn func(context.Context, servingpb.BrokerClient) error) error {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	var last error
	for bo := c.newBackoff(); ; {
		addr, err := c.lookupAt(ctx, topic, "", existingOnly)
		if err == nil {
			err = c.callAt(ctx, addr, fn)
		}
		if err == nil || !errcode.IsRetriable(err) {
			return atDeadline(ctx, err, last)
		}
		last = err
		if !bo.wait(ctx) {
			return atDeadline(ctx, err, last)
		}
	}
}

// callAt calls fn at addr, following NOT_OWNER redirects.
func (c *Client) callAt(ctx context.Context, addr string, fn func(context.Context, servingpb.BrokerClient) error) error {
	for hop := 0; ; hop++ {
		b, err := c.broker(addr)
		if err != nil {
			return err
		}
		err = wireErr(fn(ctx, b))
		to, redirected := redirectOf(err)
		if !redirected || to == "" || hop >= c.cfg.maxRedirects {
			return err
		}
		addr = to
	}
}

// lookupAvoiding returns the address of topic's owner, asking the node at
// avoid last, and creating the topic if it does not exist and the cluster
// creates topics on first use.
func (c *Client) lookupAvoiding(ctx context.Context, topic, avoid string) (string, error) {
	return c.lookupAt(ctx, topic, avoid, false)
}

// lookupAt returns the address of topic's owner, asking the node at avoid
// last; with existingOnly a missing topic is ErrTopicNotFound instead of
// created.
func (c *Client) lookupAt(ctx context.Context, topic, avoid string, existingOnly bool) (string, error) {
	var owner string
	err := c.anyNodeAvoiding(ctx, avoid, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.Lookup(ctx, &servingpb.LookupRequest{Topic: topic, ExistingOnly: existingOnly})
		if err != nil {
			return err
		}
		owner = resp.GetOwner()
		return nil
	})
	if err == nil && owner == "" {
		err = errcode.New(errcode.Unavailable, "lookup %s: no owner", topic)
	}
	return owner, err
}

// partitions returns the partition count of topic: 0 for a non-partitioned
// topic, and 0 when the topic does not exist yet (the server decides at open).
func (c *Client) partitions(ctx context.Context, topic string) (int, error) {
	return c.partitionCount(ctx, topic, false)
}

// partitionsToOpen is partitions for a producer or consumer about to open
// topic: a node that creates topics on first use with partitions creates
// it now, partitioned.
func (c *Client) partitionsToOpen(ctx context.Context, topic string) (int, error) {
	return c.partitionCount(ctx, topic, true)
}

func (c *Client) partitionCount(ctx context.Context, topic string, autoCreate bool) (int, error) {
	var n int
	err := c.anyNode(ctx, func(ctx context.Context, b servingpb.BrokerClient) error {
		resp, err := b.GetTopic(ctx, &servingpb.GetTopicRequest{Topic: topic, AutoCreate: autoCreate})
		if err != nil {
			return err
		}
		n = int(resp.GetTopic().GetPartitions())
		return nil
	})
	if errors.Is(err, ErrTopicNotFound) {
		return 0, nil
	}
	return n, err
}

// openAtOwnerAvoiding finds topic's owner (starting from hint, a redirect
// address, when set) and calls open there, following redirects; it returns
// the address that accepted. Lookups ask the node at suspect last, and open
// learns the address it is called for (to bound a handshake with a suspect
// node more tightly). open itself must respect ctx.
func (c *Client) openAtOwnerAvoiding(ctx context.Context, topic, hint, suspect string, open func(ctx context.Context, b servingpb.BrokerClient, addr string) error) (string, error) {
	addr := hint
	for hop := 0; ; hop++ {
		if addr == "" {
			a, err := c.lookupAvoiding(ctx, topic, suspect)
			if err != nil {
				return "", err
			}
			addr = a
		}
		b, err := c.broker(addr)
		if err != nil {
			return "", err
		}
		err = wireErr(open(ctx, b, addr))
		if err == nil {
			return addr, nil
		}
		to, redirected := redirectOf(err)
		if !redirected || hop >= c.cfg.maxRedirects {
			return "", err
		}
		addr = to // "" means look up again
	}
}

// backoff is an exponential delay with jitter between reconnect attempts.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func (c *Client) newBackoff() *backoff {
	return &backoff{min: c.cfg.backoffMin, max: c.cfg.backoffMax}
}

// wait sleeps the next delay or until ctx ends (returning false).
func (b *backoff) wait(ctx context.Context) bool {
	if b.next == 0 {
		b.next = b.min
	}
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(b.next*2, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.next = 0 }

// handshake runs fn (which sends an open request and waits for its answer on
// a stream bound to the stream's context) with a deadline of d: when d passes
// first, cancel is called so the stream fails, and the result is ErrTimeout.
// A d of 0 sets no deadline (the stream's context still bounds fn).
func handshake(d time.Duration, cancel context.CancelFunc, fn func() error) error {
	if d <= 0 {
		return fn()
	}
	t := time.AfterFunc(d, cancel)
	err := fn()
	if !t.Stop() {
		return errcode.New(errcode.Timeout, "handshake took longer than %v", d)
	}
	return err
}
