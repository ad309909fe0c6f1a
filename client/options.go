package client

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/strata-mq/strata/internal/entry"
)

// Option configures a Client (see New).
type Option func(*clientConfig)

type clientConfig struct {
	logger       *slog.Logger
	opTimeout    time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	maxRedirects int
	dialOpts     []grpc.DialOption
	registerer   prometheus.Registerer
	partsRefresh time.Duration
	tlsCAFile    string
	tlsCertFile  string
	tlsKeyFile   string
	tlsConfig    *tls.Config
	authToken    string
}

func defaultClientConfig() clientConfig {
	return clientConfig{
		logger:       slog.New(slog.DiscardHandler),
		opTimeout:    30 * time.Second,
		backoffMin:   100 * time.Millisecond,
		backoffMax:   time.Second,
		maxRedirects: 5,
		partsRefresh: time.Minute,
	}
}

func (c *clientConfig) validate() error {
	switch {
	case c.logger == nil:
		return invalidArg("logger is nil")
	case c.opTimeout <= 0:
		return invalidArg("operation timeout must be positive")
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return invalidArg("reconnect backoff: want 0 < min <= max")
	}
	return nil
}

// PartitionsRefresh sets how often producers and consumers of a
// partitioned topic look for partitions added since they opened
// (Admin.AddPartitions) and start producing to and consuming from them
// (default 1 min, Pulsar's; 0 or less: never).
func PartitionsRefresh(d time.Duration) Option { return func(c *clientConfig) { c.partsRefresh = d } }

// Logger sets the client's logger (default: discard).
func Logger(l *slog.Logger) Option { return func(c *clientConfig) { c.logger = l } }

// OperationTimeout bounds each admin call, lookup and stream handshake whose
// context has no earlier deadline (default 30 s). Calls that may go to any
// node (lookups, most admin calls) bound each node's attempt with it and then
// try the next node of the URL, so one frozen node does not use it all up.
func OperationTimeout(d time.Duration) Option { return func(c *clientConfig) { c.opTimeout = d } }

// ReconnectBackoff sets the exponential backoff between reconnect attempts
// (default 100 ms doubling up to 1 s, with jitter). The cap bounds failover:
// until a dead owner's lease expires, lookups still name it and connecting
// fails, so the first attempt after the topic moves comes up to one cap late
// (docs/serving-benchmarks.md measured p99 5.5-8 s with a 5 s cap, 3.4-3.6 s
// with 500 ms).
func ReconnectBackoff(minDelay, maxDelay time.Duration) Option {
	return func(c *clientConfig) { c.backoffMin, c.backoffMax = minDelay, maxDelay }
}

// DialOptions adds gRPC dial options (for example transport credentials; the
// default is an insecure connection with keepalive pings every 10 s, so a
// connection to a frozen or unreachable node fails within about 13 s).
func DialOptions(opts ...grpc.DialOption) Option {
	return func(c *clientConfig) { c.dialOpts = append(c.dialOpts, opts...) }
}

// ProducerOption configures a Producer (see Client.NewProducer).
type ProducerOption func(*producerConfig)

type producerConfig struct {
	name               string
	linger             time.Duration
	batchMaxMessages   int
	batchMaxBytes      int
	maxPendingMessages int
	maxPendingBytes    int
	failFast           bool
	sendTimeout        time.Duration
	receiptTimeout     time.Duration
	router             MessageRouter
	access             ProducerAccessMode
	compression        Compression
	chunking           bool
	chunkBytes         int
	intercept          []ProducerInterceptor
	schema             *Schema
	encryption         []EncryptionKey
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		linger:             10 * time.Millisecond,
		batchMaxMessages:   1000,
		batchMaxBytes:      128 << 10,
		maxPendingMessages: 5000,
		maxPendingBytes:    64 << 20,
		receiptTimeout:     DefaultProducerReceiptTimeout,
	}
}

func (c *producerConfig) validate() error {
	switch {
	case c.linger < 0:
		return invalidArg("producer linger must not be negative")
	case c.batchMaxMessages < 1 || c.batchMaxBytes < 1:
		return invalidArg("producer batch limits must be positive")
	case c.batchMaxMessages > maxBatchMessages:
		return invalidArg("producer batches hold at most %d messages", maxBatchMessages)
	case c.maxPendingMessages < 1 || c.maxPendingBytes < 1:
		return invalidArg("producer pending limits must be positive")
	case c.sendTimeout < 0:
		return invalidArg("producer send timeout must not be negative")
	case c.receiptTimeout < 0:
		return invalidArg("producer receipt timeout must not be negative")
	case c.access < AccessShared || c.access > AccessExclusiveWithFencing:
		return invalidArg("unknown producer access mode %d", c.access)
	case c.chunkBytes < 0:
		return invalidArg("producer chunk size must not be negative")
	case c.compression < 0 || !entry.Compression(c.compression).Valid():
		return invalidArg("unknown producer compression %d", c.compression)
	}
	return nil
}

// ProducerName sets the producer's name, the key of the server's
// deduplication (default: assigned by the server at the first connect and
// kept across reconnects). A producer that reuses a name continues after the
// highest sequence id the server persisted for it.
func ProducerName(name string) ProducerOption { return func(c *producerConfig) { c.name = name } }

// ProducerLinger sets how long a batch waits for more messages before it is
// sent (default 10 ms; 0 sends as soon as the sender is free).
func ProducerLinger(d time.Duration) ProducerOption { return func(c *producerConfig) { c.linger = d } }

// maxBatchMessages is the protocol's limit on the messages of one batch.
const maxBatchMessages = 100_000

// ProducerBatchMaxMessages caps the messages of one batch (default 1000, at
// most 100,000).
func ProducerBatchMaxMessages(n int) ProducerOption {
	return func(c *producerConfig) { c.batchMaxMessages = n }
}

// ProducerBatchMaxBytes caps the bytes of one batch (default 128 KiB; a
// single larger message is sent alone). Keep it well under the serving
// node's entry limit (5 MiB by default): a batch over it fails whole.
func ProducerBatchMaxBytes(n int) ProducerOption {
	return func(c *producerConfig) { c.batchMaxBytes = n }
}

// ProducerMaxPendingMessages caps, per partition, the messages queued or sent
// but not yet acknowledged (default 5000: five full batches, so that several
// batches are in flight while one is fsync'd; with 1000 only one was, and
// throughput halved, docs/serving-benchmarks.md).
func ProducerMaxPendingMessages(n int) ProducerOption {
	return func(c *producerConfig) { c.maxPendingMessages = n }
}

// ProducerMaxPendingBytes caps, per partition, the payload bytes queued or sent
// but not yet acknowledged (default 64 MiB).
func ProducerMaxPendingBytes(n int) ProducerOption {
	return func(c *producerConfig) { c.maxPendingBytes = n }
}

// ProducerAccessMode says who else may produce to a topic while a producer
// is connected, as Pulsar's.
type ProducerAccessMode int

// Producer access modes.
const (
	// AccessShared lets any number of producers produce (the default).
	AccessShared ProducerAccessMode = iota
	// AccessExclusive makes the producer the topic's only one: NewProducer
	// fails with ErrProducerFenced while another producer is connected, and
	// every producer opened while this one is connected fails likewise. On
	// a partitioned topic it holds every partition. A reconnect that finds
	// another producer in its place fails the producer for good. Close
	// returns once the node has let the producer go (within 2 s), so a
	// successor may open at once.
	AccessExclusive
	// AccessWaitForExclusive is AccessExclusive, but NewProducer waits,
	// in line with others waiting so, until the topic has no producer
	// (bounded by its ctx only, not by the operation timeout), as
	// Pulsar's WaitForExclusive: the first in line takes over when the
	// holder closes or dies, which makes it a leader election among
	// writers. Producers of the other modes are not held back by those
	// waiting and can keep one waiting. A partitioned topic's partitions
	// are taken in index order, so that two such producers never split
	// them. Once it holds the topic, a reconnect that finds another
	// producer in its place fails the producer for good, as with
	// AccessExclusive.
	AccessWaitForExclusive
	// AccessExclusiveWithFencing takes the topic at once, as Pulsar's
	// ExclusiveWithFencing: every producer connected to it (of any mode) is
	// closed for good with ErrProducerFenced, none of its messages not yet
	// accepted by the node is written, and the new producer then holds the
	// topic as with AccessExclusive. For a newly elected leader that must
	// stop its predecessor's writes. A reconnect of the new producer opens
	// as AccessExclusive, so that it cannot fence a later leader.
	AccessExclusiveWithFencing
)

// ProducerAccess sets the producer's access mode (default AccessShared).
func ProducerAccess(m ProducerAccessMode) ProducerOption {
	return func(c *producerConfig) { c.access = m }
}

// Compression is the codec a producer compresses its batches with, as
// Pulsar's CompressionType and Kafka's compression.type.
//
// A batch is compressed as a whole, which is where batching pays twice:
// the more similar messages a batch holds, the fewer bytes go over the
// network, into the bookies' journals and into the object store's
// segments. The serving node stores a batch as it came and consumers
// receive its messages decompressed, so consumers need no setting. A batch
// that would not shrink (random or already compressed payloads) is sent
// uncompressed. Compression runs on the goroutine that cuts batches.
type Compression int

// Producer compression codecs. LZ4 and Snappy cost the least CPU; Zstd
// compresses best for its speed; Zlib is there for those who have it.
const (
	CompressionNone   = Compression(entry.CompressionNone)
	CompressionLZ4    = Compression(entry.CompressionLZ4)
	CompressionZlib   = Compression(entry.CompressionZlib)
	CompressionZstd   = Compression(entry.CompressionZstd)
	CompressionSnappy = Compression(entry.CompressionSnappy)
)

// String returns the codec's name: none, lz4, zlib, zstd or snappy.
func (c Compression) String() string { return entry.Compression(c).String() }

// ParseCompression parses a codec's name as String writes it (any case).
func ParseCompression(s string) (Compression, error) {
	c, err := entry.ParseCompression(s)
	if err != nil {
		return 0, invalidArg("%v", err)
	}
	return Compression(c), nil
}

// ProducerChunking sends a message larger than the topic's message size
// limit as chunks of at most maxChunkBytes (0: the limit itself), each a
// message of its own, which consumers put together again, as Pulsar's
// chunking: for the occasional large payload without a claim check. The
// send's id is the first chunk's. Consumers of Exclusive and Failover
// subscriptions, and readers, hand out the whole message, and its ack or
// nack reaches every chunk; Shared and KeyShared consumers receive the
// chunks as they are (a message's chunks may go to several consumers),
// so use chunking with the others. A consumer holds at most 100 messages
// being put together, and drops one whose next chunk has not come for a
// minute (its producer failed part way, and its send failed with it).
// The retry and dead-letter topics take no chunked message over the
// limit. Without chunking such a message fails with ErrMessageTooLarge.
func ProducerChunking(maxChunkBytes int) ProducerOption {
	return func(c *producerConfig) { c.chunking, c.chunkBytes = true, maxChunkBytes }
}

// ProducerCompression compresses every batch with c (default
// CompressionNone).
func ProducerCompression(c Compression) ProducerOption {
	return func(pc *producerConfig) { pc.compression = c }
}

// MessageRouter picks the partition, in [0, partitions), of a message sent
// to a partitioned topic (Pulsar's MessageRouter, Kafka's Partitioner). It
// is called on the sending goroutine and must be safe for concurrent use.
type MessageRouter func(msg *ProducerMessage, partitions int) int

// ProducerMessageRouter routes the messages of a partitioned topic with r
// instead of the default (the key's hash, PartitionForKey, else
// round-robin by batch). A partition out of range fails the send with
// ErrInvalidArgument. Not called for a topic that is not partitioned.
func ProducerMessageRouter(r MessageRouter) ProducerOption {
	return func(c *producerConfig) { c.router = r }
}

// ProducerFailFast makes Send and SendAsync fail at once with
// ErrProducerQueueFull when the pending limits are reached, instead of
// blocking until room frees up or the context ends (the default).
func ProducerFailFast() ProducerOption { return func(c *producerConfig) { c.failFast = true } }

// ProducerSendTimeout fails, with ErrTimeout, every message not acknowledged
// within d of being sent, whether the producer is connected or not
// (default 0: no timeout, the message is retried until the producer
// closes). A timed-out message may still have been persisted.
func ProducerSendTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.sendTimeout = d }
}

// DefaultProducerReceiptTimeout is the default of ProducerReceiptTimeout.
const DefaultProducerReceiptTimeout = 4 * time.Second

// ProducerReceiptTimeout bounds how long the oldest batch in flight may wait
// for its receipt before the producer holds its connection suspect (default
// 4 s; 0 turns the check off). A suspect connection is abandoned: the
// producer looks the topic up again (asking the other nodes first, and
// giving the suspect node at most d to answer a handshake), reconnects and
// resends every unacknowledged message with the same producer name and
// sequence ids, which the serving node deduplicates. No message fails
// because of it (unlike ProducerSendTimeout). This is what lets a producer
// leave an owner that was frozen (SIGSTOP, a long GC or VM pause): its TCP
// connection stays up, so only a missing receipt, or the gRPC keepalive
// after 10 s + 3 s, reveals it. Keep d above the cluster's p99 write latency,
// or slow writes cause needless reconnects.
func ProducerReceiptTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.receiptTimeout = d }
}

// SubscriptionType is how a subscription dispatches to its consumers.
type SubscriptionType int

// Subscription types.
const (
	Exclusive SubscriptionType = iota // one consumer; others fail with ErrConsumerBusy
	Shared                            // messages spread over the consumers
	Failover                          // one active consumer per partition (see ConsumerName), others on standby
	KeyShared                         // messages of one key go to one consumer
)

func (t SubscriptionType) String() string {
	switch t {
	case Exclusive:
		return "exclusive"
	case Shared:
		return "shared"
	case Failover:
		return "failover"
	case KeyShared:
		return "key_shared"
	}
	return "unknown"
}

// InitialPosition is where a new subscription starts.
type InitialPosition int

// Initial positions.
const (
	Latest   InitialPosition = iota // messages published after the subscription was created (default)
	Earliest                        // the oldest message retained
)

func (p InitialPosition) String() string {
	if p == Earliest {
		return "earliest"
	}
	return "latest"
}

// ConsumerOption configures a Consumer (see Client.Subscribe).
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	subType     SubscriptionType
	position    InitialPosition
	name        string
	queueSize   int
	ackGrouping time.Duration
	nackDelay   time.Duration
	nackMax     time.Duration // with nackDelay: exponential backoff up to it
	ackTimeout  time.Duration
	deadLetter  *DeadLetterPolicy
	retry       *RetryLetterPolicy
	intercept   []ConsumerInterceptor
	discovery   time.Duration // SubscribePattern's
	compacted   bool
	schema      *Schema
	// decryptKeys opens encrypted messages (ConsumerDecryption).
	decryptKeys   DecryptionKeyReader
	cryptoFailure ConsumerCryptoFailureAction
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{subType: Exclusive, position: Latest, queueSize: 1000, ackGrouping: 10 * time.Millisecond, discovery: time.Minute}
}

func (c *consumerConfig) validate() error {
	if c.queueSize < 1 {
		return invalidArg("receiver queue size must be positive")
	}
	if c.ackGrouping < 0 {
		return invalidArg("ack grouping time must not be negative")
	}
	if c.subType < Exclusive || c.subType > KeyShared {
		return invalidArg("unknown subscription type %d", c.subType)
	}
	if c.discovery <= 0 {
		return invalidArg("pattern discovery interval must be positive")
	}
	if c.compacted && c.subType != Exclusive && c.subType != Failover {
		return invalidArg("reading compacted needs an Exclusive or Failover subscription")
	}
	if c.nackDelay < 0 {
		return invalidArg("nack redelivery delay must not be negative")
	}
	if c.nackMax != 0 && (c.nackDelay <= 0 || c.nackMax < c.nackDelay) {
		return invalidArg("nack backoff: want 0 < min <= max")
	}
	if c.ackTimeout != 0 && c.ackTimeout < MinAckTimeout {
		return invalidArg("ack timeout %v: want 0 (off) or at least %v", c.ackTimeout, MinAckTimeout)
	}
	if c.deadLetter != nil && c.deadLetter.MaxDeliveries < 1 {
		return invalidArg("dead-letter policy: MaxDeliveries must be at least 1")
	}
	return nil
}

// ConsumerType sets the subscription type (default Exclusive).
func ConsumerType(t SubscriptionType) ConsumerOption {
	return func(c *consumerConfig) { c.subType = t }
}

// ConsumerInitialPosition sets where the subscription starts when this call
// creates it (default Latest, as in Pulsar). It has no effect on an existing
// subscription.
func ConsumerInitialPosition(p InitialPosition) ConsumerOption {
	return func(c *consumerConfig) { c.position = p }
}

// ConsumerName sets the consumer's name (default: assigned by the server;
// on a Failover subscription, a random one shared by the partitions). A
// Failover subscription delivers each partition to one consumer, chosen by
// name: the consumers sorted by name, the one at the partition's index
// modulo their number (a topic that is not partitioned counts as partition
// 0, so its active consumer is the first by name).
func ConsumerName(name string) ConsumerOption { return func(c *consumerConfig) { c.name = name } }

// ConsumerReadCompacted makes an Exclusive or Failover consumer read the
// topic's compaction first (Pulsar's readCompacted): while its
// subscription's position is before the last compaction's horizon it
// receives only the latest message of each key (with the id it was
// published with; tombstones and keyless messages left out), and the
// messages those superseded count as acknowledged; then the topic as it
// follows. A subscription new at Earliest also gets the latest values of
// keys whose ledgers retention deleted, at least once: until it
// acknowledges a message of a ledger still kept, a restart sends them
// again.
func ConsumerReadCompacted() ConsumerOption { return func(c *consumerConfig) { c.compacted = true } }

// ConsumerPatternDiscovery sets how often a SubscribePattern consumer
// lists its namespace's topics to subscribe to new ones that match and let
// deleted ones go (Pulsar's patternAutoDiscoveryPeriod, default 1 min).
func ConsumerPatternDiscovery(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.discovery = d }
}

// ConsumerReceiverQueueSize sets how many messages each partition may buffer
// in the client: the flow permits granted to the server (default 1000).
func ConsumerReceiverQueueSize(n int) ConsumerOption {
	return func(c *consumerConfig) { c.queueSize = n }
}

// ConsumerAckGroupingTime sets how long individual acks are gathered before
// they are sent as one request (default 10 ms; at most 1000 per request).
// With 0, each Ack is sent at once and returns the send's error; otherwise
// Ack returns once the ack is queued, and an ack lost to a reconnect means
// the message is redelivered. Close sends what is gathered.
func ConsumerAckGroupingTime(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.ackGrouping = d }
}

// ConsumerNackRedeliveryDelay sets how long after Nack the message is
// given back to the subscription for redelivery (default 0: at once).
// Pulsar's default is one minute; a delay keeps a message that fails every
// time from being redelivered in a tight loop. Close drops the nacks still
// waiting: their messages are redelivered anyway, as everything a closing
// consumer did not acknowledge is.
func ConsumerNackRedeliveryDelay(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.nackDelay, c.nackMax = d, 0 }
}

// ConsumerNackBackoff makes the nack delay grow with the message's
// redelivery count, as Pulsar's NackBackoffPolicy (and RocketMQ's retry
// levels): min × 2^RedeliveryCount, at most max. Nack(msg) uses it;
// NackID, which has no count, waits min. It replaces
// ConsumerNackRedeliveryDelay.
func ConsumerNackBackoff(minDelay, maxDelay time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.nackDelay, c.nackMax = minDelay, maxDelay }
}

// MinAckTimeout is the shortest ack timeout ConsumerAckTimeout accepts.
const MinAckTimeout = time.Second

// ConsumerAckTimeout redelivers a message the application took (Receive)
// and did not acknowledge within d, as if it had nacked it: for consumers
// that may hang or lose track of a message. Default 0: off, as in Pulsar;
// at least MinAckTimeout otherwise. The redelivery counts towards a
// DeadLetterPolicy's MaxDeliveries.
func ConsumerAckTimeout(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.ackTimeout = d }
}

// DeadLetterPolicy moves aside a message that keeps failing, so that it does
// not block or circle in its subscription for ever: once the message's
// RedeliveryCount reaches MaxDeliveries, its delivery is not handed out; the
// consumer publishes it to the dead-letter topic and acknowledges it. The
// count is of the times the message was given back: after a Nack, an ack
// timeout, or a consumer that closed, died or reconnected while holding it
// (also unread in its receive queue), as in Pulsar. So the application sees
// a message at most MaxDeliveries times, fewer when it was given back
// without being handed out. The copy keeps the key, payload, event time and
// properties, plus REAL_TOPIC (the topic, or partition, it came from) and
// ORIGIN_MESSAGE_ID, as Pulsar's dead-letter queue does. At-least-once: a
// consumer that dies between the publish and the ack dead-letters the
// message again. Redelivery counts are kept by the topic's serving node and
// start again at 0 after the topic moves to another node.
type DeadLetterPolicy struct {
	// MaxDeliveries is how many times a message is handed to the
	// application at most. At least 1.
	MaxDeliveries uint32
	// Topic receives the dead letters. Default: "<topic>-<subscription>-DLQ"
	// (Pulsar's naming), which must then be a valid topic name.
	Topic string
}

// ConsumerDeadLetterPolicy sets a dead-letter policy (default: none, a
// message is redelivered for as long as it is not acknowledged).
func ConsumerDeadLetterPolicy(p DeadLetterPolicy) ConsumerOption {
	return func(c *consumerConfig) { c.deadLetter = &p }
}

// RetryLetterPolicy gives a consumer a retry-letter topic, as Pulsar's
// retry-letter topic: Consumer.ReconsumeLater publishes a copy of a message
// there, due after a delay, and acknowledges the original; the consumer
// also consumes the retry topic (a Shared subscription of the same name, or
// KeyShared when the consumer's is), so the copy comes back to it, or to
// any consumer of the subscription, once due. Unlike a Nack, the delay is
// kept by the broker (it survives a restart of the consumer) and the
// message holds none of the consumer's unacknowledged budget meanwhile.
// The copy keeps the key, payload, event time and properties, plus
// RECONSUMETIMES (1 for the first retry), DELAY_TIME (milliseconds),
// REAL_TOPIC and ORIGIN_MESSAGE_ID (those of the first delivery).
type RetryLetterPolicy struct {
	// Topic receives the retries. Default: "<topic>-<subscription>-RETRY"
	// (Pulsar's naming), which must then be a valid topic name.
	Topic string
	// MaxReconsumes bounds the retries of one message: a ReconsumeLater of
	// a message already retried that many times publishes it to the
	// dead-letter topic instead (DeadLetterPolicy.Topic, or its default
	// name). 0: no bound.
	MaxReconsumes uint32
}

// ConsumerRetryLetter sets a retry-letter policy (default: none;
// ReconsumeLater then fails with ErrInvalidArgument).
func ConsumerRetryLetter(p RetryLetterPolicy) ConsumerOption {
	return func(c *consumerConfig) { c.retry = &p }
}

// Properties a dead-letter or retry copy carries besides the original's.
const (
	PropertyRealTopic       = "REAL_TOPIC"
	PropertyOriginMessageID = "ORIGIN_MESSAGE_ID"
	PropertyReconsumeTimes  = "RECONSUMETIMES"
	PropertyDelayTime       = "DELAY_TIME"
)

// ReaderOption configures a Reader (see Client.NewReader).
type ReaderOption func(*readerConfig)

type readerConfig struct {
	position  InitialPosition
	startID   *MessageID
	startTime time.Time
	name      string
	queueSize int
	compacted bool
	// decryptKeys opens encrypted messages (ReaderDecryption).
	decryptKeys   DecryptionKeyReader
	cryptoFailure ConsumerCryptoFailureAction
}

func defaultReaderConfig() readerConfig {
	return readerConfig{position: Earliest, queueSize: 1000}
}

func (c *readerConfig) validate() error {
	if c.queueSize < 1 {
		return invalidArg("receiver queue size must be positive")
	}
	if c.startID != nil && !c.startTime.IsZero() {
		return invalidArg("reader: set a start message id or a start time, not both")
	}
	if c.compacted && (c.startID != nil || !c.startTime.IsZero() || c.position != Earliest) {
		return invalidArg("reader: a compacted read starts at the earliest message")
	}
	return nil
}

// ReaderReadCompacted makes the reader, which must start at the earliest
// message, read the topic's compaction first (Admin.CompactTopic: the
// latest message of each key up to the compaction's horizon, with the ids
// they were published with) and then the topic after the horizon, as
// Pulsar's readCompacted: the latest value of every key, even of keys
// whose ledgers retention has deleted. The compacted messages are read
// into memory when the reader opens. A Seek drops those not read yet.
func ReaderReadCompacted() ReaderOption { return func(c *readerConfig) { c.compacted = true } }

// ReaderStartEarliest starts the reader at the oldest retained message (the
// default).
func ReaderStartEarliest() ReaderOption {
	return func(c *readerConfig) { c.position, c.startID, c.startTime = Earliest, nil, time.Time{} }
}

// ReaderStartLatest starts the reader after the last published message.
func ReaderStartLatest() ReaderOption {
	return func(c *readerConfig) { c.position, c.startID, c.startTime = Latest, nil, time.Time{} }
}

// ReaderStartMessageID starts the reader at id, inclusive (on a partitioned
// topic, in id.Partition; the other partitions start at the earliest).
func ReaderStartMessageID(id MessageID) ReaderOption {
	return func(c *readerConfig) { c.startID, c.startTime = &id, time.Time{} }
}

// ReaderStartTime starts the reader at the first message published at or
// after t (the end of the topic when there is none).
func ReaderStartTime(t time.Time) ReaderOption {
	return func(c *readerConfig) { c.startTime, c.startID = t, nil }
}

// ReaderName sets the reader's consumer name (default: assigned).
func ReaderName(name string) ReaderOption { return func(c *readerConfig) { c.name = name } }

// ReaderReceiverQueueSize sets the per-partition receiver queue (default 1000).
func ReaderReceiverQueueSize(n int) ReaderOption { return func(c *readerConfig) { c.queueSize = n } }
