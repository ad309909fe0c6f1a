package errcode

import (
	"errors"
	"fmt"
)

// Code is a stable numeric error code shared by servers and clients.
type Code uint32

// The catalogue. Append only; never renumber.
const (
	OK                   Code = 0
	Internal             Code = 1  // a bug or an unexpected failure
	InvalidArgument      Code = 2  // malformed request or frame
	TopicNotFound        Code = 3  // topic does not exist
	SubscriptionNotFound Code = 4  // subscription does not exist
	MessageTooLarge      Code = 5  // message or entry over the size limit
	InvalidTopicName     Code = 6  // name is not tenant/namespace/name
	Fenced               Code = 7  // ledger fenced: the writer lost ownership
	NotOwner             Code = 8  // this node does not own the topic; see Error.Redirect
	ServiceNotReady      Code = 9  // the node or topic is still loading
	ProducerBusy         Code = 10 // a producer with this name is already connected
	ProducerQueueFull    Code = 11 // backpressure: too many pending messages
	LedgerNotFound       Code = 12 // the ledger is unknown or deleted
	EntryNotFound        Code = 13 // the entry is not stored (yet)
	Corruption           Code = 14 // checksum mismatch on disk or in the object store
	LedgerClosed         Code = 15 // the ledger is closed to writes
	TooManyInFlight      Code = 16 // backpressure: per-stream in-flight bytes exceeded
	Timeout              Code = 17 // deadline exceeded
	Unavailable          Code = 18 // a peer or dependency is down
	TopicExists          Code = 19 // create of a topic that exists
	ConsumerBusy         Code = 20 // exclusive subscription already has a consumer
	InvalidSubscription  Code = 21 // unknown subscription type or bad subscription name
	NamespaceNotFound    Code = 22 // namespace has no policy and does not exist
	TopicFenced          Code = 23 // the topic is being taken over or dropped
	NotEnoughBookies     Code = 24 // fewer live bookies than the ensemble needs
	Closed               Code = 25 // the producer, consumer or node is closed
	Unimplemented        Code = 26 // the operation is not implemented by this peer
	InvalidPolicy        Code = 27 // a namespace policy value is out of range
	BadVersion           Code = 28 // a compare-and-swap lost to a concurrent update
	SubscriptionExists   Code = 29 // create of a subscription that exists
	BacklogQuotaExceeded Code = 30 // a subscription's backlog is over its namespace's quota
	Unauthenticated      Code = 31 // the call carries no valid credentials
	ProducerFenced       Code = 32 // another producer has, or wants, the topic to itself
	NamespaceNotEmpty    Code = 33 // delete of a namespace that still has topics
	Unauthorized         Code = 34 // the call's role may not do this
	TopicTerminated      Code = 35 // the topic was terminated: it takes no more messages
	IncompatibleSchema   Code = 36 // a schema the topic's compatibility strategy refuses
	BookieReadOnly       Code = 37 // the bookie takes no new entries: its disk is (nearly) full
)

type info struct {
	name      string
	retriable bool
}

var catalogue = map[Code]info{
	OK:                   {"OK", false},
	Internal:             {"INTERNAL", false},
	InvalidArgument:      {"INVALID_ARGUMENT", false},
	TopicNotFound:        {"TOPIC_NOT_FOUND", false},
	SubscriptionNotFound: {"SUBSCRIPTION_NOT_FOUND", false},
	MessageTooLarge:      {"MESSAGE_TOO_LARGE", false},
	InvalidTopicName:     {"INVALID_TOPIC_NAME", false},
	Fenced:               {"FENCED", false},
	NotOwner:             {"NOT_OWNER", true},
	ServiceNotReady:      {"SERVICE_NOT_READY", true},
	ProducerBusy:         {"PRODUCER_BUSY", true},
	ProducerQueueFull:    {"PRODUCER_QUEUE_FULL", true},
	LedgerNotFound:       {"LEDGER_NOT_FOUND", false},
	EntryNotFound:        {"ENTRY_NOT_FOUND", false},
	Corruption:           {"CORRUPTION", false},
	LedgerClosed:         {"LEDGER_CLOSED", false},
	TooManyInFlight:      {"TOO_MANY_IN_FLIGHT", true},
	Timeout:              {"TIMEOUT", true},
	Unavailable:          {"UNAVAILABLE", true},
	TopicExists:          {"TOPIC_EXISTS", false},
	ConsumerBusy:         {"CONSUMER_BUSY", true},
	InvalidSubscription:  {"INVALID_SUBSCRIPTION", false},
	NamespaceNotFound:    {"NAMESPACE_NOT_FOUND", false},
	TopicFenced:          {"TOPIC_FENCED", true},
	NotEnoughBookies:     {"NOT_ENOUGH_BOOKIES", true},
	Closed:               {"CLOSED", false},
	Unimplemented:        {"UNIMPLEMENTED", false},
	InvalidPolicy:        {"INVALID_POLICY", false},
	BadVersion:           {"BAD_VERSION", true},
	SubscriptionExists:   {"SUBSCRIPTION_EXISTS", false},
	BacklogQuotaExceeded: {"BACKLOG_QUOTA_EXCEEDED", false},
	Unauthenticated:      {"UNAUTHENTICATED", false},
	ProducerFenced:       {"PRODUCER_FENCED", false},
	NamespaceNotEmpty:    {"NAMESPACE_NOT_EMPTY", false},
	Unauthorized:         {"UNAUTHORIZED", false},
	TopicTerminated:      {"TOPIC_TERMINATED", false},
	IncompatibleSchema:   {"INCOMPATIBLE_SCHEMA", false},
	BookieReadOnly:       {"BOOKIE_READ_ONLY", true},
}

// String returns the code's stable upper-case name.
func (c Code) String() string {
	if i, ok := catalogue[c]; ok {
		return i.name
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// Retriable reports whether an operation that failed with c may be retried
// unchanged (possibly after a lookup or a backoff).
func (c Code) Retriable() bool { return catalogue[c].retriable }

// Known reports whether c is in this catalogue.
func (c Code) Known() bool { _, ok := catalogue[c]; return ok }

// Error is an error with a stable code. It is what crosses the wire.
type Error struct {
	Code    Code
	Message string
	// Redirect is the address of the owner when Code is NotOwner (may be empty
	// when the owner is not known yet: the client should look up again).
	Redirect string
	// CursorMoved is set on the error that ends a consumer's stream because
	// its subscription's cursor was moved (an admin reset, another
	// consumer's seek): the acks its client kept to send on the next stream
	// are of messages sent before the move, and must not follow it.
	CursorMoved bool
}

// New returns an *Error with code c and a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "strata: " + e.Code.String()
	}
	return "strata: " + e.Code.String() + ": " + e.Message
}

// Is makes an *Error match any other *Error with the same code, so package
// sentinels built with New compare equal to errors decoded from the wire.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// CodeOf returns the code carried by err: OK for nil, the *Error's code when
// err wraps one, and Internal otherwise.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// IsRetriable reports whether err carries a retriable code.
func IsRetriable(err error) bool { return err != nil && CodeOf(err).Retriable() }
