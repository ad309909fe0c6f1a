// Package fakebroker is an in-memory servingpb.BrokerServer for the client
// package's unit tests, served over real gRPC on 127.0.0.1.
//
// A Cluster holds the state every fake broker shares (topics and their logs,
// producer deduplication, subscriptions, ownership); a Broker is one node of
// it with fault hooks: hold receipts, drop the receipt of a persisted batch
// and break the stream, break every stream, move a topic to another node
// (its streams end with NOT_OWNER and a redirect). Brokers record what they
// received (batches, flow permits, acks, producer opens) for assertions.
//
// It implements the protocol's happy path faithfully enough to exercise the
// SDK — one entry per batch, receipts in order, deduplication by producer
// name and sequence id, flow permits, redelivery of unacknowledged messages
// on resubscribe — and nothing of a real node's storage. It is not the
// serving node and must never be the only test of a path.
package fakebroker
