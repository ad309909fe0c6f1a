// Package jetstream is the loadtest driver for NATS JetStream, the peer
// Strata is compared with.
//
// Mapping: one file-storage stream (R1) per topic, named after the topic;
// one subject per partition ("lt.<topic>.<partition>"); one durable pull
// consumer with explicit acks per subscription and partition, filtered on
// the partition's subject. Every subscription type maps to that pull
// consumer (JetStream has no exclusive or failover consumer of the Pulsar
// kind); with one consumer per subscription the delivery order is the same.
// Producers publish asynchronously with a bounded window of pending
// acknowledgements.
//
// Durability is the server's: with defaults ("jetstream") a publish is
// acknowledged once written to the OS page cache and fsync runs every two
// minutes; "jetstream-sync" runs the server with `sync_interval: always`,
// so every write is fsync'd before its acknowledgement.
//
// Unless Config.URL is set the driver starts its own nats-server on a
// random loopback port with a temporary store directory and stops it in
// Close.
package jetstream
