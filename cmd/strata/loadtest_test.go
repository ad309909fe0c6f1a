package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/client/fakebroker"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/jetstream"
)

// runStrata executes the strata command line with args.
func runStrata(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestLoadtestRejectsBadFlagsWithInvalidArgument(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "fast"},
		{"--rate", "-5"},
		{"--driver", "kafka"},
		{"--chaos", "kill-bookie@1s"},
		{"--cluster", "remote"},
		{"--size", "10"},
		{"--subscription-type", "fanout"},
		{"--cluster", "local", "--chaos", "kill-bookie@9s", "--duration", "10s"}, // restart at 12s: after the load
		{"--cluster", "local", "--chaos", "kill-zookeeper@1s"},
		{"--procs", "-1"},
		{"--gogc", "-1"},
		{"--backlog", "lots"},
		{"--backlog", "-1"},
		{"--backlog", "1MB", "--rate", "max"},
		{"--backlog", "1MB", "--subscriptions", "0"},
		{"--backlog", "1GB"}, // 1049 s to build at 1000 msg/s in a 10 s load
		{"--backlog", "1MB", "--cluster", "local", "--chaos", "kill-bookie@1s"},
	} {
		_, _, err := runStrata(t, append([]string{"loadtest"}, args...)...)
		if errcode.CodeOf(err) != errcode.InvalidArgument {
			t.Errorf("loadtest %v: %v, want InvalidArgument", args, err)
		}
	}
}

func TestLoadtestStrataDriverWritesTableAndJSON(t *testing.T) {
	b := fakebroker.Start(t, fakebroker.NewCluster())
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	out, stderr, err := runStrata(t, "loadtest", "--url", b.URL(), "--duration", "1s", "--rate", "200",
		"--partitions", "2", "--size", "100", "--max-messages", "400", "--drain-timeout", "5s", "--json", jsonPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "strata verdict: OK") || !strings.Contains(out, "publish latency p99.9") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(stderr, "[strata]") {
		t.Fatalf("no progress line on stderr: %q", stderr)
	}
	var res map[string]any
	raw, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("json: %v\n%s", err, raw)
	}
	if res["driver"] != "strata" || res["lost"].(float64) != 0 || res["messages_acked"].(float64) == 0 {
		t.Fatalf("json: %s", raw)
	}
}

// The generator's own GOMAXPROCS and GOGC are what --procs and --gogc say
// during the run, are reported with its garbage collections, and are the
// caller's again afterwards (tests run the command in process; a real run
// ends with it).
func TestLoadtestProcsAndGOGCSetTheGeneratorsOwnForTheRunOnly(t *testing.T) {
	b := fakebroker.Start(t, fakebroker.NewCluster())
	before := runtime.GOMAXPROCS(0)
	gcBefore := debug.SetGCPercent(-1)
	debug.SetGCPercent(gcBefore)
	want, wantGC := before+1, gcBefore+317
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	out, stderr, err := runStrata(t, "loadtest", "--url", b.URL(), "--procs", strconv.Itoa(want), "--gogc", strconv.Itoa(wantGC),
		"--duration", "1s", "--rate", "200", "--size", "100", "--max-messages", "100", "--drain-timeout", "5s", "--quiet", "--json", jsonPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if after := runtime.GOMAXPROCS(0); after != before {
		t.Errorf("GOMAXPROCS after the run %d, want %d again", after, before)
	}
	if after := debug.SetGCPercent(gcBefore); after != gcBefore {
		t.Errorf("GOGC after the run %d, want %d again", after, gcBefore)
	}
	var res struct {
		GeneratorProcs   int      `json:"generator_procs"`
		GeneratorGOGC    int      `json:"generator_gogc"`
		GeneratorGCsPerS *float64 `json:"generator_gcs_per_s"`
	}
	raw, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(raw, &res); err != nil || res.GeneratorProcs != want || res.GeneratorGOGC != wantGC || res.GeneratorGCsPerS == nil {
		t.Fatalf("generator_procs %d, generator_gogc %d, generator_gcs_per_s %v (err %v), want %d, %d and a rate:\n%s",
			res.GeneratorProcs, res.GeneratorGOGC, res.GeneratorGCsPerS, err, want, wantGC, raw)
	}
	for _, re := range []string{`load generator GOMAXPROCS\s+procs\s+` + strconv.Itoa(want) + `\n`, `load generator GOGC\s+%\s+` + strconv.Itoa(wantGC) + `\n`, `load generator GCs\s+per s\s+[0-9.]+\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table does not match %s:\n%s", re, out)
		}
	}
}

// natsBinary finds nats-server like the jetstream driver's tests do.
func natsBinary(t *testing.T) string {
	t.Helper()
	if p, err := jetstream.FindServerBinary(); err == nil {
		return p
	}
	if p, err := filepath.Abs("../../.cache/bin/nats-server"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nats-server not found and CI=true (run make tools)")
	}
	t.Skip("nats-server not found")
	return ""
}

func TestLoadtestComparesDriversSideBySide(t *testing.T) {
	t.Setenv(jetstream.BinEnv, natsBinary(t))
	b := fakebroker.Start(t, fakebroker.NewCluster())
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	out, stderr, err := runStrata(t, "loadtest", "--driver", "strata,jetstream-sync", "--url", b.URL(),
		"--duration", "1s", "--rate", "100", "--size", "64", "--json", jsonPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "jetstream-sync/strata") || !strings.Contains(out, "jetstream-sync durability: fsync before ack") {
		t.Fatalf("table:\n%s", out)
	}
	var arr []map[string]any
	raw, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 2 {
		t.Fatalf("json array of 2: %v\n%s", err, raw)
	}
}

// Every driver builds the backlog, drains it and catches up, and the table
// and the JSON say so.
func TestLoadtestBacklogRunsOnEveryDriver(t *testing.T) {
	t.Setenv(jetstream.BinEnv, natsBinary(t))
	b := fakebroker.Start(t, fakebroker.NewCluster())
	jsonPath := filepath.Join(t.TempDir(), "r.json")
	out, stderr, err := runStrata(t, "loadtest", "--driver", "strata,jetstream,jetstream-sync", "--url", b.URL(),
		"--backlog", "64KiB", "--size", "128", "--rate", "500", "--duration", "20s", "--quiet", "--json", jsonPath)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, "net drain rate") || strings.Count(out, "consumers caught up") != 3 {
		t.Fatalf("table:\n%s", out)
	}
	var arr []struct {
		Driver  string                  `json:"driver"`
		Lost    uint64                  `json:"lost"`
		Backlog *loadtest.BacklogResult `json:"backlog"`
	}
	raw, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 3 {
		t.Fatalf("json array of 3: %v\n%s", err, raw)
	}
	for _, r := range arr {
		if r.Lost != 0 || r.Backlog == nil || !r.Backlog.Built || !r.Backlog.CaughtUp || r.Backlog.BuiltMsgs < 512 {
			t.Errorf("%s: lost %d, backlog %+v", r.Driver, r.Lost, r.Backlog)
		}
	}
}
