package chaos

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest"
	"github.com/strata-mq/strata/loadtest/memdriver"
)

func TestCheckFitsRejectsSchedulesThatOutlastTheLoad(t *testing.T) {
	w := loadtest.DefaultWorkload()
	w.Duration = 10 * time.Second
	steps, _ := Plan(mustParse(t, "kill-bookie@8s"), shape, 1, Defaults{}) // restart at 11s
	if err := CheckFits(steps, w); err == nil {
		t.Fatal("a restart after the end of the load was accepted")
	}
	steps, _ = Plan(mustParse(t, "kill-bookie@5s"), shape, 1, Defaults{})
	if err := CheckFits(steps, w); err != nil {
		t.Fatal(err)
	}
}

// TestRunWithChaosAppliesTheWholePlanDuringTheLoad wires the mode with
// fake cluster processes and the in-memory driver: the plan is applied in
// full while the load runs and the verdict is the load test's.
func TestRunWithChaosAppliesTheWholePlanDuringTheLoad(t *testing.T) {
	t.Setenv(fakeNodeEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c, err := StartLocalCluster(ctx, ClusterConfig{Exe: exe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	steps, err := Plan(mustParse(t, "kill-serving@100ms/200ms,pause-bookie@200ms/200ms"), c.Counts(), 3, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	w := loadtest.DefaultWorkload()
	w.Rate = 200
	w.Duration = time.Second
	w.DrainTimeout = time.Second
	out, err := RunWithChaos(ctx, c, memdriver.New(memdriver.Faults{}), steps, w, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Applied) != 4 || out.Result.Failed || out.Result.Acked == 0 {
		t.Fatalf("applied %v, result %+v", out.Applied, out.Result.Verification)
	}
}

func TestClusterConfigCountsApplyDefaults(t *testing.T) {
	got := ClusterConfig{Serving: 4}.Counts()
	if got[Bookie] != 3 || got[Serving] != 4 {
		t.Fatalf("got %v", got)
	}
}
