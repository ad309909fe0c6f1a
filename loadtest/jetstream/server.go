package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/strata-mq/strata/loadtest/procs"
)

// BinEnv names the environment variable holding the nats-server binary.
const BinEnv = "STRATA_NATS_BIN"

// ErrNoServerBinary is returned when no nats-server binary can be found.
var ErrNoServerBinary = errors.New("jetstream: nats-server binary not found (run `make tools`, set " + BinEnv + " or put nats-server on PATH)")

// FindServerBinary returns $STRATA_NATS_BIN if it names an executable file,
// else nats-server from PATH, else the one `make tools` installs in
// .cache/bin (of the working directory, or beside bin/strata's checkout).
func FindServerBinary() (string, error) {
	if p := os.Getenv(BinEnv); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	candidates := []string{filepath.Join(".cache", "bin", "nats-server")}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", ".cache", "bin", "nats-server"))
	}
	for _, p := range candidates {
		if isExecutable(p) {
			return filepath.Abs(p)
		}
	}
	return "", ErrNoServerBinary
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return p != "" && err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// server is a nats-server child with a temporary store directory.
type server struct {
	proc *procs.Process
	url  string
	dir  string
}

// serverConfig renders the config file: loopback listener, JetStream with
// the store in dir, and `sync_interval: always` when syncAlways.
func serverConfig(port int, storeDir string, syncAlways bool) string {
	sync := ""
	if syncAlways {
		sync = "  sync_interval: always\n"
	}
	return fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n%s}\n", port, storeDir, sync)
}

// startServer starts nats-server from bin and waits until it accepts
// connections.
func startServer(ctx context.Context, bin string, syncAlways bool, log *slog.Logger) (*server, error) {
	dir, err := os.MkdirTemp("", "strata-loadtest-nats-")
	if err != nil {
		return nil, fmt.Errorf("jetstream: store dir: %w", err)
	}
	s, err := startServerIn(ctx, bin, dir, syncAlways, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func startServerIn(ctx context.Context, bin, dir string, syncAlways bool, log *slog.Logger) (*server, error) {
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(serverConfig(port, filepath.Join(dir, "store"), syncAlways)), 0o644); err != nil {
		return nil, fmt.Errorf("jetstream: config: %w", err)
	}
	p := procs.New(procs.Spec{Name: "nats-server", Path: bin, Args: []string{"-c", conf}, LogDir: dir}, log)
	if err := p.Start(); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rctx, cancel := context.WithTimeout(ctx, procs.ReadyTimeout)
	defer cancel()
	if err := p.ReadyWhile(rctx, func(ctx context.Context) error { return procs.WaitTCP(ctx, addr) }); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("jetstream: nats-server (log in %s): %w", dir, err)
	}
	return &server{proc: p, url: "nats://" + addr, dir: dir}, nil
}

func (s *server) close() error {
	err := s.proc.Stop()
	if rmErr := os.RemoveAll(s.dir); err == nil {
		err = rmErr
	}
	return err
}
