package bookie

import (
	"os"
	"runtime"
	"strconv"
)

// ExtraProcs is how many Ps RaiseProcs adds to the CPUs: one for each
// journal goroutine that spends its time in blocking system calls, the
// writer in write(2) and the syncer in fdatasync.
const ExtraProcs = 2

// RaiseProcs sets GOMAXPROCS to the CPUs the process may use plus
// ExtraProcs (the runtime's default plus ExtraProcs, however often it is
// called), unless the GOMAXPROCS environment variable is set, and returns
// the value in effect. `strata bookie` and `strata standalone` call it
// before opening a bookie; it changes the whole process, so a program
// embedding a bookie decides for itself.
//
// Why: a goroutine in a blocking system call keeps its P until sysmon
// takes it back, and sysmon does so only once the call has outlasted one
// of its polling periods, which grow from 20 µs to 10 ms while it finds
// nothing to do. With as many Ps as CPUs (two on this project's
// machines), the writer and the syncer in their system calls hold every P,
// and the goroutines they have just woken (the answers of the adds made
// durable, the handlers with the next group's adds) wait for a call to
// end, while the CPUs idle. At 80,000 adds/s in process that put the p99
// of an add at 5.5–42 ms, against 3.4–4.3 ms with two more Ps
// (docs/bookie.md). The cost: Go would follow a change of the cgroup's
// CPU limit, and a process whose GOMAXPROCS was set stops doing so; and
// under a CPU quota the two extra Ps can run CPU-bound work beyond it.
func RaiseProcs() int {
	// As the runtime reads it: a value that is not a positive number is
	// ignored there, and so here.
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		return runtime.GOMAXPROCS(0)
	}
	runtime.SetDefaultGOMAXPROCS()
	n := runtime.GOMAXPROCS(0) + ExtraProcs
	runtime.GOMAXPROCS(n)
	return n
}
