package chaos

import (
	"context"
	"os/exec"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest/procs"
)

// recorder is a Target that records the calls made on it.
type recorder struct {
	name  string
	mu    *sync.Mutex
	calls *[]string
}

func (r recorder) rec(a string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.calls = append(*r.calls, a+" "+r.name)
	return nil
}
func (r recorder) Kill(context.Context) error { return r.rec("kill") }
func (r recorder) Pause() error               { return r.rec("pause") }
func (r recorder) Resume() error              { return r.rec("resume") }
func (r recorder) Restart() error             { return r.rec("restart") }

func TestApplyRunsStepsInOrderOnTheirTargets(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	targets := map[string]Target{}
	for _, n := range []string{"bookie-0", "serving-1"} {
		targets[n] = recorder{n, &mu, &calls}
	}
	steps := []Step{
		{0, Kill, "bookie-0"},
		{5 * time.Millisecond, Pause, "serving-1"},
		{10 * time.Millisecond, Restart, "bookie-0"},
		{15 * time.Millisecond, Resume, "serving-1"},
		{20 * time.Millisecond, Kill, "nobody"},
	}
	applied := Apply(context.Background(), time.Now(), steps, targets, nil)
	want := []string{"kill bookie-0", "pause serving-1", "restart bookie-0", "resume serving-1"}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if len(applied) != 5 || applied[4].Err == nil {
		t.Fatalf("unknown target not reported: %+v", applied)
	}
}

func TestApplyStopsWhenTheContextEnds(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	targets := map[string]Target{"bookie-0": recorder{"bookie-0", &mu, &calls}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	applied := Apply(ctx, time.Now(), []Step{{time.Hour, Kill, "bookie-0"}}, targets, nil)
	if len(applied) != 0 || len(calls) != 0 {
		t.Fatalf("applied %v after cancel", applied)
	}
}

// TestApplyKillsPausesAndRestartsRealProcesses drives procs.Process
// children through a plan and checks each ends up running again.
func TestApplyKillsPausesAndRestartsRealProcesses(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	targets := map[string]Target{}
	var ps []*procs.Process
	for i := range 2 {
		p := procs.New(procs.Spec{Name: TargetName(Bookie, i), Path: sh,
			Args: []string{"-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}}, nil)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		targets[p.Name()] = p
		ps = append(ps, p)
	}
	steps, err := Plan(mustParse(t, "kill-bookie-0@0s/50ms,pause-bookie-1@10ms/50ms"), map[Role]int{Bookie: 2}, 1, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, a := range Apply(ctx, time.Now(), steps, targets, nil) {
		if a.Err != nil {
			t.Fatalf("%v: %v", a.Step, a.Err)
		}
	}
	if ps[0].State() != procs.Running || ps[0].Starts() != 2 {
		t.Fatalf("killed process: state %v, starts %d; want running, restarted once", ps[0].State(), ps[0].Starts())
	}
	if ps[1].State() != procs.Running || ps[1].Starts() != 1 {
		t.Fatalf("paused process: state %v, starts %d; want running, never restarted", ps[1].State(), ps[1].Starts())
	}
}
