package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
)

// Defaults are the recovery delays of events that give no hold.
type Defaults struct {
	// RestartAfter is how long a killed process stays down (default 3s).
	RestartAfter time.Duration
	// PauseFor is how long a paused process stays stopped (default 10s,
	// past the serving nodes' default 3s lease).
	PauseFor time.Duration
}

func (d Defaults) withDefaults() Defaults {
	if d.RestartAfter == 0 {
		d.RestartAfter = 3 * time.Second
	}
	if d.PauseFor == 0 {
		d.PauseFor = 10 * time.Second
	}
	return d
}

// Step is one planned action on one named process.
type Step struct {
	At     time.Duration
	Action Action
	Target string // "<role>-<index>", e.g. "bookie-2"
}

func (s Step) String() string { return fmt.Sprintf("%v %s %s", s.At, s.Action, s.Target) }

// TargetName names process index of role.
func TargetName(r Role, index int) string { return fmt.Sprintf("%s-%d", r, index) }

// downInterval is when a target is killed or paused.
type downInterval struct {
	target   string
	from, to time.Duration
}

// Plan turns events into steps against a cluster with counts[role]
// processes of each role. Events without an index pick, with the seed, a
// process of the role that is up at that offset (any, if none is). Each
// event yields its fault and its recovery; steps are sorted by offset
// (faults before recoveries at equal offsets, then in event order).
func Plan(events []Event, counts map[Role]int, seed uint64, defaults Defaults) ([]Step, error) {
	defaults = defaults.withDefaults()
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	var down []downInterval
	var steps []Step
	for _, e := range events {
		n := counts[e.Role]
		if n == 0 {
			return nil, errcode.New(errcode.InvalidArgument, "chaos: no %s processes in the cluster", e.Role)
		}
		index := e.Index
		if index >= n {
			return nil, errcode.New(errcode.InvalidArgument, "chaos: %s-%d: the cluster has %d", e.Role, index, n)
		}
		if index < 0 {
			index = pick(rng, e.Role, n, e.At, down)
		}
		target := TargetName(e.Role, index)
		hold, recovery := holdOf(e, defaults)
		down = append(down, downInterval{target, e.At, e.At + hold})
		steps = append(steps, Step{e.At, e.Action, target}, Step{e.At + hold, recovery, target})
	}
	sort.SliceStable(steps, func(i, j int) bool {
		if steps[i].At != steps[j].At {
			return steps[i].At < steps[j].At
		}
		return isFault(steps[i].Action) && !isFault(steps[j].Action)
	})
	return steps, nil
}

func holdOf(e Event, d Defaults) (time.Duration, Action) {
	hold, recovery := d.RestartAfter, Restart
	if e.Action == Pause {
		hold, recovery = d.PauseFor, Resume
	}
	if e.Hold > 0 {
		hold = e.Hold
	}
	return hold, recovery
}

func isFault(a Action) bool { return a == Kill || a == Pause }

// pick chooses a process of role up at offset at, or any if all are down.
func pick(rng *rand.Rand, r Role, n int, at time.Duration, down []downInterval) int {
	var up []int
	for i := range n {
		if !isDown(TargetName(r, i), at, down) {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return rng.IntN(n)
	}
	return up[rng.IntN(len(up))]
}

func isDown(target string, at time.Duration, down []downInterval) bool {
	for _, d := range down {
		if d.target == target && at >= d.from && at < d.to {
			return true
		}
	}
	return false
}
