package procs

import "syscall"

// sysProcAttr puts the child in its own process group (terminal signals
// meant for the load test do not reach it) and has the kernel SIGKILL it
// if the load test dies first, so that no server outlives a crashed or
// killed run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
