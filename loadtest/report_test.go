package loadtest

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleResult(driver string, msgs float64) *Result {
	return &Result{
		Driver:             driver,
		Durability:         driver + " durability",
		Verification:       Verification{Published: 10, Acked: 10, Received: 10},
		ThroughputMsgsPerS: msgs,
		ThroughputMBPerS:   msgs / 1000,
		PublishLatencyMs:   Percentiles{P50: 1, P99: 2, P999: 3, Max: 4},
		E2ELatencyMs:       Percentiles{P50: 2, P99: 4, P999: 6, Max: 8},
		Intervals: []Interval{
			{ElapsedS: 1, Acked: 5, PublishMsgsPerS: msgs, PublishLatencyMs: Percentiles{P50: 1, P99: 2}},
			{ElapsedS: 2, Received: 5, PublishMsgsPerS: msgs, EndToEndLatencyMs: Percentiles{P50: 2, P99: 3}},
		},
	}
}

func TestJSONHasTheDocumentedFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, []*Result{sampleResult("strata", 100)}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatalf("one driver must give one object: %v", err)
	}
	for _, k := range []string{"driver", "messages_published", "messages_acked", "messages_received", "lost",
		"duplicates", "out_of_order", "throughput_msgs_per_s", "throughput_mb_per_s", "publish_latency_ms", "e2e_latency_ms", "hiccup_ms", "generator_procs", "generator_gogc", "generator_gcs_per_s"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	lat := obj["e2e_latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("e2e_latency_ms.%s missing", k)
		}
	}
}

func TestJSONOfSeveralDriversIsAnArray(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, []*Result{sampleResult("strata", 100), sampleResult("jetstream", 50)}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var arr []map[string]any
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != 2 || arr[1]["driver"] != "jetstream" {
		t.Fatalf("got %s (%v)", b, err)
	}
}

func TestTableShowsDriversSideBySideWithRatioAndDurability(t *testing.T) {
	var buf bytes.Buffer
	failed := sampleResult("jetstream", 50)
	failed.Lost, failed.Failed = 3, true
	if err := WriteTable(&buf, []*Result{sampleResult("strata", 100), failed}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"jetstream/strata", "0.50x", "strata durability: strata durability", "jetstream verdict: FAILED: 3 lost", "strata verdict: OK", "machine hiccup p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPlotWritesAPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	empty := &Result{Driver: "empty"}
	if err := writePlot(path, []*Result{empty}, 250); err != nil {
		t.Fatalf("a run without samples: %v", err)
	}
	if err := writePlot(path, []*Result{sampleResult("strata", 100), sampleResult("jetstream", 50), empty}, 250); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
}

func backlogResult(driver string, caughtUp bool) *Result {
	r := sampleResult(driver, 100)
	r.Backlog = &BacklogResult{
		TargetBytes: 2048, TargetMsgs: 20, Built: true, BuiltMsgs: 21, BuiltBytes: 2100, BuildSeconds: 1.5,
		CaughtUp: caughtUp, CaughtUpMsgs: 2, DrainSeconds: 0.25, BacklogLeftMsgs: 1,
		DrainConsumedMsgs: 45, DrainPublishedMsgs: 25, DrainConsumeMsgsPerS: 180, DrainConsumeMBPerS: 0.018,
		DrainPublishMsgsPerS: 100, NetDrainMsgsPerS: 80, NetDrainMBPerS: 0.008,
		DrainPublishLatencyMs: Percentiles{P50: 1.5, P99: 9.25, P999: 9.5, Max: 9.75},
	}
	return r
}

func TestTableShowsTheBacklogOnlyForBacklogRuns(t *testing.T) {
	var plain, buf bytes.Buffer
	if err := WriteTable(&plain, []*Result{sampleResult("strata", 100)}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "drain") {
		t.Fatalf("a run without a backlog shows drain rows:\n%s", plain.String())
	}
	if err := WriteTable(&buf, []*Result{backlogResult("strata", true), backlogResult("jetstream", false)}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"backlog build time", "net drain rate", "drain publish latency p99", "9.25",
		"strata backlog: built 21 msgs (0.00 MB) in 1.50 s; consumers caught up (1 msgs left) after 0.25 s of drain at 180 msg/s, net 80 msg/s",
		"jetstream backlog: built 21 msgs (0.00 MB) in 1.50 s; consumers NOT caught up"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestJSONHasTheBacklogFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, []*Result{backlogResult("strata", true)}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var obj struct {
		Backlog map[string]any `json:"backlog"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target_bytes", "built", "built_msgs", "built_bytes", "build_seconds", "caught_up",
		"drain_seconds", "backlog_left_msgs", "drain_consume_msgs_per_s", "drain_consume_mb_per_s",
		"drain_publish_msgs_per_s", "net_drain_msgs_per_s", "net_drain_mb_per_s", "drain_publish_latency_ms"} {
		if _, ok := obj.Backlog[k]; !ok {
			t.Errorf("backlog.%s missing", k)
		}
	}
}

func TestProgressLineNamesTheBacklogPhase(t *testing.T) {
	line := ProgressLine("strata", Interval{ElapsedS: 3, Phase: PhaseDrain, BacklogMsgs: 1234, BacklogMB: 1.26})
	for _, want := range []string{"(drain)", "backlog      1234 msgs     1.26 MB"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line lacks %q: %s", want, line)
		}
	}
	if plain := ProgressLine("strata", Interval{ElapsedS: 3}); strings.Contains(plain, "backlog") {
		t.Errorf("a run without a backlog shows one: %s", plain)
	}
}
