package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/loadtest/procs"
)

// strataBin is the strata binary built once for the tests that run it as a
// child process.
var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", strataBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building strata: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddrs returns n loopback addresses with ports that were free a moment
// ago. A process restarted on the same data directory must keep its
// addresses, so ports are chosen up front rather than with port 0, and
// below the ephemeral range (procs.FreePort says why).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var out []string
	for len(out) < n {
		port, err := procs.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[port] {
			seen[port] = true
			out = append(out, fmt.Sprintf("127.0.0.1:%d", port))
		}
	}
	return out
}

// standalone is a `strata standalone` child process.
type standalone struct {
	t                    *testing.T
	dir                  string
	grpc, http, bookie   string
	etcdClient, etcdPeer string
	extraArgs            []string // appended to the standalone command line
	// web, when set, reaches the HTTP port over TLS (--http-tls).
	web      *http.Client
	cmd      *exec.Cmd
	logMu    sync.Mutex
	log      strings.Builder
	waitDone chan struct{}
}

func newStandalone(t *testing.T) *standalone {
	a := freeAddrs(t, 5)
	s := &standalone{t: t, dir: t.TempDir(), grpc: a[0], http: a[1], bookie: a[2], etcdClient: a[3], etcdPeer: a[4]}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			s.logMu.Lock()
			t.Logf("standalone output:\n%s", s.log.String())
			s.logMu.Unlock()
		}
	})
	return s
}

func (s *standalone) url() string { return "strata://" + s.grpc }

// client returns an SDK client of s with opts (the defaults without),
// closed when the test ends.
func (s *standalone) client(opts ...client.Option) *client.Client {
	s.t.Helper()
	c, err := client.New(s.url(), opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// start runs the process and waits until /readyz answers 200.
func (s *standalone) start() {
	s.t.Helper()
	args := []string{"standalone", "--data-dir", s.dir, "--grpc-addr", s.grpc, "--http-addr", s.http,
		"--bookie-addr", s.bookie, "--etcd-addr", s.etcdClient, "--etcd-peer-addr", s.etcdPeer}
	s.cmd = exec.Command(strataBin, append(args, s.extraArgs...)...)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.waitDone = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.logMu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
		}
		s.cmd.Wait()
		close(s.waitDone)
	}()
	waitDone := s.waitDone
	waitFor(s.t, 60*time.Second, "standalone ready", func() bool {
		select {
		case <-waitDone:
			s.t.Fatalf("standalone exited before it was ready")
		default:
		}
		web, scheme := http.DefaultClient, "http://"
		if s.web != nil {
			web, scheme = s.web, "https://"
		}
		resp, err := web.Get(scheme + s.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *standalone) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.waitDone
	s.cmd = nil
}

// stop sends SIGTERM, the graceful stop (the node flushes its cursors and
// hands its topics over), and waits up to a minute for the process to exit.
func (s *standalone) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.waitDone:
		s.cmd = nil
	case <-time.After(time.Minute):
		s.t.Fatal("standalone still running a minute after SIGTERM")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
