// Package loadtest generates load against a message broker and verifies
// what came back.
//
// It owns the workload description (Workload), the driver abstraction over a
// broker (Driver, Producer, Consumer), the run loop (Run), the latency and
// throughput statistics (HDR histograms, one interval per second), the
// delivery verifier (Verifier) and the reports (table, JSON, PNG plot). It
// does not own any broker: drivers live in subpackages (loadtest/jetstream,
// loadtest/stratadriver) and processes are started by loadtest/procs and
// loadtest/chaos.
//
// # Payload format
//
// Every message carries a fixed header followed by filler up to the
// configured size (a window of Workload.Payload's filler at a random
// offset; all integers little endian):
//
//	offset  size  field
//	0       4     magic "SLT1"
//	4       4     producer id (uint32, unique within a run)
//	8       4     partition (uint32)
//	12      8     sequence number (uint64, gap-free per producer and partition, from 0)
//	20      8     send time (int64, Unix nanoseconds, from the producer's clock)
//
// HeaderSize (28) is therefore the smallest message size.
//
// # Verification
//
// Producers register every send with the Verifier before it leaves, and
// every acknowledgement or failure when it comes back. Consumers feed every
// received header to it. Per subscription, producer and partition it reports:
//
//   - lost: acknowledged by the broker but never received;
//   - duplicates: received more than once;
//   - out_of_order: a first receipt of a sequence number lower than one the
//     same consumer already received from the same producer and partition;
//   - unacked: sends that failed or were never acknowledged (these are not
//     losses: the broker never promised them).
//
// A run fails (Result.Failed) when anything acknowledged was lost or
// reordered.
//
// # Backlog runs
//
// With Workload.BacklogBytes the consumers wait while the producers build
// a backlog (acknowledged messages not yet received, counted once per
// subscription that lacks them), then drain it while the producers keep
// to their rate; the load ends once they have caught up or the duration
// has passed (backlog.go). The verifier checks such a run as any other.
package loadtest
