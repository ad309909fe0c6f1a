//go:build !linux

package main

import (
	"errors"
	"time"
)

// setSchedSlice fails off Linux: only Linux's fair scheduler takes a
// custom slice.
func setSchedSlice(time.Duration) (int, error) {
	return 0, errors.New("custom scheduling slices are a Linux feature")
}
