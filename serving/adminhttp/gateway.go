package adminhttp

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

// Config configures a Gateway.
type Config struct {
	// URL of the node's own client port: strata://host:port, or
	// strata+tls://host:port when it serves TLS.
	URL string
	// ClientOptions are given to every SDK client the gateway opens (TLS
	// options, for a node that serves TLS); the request's token is added.
	ClientOptions []client.Option
	// MaxClients bounds the SDK clients kept open, one per distinct bearer
	// token (default 16).
	MaxClients int
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// Log receives failures that are the gateway's own (default: discarded).
	Log *slog.Logger
	// AllowedHosts, when set, are the only host names a request's Host
	// header may name (the port aside): a node listening on loopback
	// allows only loopback names, so that a web page cannot reach it by
	// DNS rebinding.
	AllowedHosts []string
}

// Gateway serves the REST admin API and the console. Close it after the
// HTTP server that uses it has stopped.
type Gateway struct {
	cfg Config
	// cop refuses state-changing requests a browser makes for another
	// site's page (cross-site request forgery); tools that are not
	// browsers send no Origin or Sec-Fetch-Site and pass.
	cop *http.CrossOriginProtection
	mu  struct {
		sync.Mutex
		clients map[string]*list.Element // by token; values are *pooled
		lru     *list.List               // front: most recently used
		closed  bool
	}
}

// pooled is one SDK client and how many requests hold it.
type pooled struct {
	token   string
	c       *client.Client
	refs    int
	evicted bool
}

// errClosed answers requests that arrive after Close.
var errClosed = errcode.New(errcode.Unavailable, "the admin API is shutting down")

// New returns a gateway for the node at cfg.URL; it connects on first use.
func New(cfg Config) (*Gateway, error) {
	if _, err := client.ParseURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 16
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, cop: http.NewCrossOriginProtection()}
	g.mu.clients = make(map[string]*list.Element)
	g.mu.lru = list.New()
	return g, nil
}

// Close closes every SDK client; later requests answer 503.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.mu.closed = true
	var open []*pooled
	for e := g.mu.lru.Front(); e != nil; e = e.Next() {
		p := e.Value.(*pooled)
		p.evicted = true
		if p.refs == 0 {
			open = append(open, p)
		}
	}
	g.mu.clients = map[string]*list.Element{}
	g.mu.lru.Init()
	g.mu.Unlock()
	for _, p := range open {
		p.c.Close()
	}
	return nil
}

// acquire returns the SDK client for token, opening it when needed; release
// it after the call.
func (g *Gateway) acquire(token string) (*pooled, error) {
	g.mu.Lock()
	p, evicted, err := g.acquireLocked(token)
	g.mu.Unlock()
	for _, c := range evicted {
		c.Close() // blocks on the client's goroutines: not under the lock
	}
	return p, err
}

// acquireLocked is acquire under the lock; it answers the clients it
// evicted that nothing holds, for the caller to close.
func (g *Gateway) acquireLocked(token string) (*pooled, []*client.Client, error) {
	if g.mu.closed {
		return nil, nil, errClosed
	}
	if e, ok := g.mu.clients[token]; ok {
		g.mu.lru.MoveToFront(e)
		p := e.Value.(*pooled)
		p.refs++
		return p, nil, nil
	}
	opts := g.cfg.ClientOptions
	if token != "" {
		opts = append(opts[:len(opts):len(opts)], client.AuthToken(token))
	}
	c, err := client.New(g.cfg.URL, opts...)
	if err != nil {
		return nil, nil, err
	}
	p := &pooled{token: token, c: c, refs: 1}
	g.mu.clients[token] = g.mu.lru.PushFront(p)
	var idle []*client.Client
	for g.mu.lru.Len() > g.cfg.MaxClients {
		old := g.mu.lru.Remove(g.mu.lru.Back()).(*pooled)
		delete(g.mu.clients, old.token)
		old.evicted = true // a request still holding it closes it on release
		if old.refs == 0 {
			idle = append(idle, old.c)
		}
	}
	return p, idle, nil
}

// release gives p back after a request.
func (g *Gateway) release(p *pooled) {
	g.mu.Lock()
	p.refs--
	closeIt := p.evicted && p.refs == 0
	g.mu.Unlock()
	if closeIt {
		p.c.Close()
	}
}

// bearerToken answers the request's bearer token ("" when it has none).
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", errcode.New(errcode.Unauthenticated, "the Authorization header must be \"Bearer TOKEN\"")
	}
	return strings.TrimSpace(token), nil
}

// handler is one API call: it answers a value to encode as JSON (nil: 204
// No Content) or an error.
type handler func(r *http.Request, a *client.Admin) (any, error)

// guard applies the host check and the cross-origin protection to h.
func (g *Gateway) guard(h http.Handler) http.Handler {
	return g.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostAllowed(r.Host) {
			http.Error(w, "host not allowed", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// hostAllowed reports whether host (a Host header) names an allowed host.
func (g *Gateway) hostAllowed(host string) bool {
	if len(g.cfg.AllowedHosts) == 0 {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	return slices.ContainsFunc(g.cfg.AllowedHosts, func(a string) bool { return strings.EqualFold(a, name) })
}

// serve adapts h to HTTP: token, client, JSON answer or error.
func (g *Gateway) serve(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		v, err := g.call(r, h)
		if err != nil {
			g.writeError(w, r, err)
			return
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// call runs h with the SDK client of r's token.
func (g *Gateway) call(r *http.Request, h handler) (any, error) {
	token, err := bearerToken(r)
	if err != nil {
		return nil, err
	}
	p, err := g.acquire(token)
	if err != nil {
		return nil, err
	}
	defer g.release(p)
	return h(r, p.c.Admin())
}

// apiError is the body of an error answer.
type apiError struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// writeError answers err with its status and code.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	code := client.CodeOf(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		status, code = http.StatusRequestEntityTooLarge, errcode.InvalidArgument
	}
	if status >= 500 {
		g.cfg.Log.Warn("admin API call failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	reason := err.Error()
	if e, ok := errors.AsType[*errcode.Error](err); ok && e.Message != "" {
		reason = e.Message // the code is beside it
	}
	writeJSON(w, status, apiError{Code: code.String(), Reason: reason})
}

// ErrorStatus answers the HTTP status of err, by its Strata code: 404 for
// what does not exist, 409 for what exists or a lost race, 400 for bad
// input or a request the state does not allow, 401 and 403 for
// authentication and authorization, 503 for what is worth retrying, 504
// for a timeout, 500 otherwise.
func ErrorStatus(err error) int {
	switch errcode.CodeOf(err) {
	case errcode.TopicNotFound, errcode.SubscriptionNotFound, errcode.NamespaceNotFound,
		errcode.LedgerNotFound, errcode.EntryNotFound:
		return http.StatusNotFound
	case errcode.TopicExists, errcode.SubscriptionExists, errcode.BadVersion, errcode.ProducerBusy, errcode.ConsumerBusy,
		errcode.IncompatibleSchema:
		return http.StatusConflict
	case errcode.InvalidArgument, errcode.InvalidTopicName, errcode.InvalidSubscription, errcode.InvalidPolicy,
		errcode.MessageTooLarge, errcode.NamespaceNotEmpty, errcode.TopicTerminated:
		return http.StatusBadRequest
	case errcode.Unauthenticated:
		return http.StatusUnauthorized
	case errcode.Unauthorized:
		return http.StatusForbidden
	case errcode.Timeout:
		return http.StatusGatewayTimeout
	case errcode.Unimplemented:
		return http.StatusNotImplemented
	}
	if errcode.IsRetriable(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away; nothing to tell it
}

// decodeBody decodes r's JSON body into v, refusing unknown fields and
// trailing data.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errcode.New(errcode.InvalidArgument, "the request needs a JSON body")
		}
		return errcode.New(errcode.InvalidArgument, "request body: %v", err)
	}
	if dec.More() {
		return errcode.New(errcode.InvalidArgument, "request body: more than one JSON value")
	}
	return nil
}

// invalid is an InvalidArgument error.
func invalid(format string, args ...any) error {
	return errcode.New(errcode.InvalidArgument, "%s", fmt.Sprintf(format, args...))
}
