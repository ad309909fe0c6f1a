package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSchedSliceOutsideTheKernelsBoundsIsRefused: a value the kernel would
// clamp without a word is refused with the bounds, before anything runs.
func TestSchedSliceOutsideTheKernelsBoundsIsRefused(t *testing.T) {
	for _, v := range []string{"50us", "200ms", "-1ms"} {
		root := newRootCmd()
		root.SetArgs([]string{"--sched-slice", v, "topics", "list", "--url", "strata://127.0.0.1:1"})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "outside 100µs..100ms") {
			t.Errorf("--sched-slice %s: %v, want the bounds refused", v, err)
		}
	}
}

// TestStandaloneWithSchedSliceRunsEveryThreadWithIt: the slice reaches the
// threads the runtime had started before main, and those it starts later.
func TestStandaloneWithSchedSliceRunsEveryThreadWithIt(t *testing.T) {
	if !kernelAtLeast(t, 6, 12) {
		t.Skip("custom scheduling slices need Linux 6.12 or later")
	}
	s := newStandalone(t)
	s.extraArgs = []string{"--sched-slice", "300us"}
	s.start()
	pid := s.cmd.Process.Pid
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 4 {
		t.Fatalf("only %d threads: the check would prove little", len(tasks))
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited since the listing
		}
		if attr.Runtime != 300_000 {
			t.Errorf("thread %d runs with a slice of %d ns, want 300000", tid, attr.Runtime)
		}
	}
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", u.Release, err)
	}
	return ma > major || (ma == major && mi >= minor)
}
