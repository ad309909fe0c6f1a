package procs

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeStandaloneEnv makes the test binary act as `strata standalone`: it
// checks its arguments, creates its data dir, and answers GET /readyz on
// --http-addr until killed.
const fakeStandaloneEnv = "STRATA_PROCS_FAKE_STANDALONE"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeStandaloneEnv) {
	case "1":
		runFakeStandalone(os.Args[1:])
	case "exit":
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func runFakeStandalone(args []string) {
	if len(args) == 0 || args[0] != "standalone" || !strings.HasPrefix(flagValue(args, "--grpc-addr"), "127.0.0.1:") {
		os.Exit(2)
	}
	if err := os.MkdirAll(flagValue(args, "--data-dir"), 0o755); err != nil {
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	_ = http.ListenAndServe(flagValue(args, "--http-addr"), mux)
	os.Exit(2)
}

func TestStartStandaloneWaitsForReadyAndCloseRemovesEverything(t *testing.T) {
	t.Setenv(fakeStandaloneEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartStandalone(ctx, exe, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.HTTPAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("standalone not ready after StartStandalone: %v", err)
	}
	resp.Body.Close()
	if _, err := os.Stat(s.dir + "/data"); err != nil {
		t.Fatalf("data dir not passed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Proc.State() != Stopped {
		t.Fatal("standalone still running after Close")
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s left behind: %v", s.dir, err)
	}
}

func TestStartStandaloneFailsWhenTheProcessNeverGetsReady(t *testing.T) {
	t.Setenv(fakeStandaloneEnv, "exit") // the child exits at once
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartStandalone(ctx, exe, nil)
	if err == nil {
		_ = s.Close()
		t.Fatal("StartStandalone succeeded with a process that never served /readyz")
	}
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("got %v, want the child's exit (ErrNotRunning), not a timeout", err)
	}
}
