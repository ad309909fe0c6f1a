package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// errSliceIgnored reports a kernel that took the slice and kept its own:
// one older than 6.12, whose fair scheduler has no custom slices.
var errSliceIgnored = errors.New("this kernel keeps its own scheduling slice (custom slices need Linux 6.12 or later)")

// setSchedSlice sets the slice of every thread of the process, keeping each
// thread's policy and nice value, and returns how many it set. Threads the
// runtime starts later are cloned from these and inherit it; one started
// during a pass, by a thread not yet set, is caught by the next pass.
func setSchedSlice(d time.Duration) (int, error) {
	total := 0
	for range 10 {
		n, err := setSchedSliceOnce(d)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// setSchedSliceOnce sets the slice of each thread listed now that does not
// have it yet, and returns how many it set.
func setSchedSliceOnce(d time.Duration) (int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // the thread has exited since the listing
		}
		if err != nil {
			return n, fmt.Errorf("sched_getattr of thread %d: %w", tid, err)
		}
		if attr.Runtime == uint64(d) {
			continue
		}
		attr.Runtime = uint64(d)
		attr.Flags &= unix.SCHED_FLAG_RESET_ON_FORK // the only flag that is a setting of the thread's own
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			return n, fmt.Errorf("sched_setattr of thread %d: %w", tid, err)
		}
		if got, err := unix.SchedGetAttr(tid, 0); err == nil && got.Runtime != uint64(d) {
			return n, errSliceIgnored
		}
		n++
	}
	return n, nil
}
