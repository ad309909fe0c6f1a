// Package hrtimer is a one-shot timer with the kernel's resolution, for the
// few waits whose lateness shows in a latency figure: a producer's linger
// (client), the hiccup meter's sleep (internal/hiccup), and the pacers of
// the load generator (loadtest) and of the bookie's latency benchmark.
//
// The runtime's own timers are precise in an idle process, but its poller
// sleeps in whole milliseconds (epoll_wait): a deadline less than a
// millisecond away when the poller goes to sleep waits the whole
// millisecond. In a process whose goroutines keep sleeping and waking, a
// 1 ms timer so fires 0.6 ms late at the median and over a millisecond late
// at p90 (Linux, Go 1.26; golang/go#53824 asks for epoll_pwait2). A Timer
// here is a timerfd that the runtime's poller watches: the kernel's
// high-resolution timer makes the descriptor readable, which wakes the
// poller at once, tens of microseconds after the deadline.
//
// Only Linux has one; New fails elsewhere, and callers fall back to the
// runtime's timers.
package hrtimer
