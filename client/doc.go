// Package client is the Go SDK of Strata: a Client that connects to serving
// nodes over gRPC (protocol: serving/servingpb), and the Producer, Consumer,
// Reader and Admin built on it.
//
// # Connecting
//
//	c, err := client.New("strata://127.0.0.1:6650", client.Logger(log))
//	defer c.Close()
//
// The URL lists one or more serving nodes (strata://host:port[,host:port]).
// They are only seeds: a topic is served by its owner, which the client finds
// with the Lookup call and follows when ownership moves (NOT_OWNER with a
// redirect, TOPIC_FENCED, UNAVAILABLE or a broken stream), reconnecting with
// exponential backoff.
//
// # Producing
//
// A Producer batches messages (by delay, count and bytes), sends each batch as
// one entry and resolves the messages in order when the entry is durable.
// Every message gets the next sequence id of the producer; the producer keeps
// its name across reconnects and resends, in order, every message that was not
// acknowledged, so the server's deduplication (producer name + sequence id)
// makes the resend exactly-once in the log. Buffers are bounded by count and
// bytes; a full buffer blocks the sender (until its context ends) unless
// ProducerFailFast is set, in which case the send fails with
// ErrProducerQueueFull.
//
// A partitioned topic (N partitions name-partition-0..N-1) is produced to by
// one partition producer per partition: a message with a key goes to partition
// fnv1a32(key) mod N (stable across processes and versions), a message without
// a key goes to the current round-robin partition, which moves on after each
// batch's worth of messages.
//
// # Consuming
//
// A Consumer subscribes to every partition of a topic and merges them. Each
// partition has a receiver queue of ConsumerReceiverQueueSize messages; the
// client grants the server that many flow permits and grants more each time
// the application has taken half of them. On a broken stream the partition
// consumer reconnects and subscribes again; what it had buffered but not handed
// out is dropped (the server redelivers unacknowledged messages). Individual
// acks are gathered for ConsumerAckGroupingTime and sent together; acks
// that cannot be sent while a partition reconnects, and those sent in the
// second before its stream ended, are kept (bounded) and sent on its next
// stream before its flow, so that the server does not redeliver what they
// acknowledge (acks.go). Nack
// delays, ack timeouts and the dead-letter topic are the consumer's own
// (redelivery.go), as in Pulsar: the server only counts redeliveries.
//
// A Reader is a consumer of a non-durable subscription that starts at the
// earliest or latest message, at a message id or at a time.
//
// # Frozen nodes
//
// A node that is frozen (SIGSTOP, a long GC or VM pause) keeps its TCP
// connections up: its kernel still acknowledges, so streams to it never break
// by themselves. Three bounds get clients off it:
//   - gRPC keepalive: every connection pings after 10 s without traffic and
//     is dropped when a ping goes unanswered for 3 s (serving nodes and
//     bookies permit pings every 5 s, even without streams).
//   - Producers: when the oldest batch in flight has had no receipt for
//     ProducerReceiptTimeout (default 4 s), the producer abandons the stream,
//     looks the topic up again asking the other nodes first, gives the
//     abandoned node at most that timeout to answer a handshake, and resends
//     everything unacknowledged under the same name and sequence ids
//     (deduplicated by the server if the node was merely slow).
//   - Consumers: a stream silent for 4 s makes the consumer look the topic up
//     at another node; if the topic has moved, it subscribes at the new owner.
//
// Each lookup or admin call tries the URL's nodes in turn, each attempt
// bounded by OperationTimeout; a node that failed to answer is tried after
// the others until it answers again.
//
// # Errors
//
// Errors from the server carry a stable code from internal/errcode; the
// package's sentinels (ErrTopicNotFound, ...) match any error of the same code
// with errors.Is, and errors.As(err, new(*client.Error)) gives the code.
//
// # Goroutines
//
// Every goroutine is owned by the Producer, Consumer or Reader that started it
// and is stopped by its Close, which blocks until they exit. Client.Close
// closes every producer, consumer and reader made from it, then the
// connections. Callbacks passed to SendAsync run on the producer's receive
// goroutine, in send order: they must not block, and must not call the
// producer's Close (which waits for that goroutine).
package client
