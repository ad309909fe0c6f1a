// Package chaos injects process faults into a local Strata cluster while a
// load test runs: it parses a schedule, plans it against the cluster's
// processes with a seed, and applies it.
//
// # Schedule syntax
//
// A schedule is a comma-separated list of events:
//
//	<action>-<role>[-<index>]@<offset>[/<hold>]
//
//	action  kill   SIGKILL, then restart after hold (default Defaults.RestartAfter)
//	        pause  SIGSTOP, then SIGCONT after hold (default Defaults.PauseFor,
//	               longer than the serving lease so ownership moves)
//	role    bookie | serving
//	index   which process of the role (0-based); omitted: chosen with the
//	        seed among the processes of the role that are up at that time
//	offset  time since the start of the run (Go duration: 10s, 1m30s)
//	hold    Go duration
//
// Example: kill-bookie@10s,kill-serving@20s,pause-serving-1@30s/12s.
//
// Planning is deterministic: the same schedule, cluster shape and seed give
// the same actions on the same processes at the same offsets. Applying the
// plan is the only part that touches processes, through the Target
// interface (procs.Process implements it).
package chaos
