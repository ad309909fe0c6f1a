package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Target is a process that faults can be injected into.
// procs.Process implements it.
type Target interface {
	Kill(ctx context.Context) error
	Pause() error
	Resume() error
	Restart() error
}

// Applied records one step as it was applied.
type Applied struct {
	Step
	// Offset is when it was actually applied, since the start.
	Offset time.Duration
	Err    error
}

// Apply runs steps at their offsets from start, in order, against targets
// (by name), and returns what it did. It returns early, with the steps
// applied so far, when ctx ends; steps after that are not applied, so the
// caller must restore the cluster (for example by stopping it). A step that
// fails is recorded and does not stop the schedule.
func Apply(ctx context.Context, start time.Time, steps []Step, targets map[string]Target, log *slog.Logger) []Applied {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var done []Applied
	for _, s := range steps {
		if err := waitUntil(ctx, start.Add(s.At)); err != nil {
			return done
		}
		err := applyStep(ctx, s, targets)
		a := Applied{Step: s, Offset: time.Since(start), Err: err}
		log.Info("chaos: applied", "step", s.String(), "offset", a.Offset, "err", err)
		done = append(done, a)
	}
	return done
}

func applyStep(ctx context.Context, s Step, targets map[string]Target) error {
	t, ok := targets[s.Target]
	if !ok {
		return fmt.Errorf("chaos: no process %s", s.Target)
	}
	switch s.Action {
	case Kill:
		return t.Kill(ctx)
	case Pause:
		return t.Pause()
	case Resume:
		return t.Resume()
	case Restart:
		return t.Restart()
	}
	return fmt.Errorf("chaos: unknown action %q", s.Action)
}

func waitUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
