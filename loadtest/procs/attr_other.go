//go:build !linux

package procs

import "syscall"

// sysProcAttr puts the child in its own process group. (Only Linux can
// also tie the child's life to the load test's.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
