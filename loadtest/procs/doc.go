// Package procs starts and supervises the server processes a load test
// runs against: a Strata standalone, a nats-server, or the separate
// processes of a local cluster. It owns each child process from Start to
// Stop (no child outlives the Process that started it if Stop is called),
// can SIGKILL, SIGSTOP and SIGCONT it, and restarts it with the same
// command line. Children listen on 127.0.0.1 only; ports come from FreePort.
//
// It does not own what the children do: their readiness is checked by the
// caller-supplied probe (WaitHTTP, WaitTCP).
package procs
