// Package tiering moves closed ledgers into an object store as Arrow IPC
// segments (package segment), reads them back, and answers "which message
// was the first published at or after time T".
//
// It owns:
//   - Store, the narrow object-store interface, with an S3-compatible
//     implementation over minio-go (S3Store) and a local directory one
//     (DirStore, the standalone default). OpenStore picks one from a URL.
//   - Offloader: reads a closed ledger's entries from an EntrySource, writes
//     its segment objects, reads every object back and verifies it, and
//     returns the metadata.Offload record for the caller to store with a
//     compare-and-swap. It never writes metadata and never deletes from
//     bookies: both are the caller's (the serving tier's) job.
//   - Reader: reads messages of offloaded ledgers by entry range with one
//     range GET per record batch, checksum verified, and read-ahead.
//   - Seeker: the time lookup, a binary search over the ledgers' and the
//     record batches' publish-time ranges kept in metadata, then one range
//     GET. TimeFinder wraps it for the serving tier (PositionAt by topic).
//
// Object keys are <store prefix>/<tenant>/<namespace>/<topic>/<ledger>-<uuid>.arrow
// with the ledger id zero-padded to 20 digits so that a listing is in
// ledger order. Every object gets a fresh uuid (version 7, so the key
// carries its creation time), so a retried offload never overwrites an
// object that an earlier attempt wrote and verified. CollectGarbage deletes
// objects that no metadata names once they are older than a cutoff.
//
// Metrics are created by NewMetrics with the caller's registry and passed
// in through the configs; nothing is global.
//
// Errors carry internal/errcode codes: ErrNotFound (EntryNotFound),
// ErrUnavailable (Unavailable, retriable), ErrCorruption (Corruption),
// ErrInvalidRange and ErrInvalidKey (InvalidArgument).
package tiering
