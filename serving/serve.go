package serving

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/metadata"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ServeOptions wire a serving node into a process.
type ServeOptions struct {
	Config Config
	// GRPC and HTTP are the bound listeners (HTTP may be nil: no health or
	// metrics endpoint).
	GRPC, HTTP net.Listener
	Store      *metadata.Store
	Ledgers    *ledger.Client
	Log        *slog.Logger
	// Registry receives the node's metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Mount, when set, may add handlers to the HTTP mux (console, admin).
	Mount func(mux *http.ServeMux)
	// Ready, when set, is called once the node is registered and serving.
	Ready func(n *Node)
	// Tier, when set, enables offload to and reads from its object store;
	// a nil BookieDeleter gets one over Store (closed when Serve returns).
	Tier *TierConfig
	// TLS, when set, serves the gRPC port over TLS with it.
	TLS *tls.Config
	// BookieTLS, when set, is how this node's own bookie clients beyond
	// Ledgers (the offload's deleter) dial bookies over TLS.
	BookieTLS *tls.Config
	// Auth, when it asks for anything, authenticates and authorizes every
	// call on the client port (Node.AuthOptions).
	Auth AuthConfig
}

// Serve runs a serving node until ctx ends, then unloads its topics
// gracefully and returns. It owns the gRPC and HTTP servers it starts.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Config.GRPCAddr == "" && o.GRPC != nil {
		o.Config.GRPCAddr = AdvertisedAddr(o.GRPC.Addr().String())
	}
	if o.Config.HTTPAddr == "" && o.HTTP != nil {
		o.Config.HTTPAddr = AdvertisedAddr(o.HTTP.Addr().String())
	}
	n, err := New(o.Config, o.Store, o.Ledgers, o.Log, o.Registry)
	if err != nil {
		return err
	}
	if o.Tier != nil {
		tc := *o.Tier
		if tc.BookieDeleter == nil {
			d := NewBookieDeleter(o.Store, o.Store, o.Log, o.BookieTLS)
			defer d.Close()
			tc.BookieDeleter = d
		}
		if err := n.EnableTiering(tc); err != nil {
			return err
		}
	}
	opts := n.ServerOptions()
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	auth, err := n.AuthOptions(o.Auth)
	if err != nil {
		return err
	}
	opts = append(opts, auth...)
	gs := grpc.NewServer(opts...)
	n.Register(gs)
	var hs *http.Server
	if o.HTTP != nil {
		mux := http.NewServeMux()
		// The node's own paths only, not "/": a catch-all would answer a
		// method an admin path does not take 404, where the mux answers
		// 405 (with Allow).
		h := n.Handler()
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			mux.Handle(path, h)
		}
		if o.Mount != nil {
			o.Mount(mux)
		}
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gs.Serve(o.GRPC) })
	if o.Ledgers != nil {
		// Always runs: it copies ledgers off draining bookies even when lost
		// ones are left alone (a negative delay).
		d := n.cfg.LostBookieRecoveryDelay
		ac := ledger.AuditorConfig{Delay: d, CheckInterval: n.cfg.LedgerCheckInterval, CollectInterval: n.cfg.LedgerGCInterval,
			OverreplicatedGrace: n.cfg.OverreplicatedLedgerGrace, Leader: n.audits, Draining: o.Store.ListDrainingBookies, Registered: o.Store,
			Unowned: func(ctx context.Context, topic string) (bool, error) {
				_, err := o.Store.GetOwnership(ctx, topic)
				if errors.Is(err, metadata.ErrNotFound) {
					return true, nil
				}
				return false, err
			}}
		if o.Registry != nil {
			ac.Registerer = o.Registry
		}
		a := ledger.NewAuditor(o.Ledgers, o.Store, ac)
		every := 10 * time.Second
		if d > 0 {
			every = min(max(d/2, 100*time.Millisecond), every)
		}
		g.Go(func() error { a.Run(gctx, every); return nil })
	}
	if hs != nil {
		g.Go(func() error {
			if err := hs.Serve(o.HTTP); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if o.Ready != nil {
		o.Ready(n)
	}
	g.Go(func() error {
		<-gctx.Done()
		err := n.Close() // unload first: clients are told to look up again
		stopGRPC(gs, 5*time.Second)
		if hs != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		}
		return err
	})
	return g.Wait()
}

// stopGRPC stops gracefully, forcing after d (streams may be long-lived).
func stopGRPC(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		s.Stop()
		<-done
	}
}

// AdvertisedAddr turns a listen address into one clients can dial: an
// unspecified host (":6650", "0.0.0.0:6650") becomes the host name.
func AdvertisedAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "127.0.0.1"
		}
	}
	if _, err := strconv.Atoi(port); err != nil {
		return listen
	}
	return net.JoinHostPort(host, port)
}

// String describes the node for logs.
func (n *Node) String() string {
	return fmt.Sprintf("serving node %s at %s", n.cfg.NodeID, n.cfg.GRPCAddr)
}
