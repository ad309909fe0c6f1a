package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/loadtest"
)

// CheckFits returns an error when the plan's last step (a recovery) falls
// after the producers stop: every fault must be healed while the run can
// still drain, or the verdict would blame the schedule, not the broker.
func CheckFits(steps []Step, w loadtest.Workload) error {
	if len(steps) == 0 {
		return nil
	}
	last := steps[len(steps)-1]
	if end := w.Warmup + w.Duration; last.At >= end {
		return errcode.New(errcode.InvalidArgument,
			"chaos: the schedule's last step (%v) is not before the end of the load (%v): lengthen --duration", last, end)
	}
	return nil
}

// Outcome is a chaos run's result: the load test's and the faults applied.
type Outcome struct {
	Result  *loadtest.Result
	Applied []Applied
}

// RunWithChaos runs workload w through d against cluster c while applying
// steps (offsets from the start of the load). After the load it waits for
// every process to be ready again. The verdict is the load test's: nothing
// acknowledged may be lost or reordered.
func RunWithChaos(ctx context.Context, c *Cluster, d loadtest.Driver, steps []Step, w loadtest.Workload, opts loadtest.RunOptions) (*Outcome, error) {
	if err := CheckFits(steps, w); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	chaosCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg      sync.WaitGroup
		applied []Applied
	)
	start := time.Now()
	wg.Go(func() { applied = Apply(chaosCtx, start, steps, c.Targets(), log) })
	res, runErr := loadtest.Run(ctx, d, w, opts)
	wg.Wait() // the plan ends before the load does (CheckFits)
	out := &Outcome{Result: res, Applied: applied}
	if runErr != nil {
		return out, runErr
	}
	if len(applied) != len(steps) {
		return out, fmt.Errorf("chaos: applied %d of %d steps", len(applied), len(steps))
	}
	return out, c.WaitAllReady(ctx)
}
