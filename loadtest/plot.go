package loadtest

import (
	"fmt"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// minPlotMs is the floor of the latency axis (log scale cannot show 0).
const minPlotMs = 0.001

// WritePlot writes a PNG with two panels: publish throughput per second,
// and publish and end-to-end latency percentiles (p50, p99) per second, one
// line per driver and series.
func WritePlot(path string, results []*Result) error {
	return writePlot(path, results, vg.Points(900))
}

// writePlot draws a size × size image.
func writePlot(path string, results []*Result, size vg.Length) error {
	tp, err := throughputPlot(results)
	if err != nil {
		return err
	}
	lp, err := latencyPlot(results)
	if err != nil {
		return err
	}
	img := vgimg.New(size, size)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(10), PadBottom: vg.Points(10),
		PadLeft: vg.Points(10), PadRight: vg.Points(10), PadY: vg.Points(20)}
	plots := [][]*plot.Plot{{tp}, {lp}}
	canvases := plot.Align(plots, tiles, dc)
	tp.Draw(canvases[0][0])
	lp.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	return f.Close()
}

func series(r *Result, value func(Interval) float64) plotter.XYs {
	return seriesWhere(r, value, func(Interval) bool { return true })
}

// seriesWhere is the series of the intervals for which keep is true.
func seriesWhere(r *Result, value func(Interval) float64, keep func(Interval) bool) plotter.XYs {
	xys := make(plotter.XYs, 0, len(r.Intervals))
	for _, iv := range r.Intervals {
		if keep(iv) {
			xys = append(xys, plotter.XY{X: iv.ElapsedS, Y: value(iv)})
		}
	}
	return xys
}

func throughputPlot(results []*Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Publish throughput"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "msg/s"
	var lines []any
	for _, r := range results {
		lines = append(lines, r.Driver, series(r, func(iv Interval) float64 { return iv.PublishMsgsPerS }))
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, fmt.Errorf("loadtest: plot: %w", err)
	}
	return p, nil
}

func latencyPlot(results []*Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency percentiles"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	floor := func(v float64) float64 { return max(v, minPlotMs) }
	// Intervals without samples have no latency: leave them out.
	acked := func(iv Interval) bool { return iv.Acked > 0 }
	received := func(iv Interval) bool { return iv.Received > 0 }
	var lines []any
	for _, r := range results {
		lines = append(lines,
			r.Driver+" publish p50", seriesWhere(r, func(iv Interval) float64 { return floor(iv.PublishLatencyMs.P50) }, acked),
			r.Driver+" publish p99", seriesWhere(r, func(iv Interval) float64 { return floor(iv.PublishLatencyMs.P99) }, acked),
			r.Driver+" e2e p50", seriesWhere(r, func(iv Interval) float64 { return floor(iv.EndToEndLatencyMs.P50) }, received),
			r.Driver+" e2e p99", seriesWhere(r, func(iv Interval) float64 { return floor(iv.EndToEndLatencyMs.P99) }, received),
		)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, fmt.Errorf("loadtest: plot: %w", err)
	}
	// A log axis needs a positive range even with no data.
	if math.IsInf(p.Y.Min, 0) || p.Y.Min < minPlotMs {
		p.Y.Min = minPlotMs
	}
	if math.IsInf(p.Y.Max, 0) || p.Y.Max <= p.Y.Min {
		p.Y.Max = 10 * p.Y.Min
	}
	return p, nil
}
