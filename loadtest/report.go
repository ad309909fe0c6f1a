package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// ProgressLine renders one interval as the one-line progress report. In a
// backlog run it names the phase and shows the backlog.
func ProgressLine(driver string, iv Interval) string {
	var labels []string
	if iv.Warmup {
		labels = append(labels, "warm-up")
	}
	if iv.Phase != "" {
		labels = append(labels, string(iv.Phase))
	}
	phase, backlog := "", ""
	if len(labels) > 0 {
		phase = " (" + strings.Join(labels, ", ") + ")"
	}
	if iv.Phase != "" {
		backlog = fmt.Sprintf("  backlog %9d msgs %8.2f MB", iv.BacklogMsgs, iv.BacklogMB)
	}
	return fmt.Sprintf("[%s] %4.0fs%s  pub %8.0f msg/s %7.2f MB/s  recv %8.0f msg/s%s  pub p99 %7.2f ms  e2e p99 %7.2f ms  send errors %d",
		driver, iv.ElapsedS, phase, iv.PublishMsgsPerS, iv.PublishMBPerS, iv.ReceiveMsgsPerS, backlog,
		iv.PublishLatencyMs.P99, iv.EndToEndLatencyMs.P99, iv.SendErrors)
}

// row is one line of the results table: a label and one value per result.
type row struct {
	label string
	value func(*Result) float64
	unit  string
	// ratio: whether a ratio column makes sense for this row.
	ratio bool
}

var rows = []row{
	{"throughput", func(r *Result) float64 { return r.ThroughputMsgsPerS }, "msg/s", true},
	{"throughput", func(r *Result) float64 { return r.ThroughputMBPerS }, "MB/s", true},
	{"consume throughput", func(r *Result) float64 { return r.ConsumeThroughputMsgsPerS }, "msg/s", true},
	{"publish latency p50", func(r *Result) float64 { return r.PublishLatencyMs.P50 }, "ms", true},
	{"publish latency p99", func(r *Result) float64 { return r.PublishLatencyMs.P99 }, "ms", true},
	{"publish latency p99.9", func(r *Result) float64 { return r.PublishLatencyMs.P999 }, "ms", true},
	{"publish latency max", func(r *Result) float64 { return r.PublishLatencyMs.Max }, "ms", true},
	{"e2e latency p50", func(r *Result) float64 { return r.E2ELatencyMs.P50 }, "ms", true},
	{"e2e latency p99", func(r *Result) float64 { return r.E2ELatencyMs.P99 }, "ms", true},
	{"e2e latency p99.9", func(r *Result) float64 { return r.E2ELatencyMs.P999 }, "ms", true},
	{"e2e latency max", func(r *Result) float64 { return r.E2ELatencyMs.Max }, "ms", true},
	{"machine hiccup p99", func(r *Result) float64 { return r.HiccupMs.P99 }, "ms", false},
	{"machine hiccup p99.9", func(r *Result) float64 { return r.HiccupMs.P999 }, "ms", false},
	{"machine hiccup max", func(r *Result) float64 { return r.HiccupMs.Max }, "ms", false},
	{"load generator GOMAXPROCS", func(r *Result) float64 { return float64(r.GeneratorProcs) }, "procs", false},
	{"load generator GOGC", func(r *Result) float64 { return float64(r.GeneratorGOGC) }, "%", false},
	{"load generator GCs", func(r *Result) float64 { return r.GeneratorGCsPerS }, "per s", false},
	{"published", func(r *Result) float64 { return float64(r.Published) }, "msgs", false},
	{"acknowledged", func(r *Result) float64 { return float64(r.Acked) }, "msgs", false},
	{"unacknowledged", func(r *Result) float64 { return float64(r.Unacked) }, "msgs", false},
	{"received", func(r *Result) float64 { return float64(r.Received) }, "msgs", false},
	{"lost (acked, never received)", func(r *Result) float64 { return float64(r.Lost) }, "msgs", false},
	{"duplicates", func(r *Result) float64 { return float64(r.Duplicates) }, "msgs", false},
	{"out of order", func(r *Result) float64 { return float64(r.OutOfOrder) }, "msgs", false},
	{"unexpected", func(r *Result) float64 { return float64(r.Unexpected) }, "msgs", false},
}

// backlogRows follow rows when the runs built a backlog.
var backlogRows = []row{
	{"backlog built", func(r *Result) float64 { return float64(backlogOf(r).BuiltMsgs) }, "msgs", true},
	{"backlog built", func(r *Result) float64 { return float64(backlogOf(r).BuiltBytes) / 1e6 }, "MB", true},
	{"backlog build time", func(r *Result) float64 { return backlogOf(r).BuildSeconds }, "s", true},
	{"drain time", func(r *Result) float64 { return backlogOf(r).DrainSeconds }, "s", true},
	{"backlog left after drain", func(r *Result) float64 { return float64(backlogOf(r).BacklogLeftMsgs) }, "msgs", false},
	{"drain consume rate", func(r *Result) float64 { return backlogOf(r).DrainConsumeMsgsPerS }, "msg/s", true},
	{"drain consume rate", func(r *Result) float64 { return backlogOf(r).DrainConsumeMBPerS }, "MB/s", true},
	{"drain publish rate", func(r *Result) float64 { return backlogOf(r).DrainPublishMsgsPerS }, "msg/s", true},
	{"net drain rate", func(r *Result) float64 { return backlogOf(r).NetDrainMsgsPerS }, "msg/s", true},
	{"net drain rate", func(r *Result) float64 { return backlogOf(r).NetDrainMBPerS }, "MB/s", true},
	{"drain publish latency p50", func(r *Result) float64 { return backlogOf(r).DrainPublishLatencyMs.P50 }, "ms", true},
	{"drain publish latency p99", func(r *Result) float64 { return backlogOf(r).DrainPublishLatencyMs.P99 }, "ms", true},
	{"drain publish latency p99.9", func(r *Result) float64 { return backlogOf(r).DrainPublishLatencyMs.P999 }, "ms", true},
	{"drain publish latency max", func(r *Result) float64 { return backlogOf(r).DrainPublishLatencyMs.Max }, "ms", true},
}

// backlogOf returns r's backlog figures, zero for a run without one.
func backlogOf(r *Result) BacklogResult {
	if r.Backlog == nil {
		return BacklogResult{}
	}
	return *r.Backlog
}

// tableRows returns the rows for results: the backlog rows too when any
// of them built a backlog.
func tableRows(results []*Result) []row {
	for _, r := range results {
		if r.Backlog != nil {
			return append(slices.Clip(rows), backlogRows...)
		}
	}
	return rows
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "ms", "MB/s", "MB", "s":
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// WriteTable writes the results side by side, one column per driver, and
// for every driver after the first a ratio column (that driver's value over
// the first's), then each driver's durability and verdict.
func WriteTable(out io.Writer, results []*Result) error {
	if len(results) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"metric", "unit"}
	for i, r := range results {
		header = append(header, r.Driver)
		if i > 0 {
			header = append(header, r.Driver+"/"+results[0].Driver)
		}
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, rw := range tableRows(results) {
		cells := []string{rw.label, rw.unit}
		for i, r := range results {
			cells = append(cells, formatValue(rw.value(r), rw.unit))
			if i > 0 {
				cells = append(cells, ratio(rw, r, results[0]))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeVerdicts(out, results)
}

func ratio(rw row, r, base *Result) string {
	b := rw.value(base)
	if !rw.ratio || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", rw.value(r)/b)
}

func writeVerdicts(out io.Writer, results []*Result) error {
	for _, r := range results {
		verdict := "OK: nothing acknowledged was lost or reordered"
		if r.Failed {
			verdict = fmt.Sprintf("FAILED: %d lost, %d out of order, %d unexpected", r.Lost, r.OutOfOrder, r.Unexpected)
		}
		if _, err := fmt.Fprintf(out, "%s durability: %s\n%s verdict: %s\n", r.Driver, r.Durability, r.Driver, verdict); err != nil {
			return err
		}
		if r.Backlog == nil {
			continue
		}
		if _, err := fmt.Fprintf(out, "%s backlog: %s\n", r.Driver, r.Backlog.Verdict()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the result object to path, or an array of them when
// there are several.
func WriteJSON(path string, results []*Result) error {
	var v any = results
	if len(results) == 1 {
		v = results[0]
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("loadtest: json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: write %s: %w", path, err)
	}
	return nil
}
