package loadtest

import "context"

// Driver is one broker under test. A run calls Setup once, then opens
// producers and consumers, and finally Close.
type Driver interface {
	// Name is the driver's name as given to --driver ("strata", "jetstream").
	Name() string
	// Durability states in one line what an acknowledgement guarantees
	// (for example "fsync on Qa bookies before ack").
	Durability() string
	// Setup creates the workload's topics (each with w.Partitions
	// partitions) and anything else the broker needs before producers and
	// consumers attach.
	Setup(ctx context.Context, w Workload, topics []string) error
	// NewProducer opens a producer on one partition of topic.
	NewProducer(ctx context.Context, topic string, partition int) (Producer, error)
	// NewConsumer opens a consumer of subscription sub on one partition of
	// topic. Consumers are opened before any producer sends.
	NewConsumer(ctx context.Context, topic string, partition int, sub string, typ SubscriptionType) (Consumer, error)
	// Close releases every connection and whatever Setup started.
	Close() error
}

// Producer sends to one partition.
type Producer interface {
	// SendAsync hands the message to the broker and returns; done is called
	// exactly once, from any goroutine, with nil on acknowledgement or the
	// send's error. SendAsync blocks while the producer's window of pending
	// messages is full; cancelling ctx makes it return ctx's error without
	// sending (done is then not called).
	SendAsync(ctx context.Context, key string, payload []byte, done func(error)) error
	// Flush waits until done was called for every message sent so far or ctx
	// ends.
	Flush(ctx context.Context) error
	// Close releases the producer; pending sends complete or fail first.
	Close() error
}

// Consumer receives from one partition of a subscription.
type Consumer interface {
	// Receive blocks until a message arrives or ctx ends (then it returns
	// ctx's error).
	Receive(ctx context.Context) (Message, error)
	// Close releases the consumer.
	Close() error
}

// Message is a received message.
type Message struct {
	Payload []byte
	// Key is the message's key: order is checked per key on key_shared
	// subscriptions (Verifier.OrderPerKey).
	Key string
	// Ack acknowledges the message to its subscription.
	Ack func(ctx context.Context) error
}
