package metadata

import (
	"log/slog"
	"strings"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

// Defaults of Config.
const (
	DefaultPrefix         = "/strata"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// DefaultLedgerIDBatch is how many ledger ids one etcd write reserves.
	DefaultLedgerIDBatch = 1000
	// MaxLedgerIDBatch bounds LedgerIDBatch (ids of a reserved range that
	// are never handed out are lost when the Store closes).
	MaxLedgerIDBatch = 1_000_000
)

// Config configures a Store.
type Config struct {
	// Endpoints are the etcd client URLs (required), e.g.
	// http://127.0.0.1:2379, or Embedded.Endpoints().
	Endpoints []string
	// DialTimeout bounds the first connection; default 5 s.
	DialTimeout time.Duration
	// RequestTimeout bounds every etcd request; default 5 s. A request that
	// runs out of it fails with an errcode.Unavailable error.
	RequestTimeout time.Duration
	// Prefix is put before every key; default "/strata". Several clusters
	// can share one etcd with different prefixes.
	Prefix string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// LedgerIDBatch is how many ledger ids one etcd write reserves; default
	// 1000, at most MaxLedgerIDBatch.
	LedgerIDBatch int
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LedgerIDBatch == 0 {
		c.LedgerIDBatch = DefaultLedgerIDBatch
	}
	return c
}

// Validate checks the config after defaults are applied.
func (c Config) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errcode.New(errcode.InvalidArgument, "metadata: no etcd endpoints")
	case c.DialTimeout < 0 || c.RequestTimeout < 0:
		return errcode.New(errcode.InvalidArgument, "metadata: negative timeout")
	case !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/"):
		return errcode.New(errcode.InvalidArgument, "metadata: prefix %q must start and not end with /", c.Prefix)
	case c.LedgerIDBatch < 1 || c.LedgerIDBatch > MaxLedgerIDBatch:
		return errcode.New(errcode.InvalidArgument, "metadata: LedgerIDBatch %d not in [1, %d]", c.LedgerIDBatch, MaxLedgerIDBatch)
	}
	return nil
}
