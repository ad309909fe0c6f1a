package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// The bounds the kernel puts on a custom slice (sched_setattr(2), Linux
// 6.12 and later): what lies outside is refused here with a clear message
// rather than clamped there without one.
const (
	minSchedSlice = 100 * time.Microsecond
	maxSchedSlice = 100 * time.Millisecond
)

// applySchedSlice runs before every command: with --sched-slice it gives
// every thread of this process (and of the processes it starts, which
// inherit it) that scheduling slice.
//
// Why: the kernel's fair scheduler (EEVDF) lets a thread that wakes on a
// busy CPU preempt the running one sooner when its slice is shorter. A
// publish crosses a dozen goroutine wake-ups in two processes, and on a
// 2-CPU machine at 150,000 msg/s a woken thread can wait up to a default
// slice (1.4 ms there) behind another: with a 100 µs slice for the
// loadtest and the standalone it starts, the publish p99 was lower in twelve
// of thirteen alternating pairs (docs/serving-benchmarks.md). The CPU share is
// unchanged; a thread with a short slice is also preempted sooner.
func applySchedSlice(cmd *cobra.Command, _ []string) error {
	d, err := cmd.Flags().GetDuration("sched-slice")
	if err != nil || d == 0 {
		return err
	}
	if d < minSchedSlice || d > maxSchedSlice {
		return fmt.Errorf("strata: --sched-slice %v is outside %v..%v", d, minSchedSlice, maxSchedSlice)
	}
	n, err := setSchedSlice(d)
	if err != nil {
		return fmt.Errorf("strata: --sched-slice %v: %w", d, err)
	}
	newLogger(cmd).Debug("scheduling slice set", "slice", d, "threads", n)
	return nil
}
