// Package hiccup measures how late this machine wakes a goroutine: one
// goroutine sleeps a fixed interval over and over and records by how much
// each wake-up overran it, as jHiccup does for the JVM. A publish crosses a
// dozen goroutine wake-ups, so a latency percentile below the machine's own
// hiccup percentile cannot be had on it, whatever the broker does; the
// benchmarks print both side by side. On Linux the sleep is an hrtimer
// (internal/hrtimer): the runtime's own timers would add up to a
// millisecond of their own rounding, which is the process's, not the
// machine's, and which a producer's linger no longer waits on either.
//
// Like jHiccup, a long hiccup is recorded with the samples it hid (a 30 ms
// stall at a 1 ms interval adds samples of 30, 29, ... 1 ms): percentiles
// then read as "the share of time the machine was that late", which is
// what a steady stream of requests would have met.
package hiccup
