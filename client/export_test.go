package client

import "testing"

// UseRuntimeTimers makes the producers started until tb ends wait for their
// lingers on the runtime's timers, as they did before the linger clock's
// timerfd.
func UseRuntimeTimers(tb testing.TB) {
	old := makeWakeTimer
	makeWakeTimer = func(*lingerClock) wakeTimer { return newRuntimeTimer(make(chan struct{}, 1)) }
	tb.Cleanup(func() { makeWakeTimer = old })
}
