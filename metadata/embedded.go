package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/strata-mq/strata/internal/errcode"
)

// Defaults of EmbeddedConfig.
const (
	DefaultEmbeddedClientAddr = "127.0.0.1:2379"
	DefaultEmbeddedPeerAddr   = "127.0.0.1:2380"
	// embeddedStartTimeout bounds how long StartEmbedded waits for the
	// server to become ready when the caller's context has no deadline.
	embeddedStartTimeout = 60 * time.Second
	// embeddedCompactionRetention is how much key history the embedded
	// server keeps (an external etcd needs the same, configured by its
	// operator: --auto-compaction-retention).
	embeddedCompactionRetention = "10m"
)

// EmbeddedConfig configures an in-process, single-member etcd server, used
// by standalone mode and by tests.
type EmbeddedConfig struct {
	// Dir is the data directory (required). Data survives a restart on the
	// same Dir.
	Dir string
	// ClientAddr is host:port for clients; default 127.0.0.1:2379.
	// "127.0.0.1:0" picks a free port (see Embedded.Endpoints).
	ClientAddr string
	// PeerAddr is host:port for peers; default 127.0.0.1:2380. Port 0 picks
	// a free port.
	PeerAddr string
	// UnsafeNoFsync turns off etcd's fsync. For tests only: a crash of the
	// machine may lose acknowledged metadata.
	UnsafeNoFsync bool
}

// Validate checks the config after defaults are applied.
func (c EmbeddedConfig) Validate() error {
	if c.Dir == "" {
		return errcode.New(errcode.InvalidArgument, "metadata: embedded etcd: Dir is required")
	}
	return nil
}

func (c EmbeddedConfig) withDefaults() EmbeddedConfig {
	if c.ClientAddr == "" {
		c.ClientAddr = DefaultEmbeddedClientAddr
	}
	if c.PeerAddr == "" {
		c.PeerAddr = DefaultEmbeddedPeerAddr
	}
	return c
}

// Embedded is a running in-process etcd server.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	log       *slog.Logger
	closing   *atomic.Bool // silences etcd's shutdown noise
}

// StartEmbedded starts a single-member etcd server in cfg.Dir and waits
// until it is ready to serve (or ctx ends, or a minute passes). etcd's own
// logs at level error and above go to log (nil: discarded), except for the
// noise of its own shutdown.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	closing := new(atomic.Bool)
	ecfg, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newEtcdLogger(log, closing))
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("metadata: start embedded etcd: %w", err)
	}
	if err := waitReady(ctx, e); err != nil {
		closing.Store(true)
		e.Close()
		return nil, err
	}
	em := &Embedded{etcd: e, log: log, closing: closing}
	for _, l := range e.Clients {
		em.endpoints = append(em.endpoints, "http://"+l.Addr().String())
	}
	log.Info("embedded etcd ready", "endpoints", em.endpoints, "dir", cfg.Dir)
	return em, nil
}

func embedConfig(cfg EmbeddedConfig) (*embed.Config, error) {
	curl, err := url.Parse("http://" + cfg.ClientAddr)
	if err != nil {
		return nil, errcode.New(errcode.InvalidArgument, "metadata: embedded etcd: client address %q: %v", cfg.ClientAddr, err)
	}
	purl, err := url.Parse("http://" + cfg.PeerAddr)
	if err != nil {
		return nil, errcode.New(errcode.InvalidArgument, "metadata: embedded etcd: peer address %q: %v", cfg.PeerAddr, err)
	}
	e := embed.NewConfig()
	e.Name = "strata"
	e.Dir = cfg.Dir
	e.ListenClientUrls = []url.URL{*curl}
	e.AdvertiseClientUrls = []url.URL{*curl}
	e.ListenPeerUrls = []url.URL{*purl}
	e.AdvertisePeerUrls = []url.URL{*purl}
	e.InitialCluster = e.InitialClusterFromName(e.Name)
	e.LogLevel = "error"
	e.UnsafeNoFsync = cfg.UnsafeNoFsync
	// Cursors and ledger lists are rewritten often: without compaction the
	// history would fill etcd's quota and stop every write.
	e.AutoCompactionMode = embed.CompactorModePeriodic
	e.AutoCompactionRetention = embeddedCompactionRetention
	return e, nil
}

func waitReady(ctx context.Context, e *embed.Etcd) error {
	timer := time.NewTimer(embeddedStartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("metadata: embedded etcd failed: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("metadata: waiting for embedded etcd: %w", ctx.Err())
	case <-timer.C:
		return errcode.New(errcode.Unavailable, "metadata: embedded etcd not ready after %v", embeddedStartTimeout)
	}
}

// Endpoints returns the client URLs to pass in Config.Endpoints.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Close stops the server and waits until it has stopped.
func (e *Embedded) Close() error {
	e.closing.Store(true)
	e.etcd.Close()
	select {
	case err, ok := <-e.etcd.Err():
		if ok && err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	default:
	}
	return nil
}
