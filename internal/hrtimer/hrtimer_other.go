//go:build !linux

package hrtimer

import (
	"errors"
	"time"
)

// Timer has no implementation off Linux: New always fails.
type Timer struct{}

// New reports that this platform has no high-resolution timer.
func New() (*Timer, error) { return nil, errors.ErrUnsupported }

// Reset does nothing: no Timer is ever made here.
func (t *Timer) Reset(time.Duration) {}

// Wait fails: no Timer is ever made here.
func (t *Timer) Wait() error { return errors.ErrUnsupported }

// Close does nothing: no Timer is ever made here.
func (t *Timer) Close() error { return nil }
