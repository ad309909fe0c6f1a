// Package miniotest runs a real MinIO server for tests: one process per
// Start, on random loopback ports, with its data in the test's temp
// directory, killed in t.Cleanup. Stop and Restart simulate an outage of
// the object store (Restart keeps the port and the data).
//
// The binary is found through the environment variable STRATA_MINIO_BIN
// (the Makefile sets it to .cache/bin/minio), then .cache/bin/minio under
// the module root, then PATH. When none exists the test is skipped, unless
// CI=true, where it fails: CI must never skip the object-store tests.
package miniotest
