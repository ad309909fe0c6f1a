package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBin runs the built strata binary (strataBin, from e2e_test.go) with
// args and returns its stdout, stderr and exit code.
func runBin(t *testing.T, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, strataBin, args...)
	// On timeout, SIGQUIT: the Go runtime prints every goroutine's stack to
	// stderr, which the failure message shows. (Its children die with it:
	// loadtest/procs sets Pdeathsig.)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("strata %v: %v\n%s", args, err, stderr.String())
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

func readResult(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	return res
}

// TestLoadtestAgainstItsOwnStandaloneLosesNothing runs `strata loadtest`
// without --url: it starts a real standalone from its own binary, loads it
// (text payloads, the producers compressing with LZ4), verifies and stops
// it.
func TestLoadtestAgainstItsOwnStandaloneLosesNothing(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := runBin(t, 90*time.Second, "loadtest", "--duration", "2s", "--rate", "200",
		"--partitions", "2", "--size", "256", "--payload", "text", "--compression", "lz4", "--json", jsonPath)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	res := readLosslessResult(t, jsonPath)
	if w, _ := res["workload"].(map[string]any); w["compression"] != "lz4" || w["payload"] != "text" {
		t.Fatalf("workload reported as %v", res["workload"])
	}
}

// TestLoadtestChaosKillsLoseNothingAcknowledged runs the chaos mode on a
// real local cluster (3 bookies, 2 serving nodes, E=3 Qw=3 Qa=2): a bookie
// and a serving node are SIGKILLed and restarted under load, then a serving
// node is frozen with SIGSTOP past its 3 s lease and resumed, and nothing
// acknowledged may be lost or reordered.
func TestLoadtestChaosKillsLoseNothingAcknowledged(t *testing.T) {
	chaosLosesNothing(t, "--duration", "14s", "--rate", "200", "--size", "256",
		"--chaos", "kill-bookie@1s/2s,kill-serving@3s/2s,pause-serving@7s/5s", "--seed", "3")
}

// chaosLosesNothing runs `strata loadtest --cluster local` with args and
// fails unless it exits 0 with acknowledged messages, none lost and none
// out of order.
func chaosLosesNothing(t *testing.T, args ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a five-process cluster")
	}
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	out, stderr, code := runBin(t, 180*time.Second, append(append([]string{"loadtest", "--cluster", "local"}, args...), "--json", jsonPath)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	res := readResult(t, jsonPath)
	if res["lost"].(float64) != 0 || res["out_of_order"].(float64) != 0 || res["messages_acked"].(float64) == 0 {
		t.Fatalf("result %v\n%s", res, stderr)
	}
}

// TestLoadtestChaosKeySharedKeepsEachKeyInOrder runs the chaos mode with a
// key_shared subscription of three consumers over keyed messages: when the
// owning serving node is killed, the topics move and their keys are dealt
// again as the consumers reconnect, and yet nothing acknowledged may be
// lost and no key may be received out of order by any consumer.
func TestLoadtestChaosKeySharedKeepsEachKeyInOrder(t *testing.T) {
	chaosLosesNothing(t, "--duration", "10s", "--rate", "500", "--size", "128", "--partitions", "2",
		"--subscription-type", "key_shared", "--consumers", "3", "--key-distribution", "random", "--keys", "50",
		"--chaos", "kill-serving@2s/2s,kill-serving@6s/2s", "--seed", "5")
}

// TestLoadtestBacklogDrainsOnItsOwnStandalone runs `strata loadtest
// --backlog` against a real standalone: the consumers of a shared
// subscription over two partitions wait while a small backlog is built,
// then drain it while the producers go on, and the run ends once they
// have caught up, long before --duration, with nothing lost.
func TestLoadtestBacklogDrainsOnItsOwnStandalone(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := runBin(t, 120*time.Second, "loadtest", "--backlog", "256KiB", "--size", "256", "--rate", "500",
		"--duration", "60s", "--partitions", "2", "--subscription-type", "shared", "--consumers", "2", "--json", jsonPath)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	res := readLosslessResult(t, jsonPath)
	b, _ := res["backlog"].(map[string]any)
	num := func(k string) float64 { v, _ := b[k].(float64); return v }
	if b["built"] != true || num("target_msgs") != 1024 || num("built_msgs") < 1024 ||
		num("built_bytes") != num("built_msgs")*256 || num("build_seconds") <= 0 {
		t.Fatalf("backlog not built: %v\n%s", b, stderr)
	}
	if b["caught_up"] != true || num("backlog_left_msgs") > num("caught_up_msgs") || num("drain_seconds") <= 0 ||
		num("drain_seconds") >= 60 || num("drain_consumed_msgs") < num("built_msgs")-num("backlog_left_msgs") ||
		num("drain_consume_msgs_per_s") <= 0 || num("drain_consume_mb_per_s") <= 0 || num("net_drain_msgs_per_s") <= 0 {
		t.Fatalf("backlog not drained: %v\n%s", b, stderr)
	}
	if !strings.Contains(stderr, "(build)") {
		t.Fatalf("no progress line of the build:\n%s", stderr)
	}
}

// readLosslessResult reads a loadtest's JSON result and fails t unless
// messages were acknowledged and every one was received, in order.
func readLosslessResult(t *testing.T, path string) map[string]any {
	t.Helper()
	res := readResult(t, path)
	if res["lost"].(float64) != 0 || res["out_of_order"].(float64) != 0 || res["messages_acked"].(float64) == 0 ||
		res["messages_received"].(float64) != res["messages_acked"].(float64) {
		t.Fatalf("result %v", res)
	}
	return res
}
