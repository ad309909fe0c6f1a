package procs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// ReadyTimeout bounds how long a started server may take to become ready.
const ReadyTimeout = 60 * time.Second

// Standalone is a `strata standalone` child on random loopback ports with
// its data in a temporary directory that Close removes.
type Standalone struct {
	Proc     *Process
	GRPCAddr string // 127.0.0.1:port
	HTTPAddr string // 127.0.0.1:port
	dir      string
}

// StartStandalone runs `exe standalone --data-dir D --grpc-addr A --http-addr H
// --bookie-addr B --etcd-addr 127.0.0.1:0 --etcd-peer-addr 127.0.0.1:0` (exe
// is normally os.Executable(); every port random on loopback) and waits
// until GET /readyz answers 200.
func StartStandalone(ctx context.Context, exe string, log *slog.Logger) (*Standalone, error) {
	dir, err := os.MkdirTemp("", "strata-loadtest-standalone-")
	if err != nil {
		return nil, fmt.Errorf("procs: standalone dir: %w", err)
	}
	s, err := startStandaloneIn(ctx, exe, dir, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func startStandaloneIn(ctx context.Context, exe, dir string, log *slog.Logger) (*Standalone, error) {
	grpcPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	bookiePort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Standalone{
		GRPCAddr: fmt.Sprintf("127.0.0.1:%d", grpcPort),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		dir:      dir,
	}
	s.Proc = New(Spec{
		Name: "standalone",
		Path: exe,
		Args: []string{"standalone", "--data-dir", dir + "/data", "--grpc-addr", s.GRPCAddr, "--http-addr", s.HTTPAddr,
			"--bookie-addr", fmt.Sprintf("127.0.0.1:%d", bookiePort),
			"--etcd-addr", "127.0.0.1:0", "--etcd-peer-addr", "127.0.0.1:0"},
		LogDir: dir,
	}, log)
	if err := s.Proc.Start(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	ready := func(ctx context.Context) error { return WaitHTTP(ctx, "http://"+s.HTTPAddr+"/readyz") }
	if err := s.Proc.ReadyWhile(rctx, ready); err != nil {
		_ = s.Proc.Stop()
		return nil, fmt.Errorf("procs: standalone (log in %s/standalone.log): %w", dir, err)
	}
	return s, nil
}

// Close stops the child and removes its directory.
func (s *Standalone) Close() error {
	err := s.Proc.Stop()
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}
