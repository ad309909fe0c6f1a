package miniotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials and bucket of every server Start runs.
const (
	AccessKey = "strata-test"
	SecretKey = "strata-test-secret"
	Bucket    = "strata"
)

// startTimeout bounds how long a MinIO start may take on a loaded machine.
const startTimeout = 60 * time.Second

// Server is a running MinIO.
type Server struct {
	Endpoint  string // host:port, plain http
	AccessKey string
	SecretKey string
	Bucket    string

	t       testing.TB
	bin     string
	dir     string
	console string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs MinIO, waits until it is live, creates Bucket and registers
// its kill in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("miniotest: no minio binary (set STRATA_MINIO_BIN or run `make tools`)")
		}
		t.Skip("miniotest: no minio binary (set STRATA_MINIO_BIN or run `make tools`)")
	}
	s := &Server{
		Endpoint: freeAddr(t), console: freeAddr(t),
		AccessKey: AccessKey, SecretKey: SecretKey, Bucket: Bucket,
		t: t, bin: bin, dir: t.TempDir(),
	}
	t.Cleanup(s.Stop)
	// A port picked free may be taken before MinIO binds it (another
	// test's process): then pick others, rather than wait for a server
	// that never listens.
	for tries := 1; ; tries++ {
		s.mu.Lock()
		err := s.startLocked()
		s.mu.Unlock()
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || tries == 5 {
			t.Fatalf("miniotest: %v", err)
		}
		s.Endpoint, s.console = freeAddr(t), freeAddr(t)
	}
	s.makeBucket()
	return s
}

// errPortInUse: MinIO could not listen on its address. It logs this and
// stays up without serving, so the log is what says so.
var errPortInUse = errors.New("minio: address already in use")

// Binary returns the path of the minio binary, or "" when there is none.
func Binary() string {
	if p := os.Getenv("STRATA_MINIO_BIN"); p != "" {
		if isExec(p) {
			return p
		}
	}
	if root := moduleRoot(); root != "" {
		if p := filepath.Join(root, ".cache", "bin", "minio"); isExec(p) {
			return p
		}
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		return ""
	}
	return p
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Restart starts the server again after Stop, on the same address and
// data; it is a no-op if the server runs. It returns once MinIO is live.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.startLocked()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("miniotest: %v", err)
		}
		// The port may still be held by the previous process's socket.
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Server) startLocked() error {
	cmd := exec.Command(s.bin, "server", filepath.Join(s.dir, "data"),
		"--address", s.Endpoint, "--console-address", s.console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	logf, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// The log is kept across restarts: only what this start writes counts.
	var from int64
	if st, err := logf.Stat(); err == nil {
		from = st.Size()
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	err = waitLive(s.Endpoint, done, logf.Name(), from)
	if err == nil {
		err = s.waitServing(done)
	}
	// Another MinIO on the port (same keys) answers both probes before
	// ours logs that it could not listen: look again.
	if err == nil && portInUse(logf.Name(), from) {
		err = errPortInUse
	}
	if err != nil {
		cmd.Process.Kill()
		<-done
		log, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
		return fmt.Errorf("%w; log:\n%s", err, tail(log, 2000))
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, its log (from offset from) says it could not listen
// (errPortInUse, also when it exited for that), or startTimeout passes.
func waitLive(addr string, exited <-chan struct{}, logPath string, from int64) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if portInUse(logPath, from) {
			return errPortInUse
		}
		resp, err := client.Get("http://" + addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			if portInUse(logPath, from) {
				return errPortInUse
			}
			return fmt.Errorf("minio exited before it was live")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("minio not live after %v", startTimeout)
}

// portInUse reports whether what the log holds past from says MinIO could
// not listen on its address. It says so in two ways: when it finds the
// port taken before it starts, it logs "Specified port is already in use"
// and exits; when it loses the bind itself, the system's "address already
// in use" and stays up without serving.
func portInUse(logPath string, from int64) bool {
	log, _ := os.ReadFile(logPath)
	if int64(len(log)) <= from {
		return false
	}
	log = log[from:]
	return bytes.Contains(log, []byte("address already in use")) || bytes.Contains(log, []byte("port is already in use"))
}

// waitServing polls an S3 request until it succeeds: MinIO answers the
// liveness probe before it serves requests ("Server not initialized yet").
func (s *Server) waitServing(exited <-chan struct{}) error {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not serving after %v: %v", startTimeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("minio exited before it served requests")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Stop kills the server and waits for it to exit; a no-op if stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Client returns a minio-go client for the server.
func (s *Server) Client() *minio.Client {
	s.t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		s.t.Fatalf("miniotest: %v", err)
	}
	return c
}

// URL returns the server's bucket as an s3:// URL with the given key prefix
// (credentials are not part of it).
func (s *Server) URL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&secure=false", s.Bucket, prefix, s.Endpoint)
}

func (s *Server) makeBucket() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := s.Client()
	if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
		s.t.Fatalf("miniotest: create bucket: %v", err)
	}
}
