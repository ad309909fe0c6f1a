package client

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mq/strata/internal/errcode"
)

// Error is the typed error of the SDK: a stable Code from the catalogue shared
// with the server, a message, and for NOT_OWNER the owner's address.
type Error = errcode.Error

// Code is a stable wire error code (see internal/errcode).
type Code = errcode.Code

// Sentinels. Each matches, with errors.Is, every error of the same code,
// including errors decoded from the server.
var (
	// Topics and subscriptions.
	ErrTopicNotFound        = errcode.New(errcode.TopicNotFound, "topic not found")
	ErrTopicExists          = errcode.New(errcode.TopicExists, "topic exists")
	ErrInvalidTopicName     = errcode.New(errcode.InvalidTopicName, "invalid topic name")
	ErrSubscriptionNotFound = errcode.New(errcode.SubscriptionNotFound, "subscription not found")
	ErrSubscriptionExists   = errcode.New(errcode.SubscriptionExists, "subscription exists")
	ErrInvalidSubscription  = errcode.New(errcode.InvalidSubscription, "invalid subscription")
	ErrNamespaceNotFound    = errcode.New(errcode.NamespaceNotFound, "namespace not found")
	ErrNamespaceNotEmpty    = errcode.New(errcode.NamespaceNotEmpty, "namespace not empty")
	ErrInvalidPolicy        = errcode.New(errcode.InvalidPolicy, "invalid policy")

	// Producing.
	ErrMessageTooLarge   = errcode.New(errcode.MessageTooLarge, "message too large")
	ErrProducerQueueFull = errcode.New(errcode.ProducerQueueFull, "producer queue full")
	ErrProducerBusy      = errcode.New(errcode.ProducerBusy, "producer busy")
	// ErrProducerFenced: an exclusive producer could not have the topic to
	// itself, or another producer has it (ProducerAccess).
	ErrProducerFenced = errcode.New(errcode.ProducerFenced, "producer fenced")
	// ErrBacklogQuotaExceeded fails a send while a subscription of the
	// topic holds more backlog than its namespace's quota allows (policy
	// producer_exception); sends succeed again once it is under.
	ErrBacklogQuotaExceeded = errcode.New(errcode.BacklogQuotaExceeded, "backlog quota exceeded")

	// ErrUnauthenticated: the node requires a token (AuthToken) and the
	// call carried none, or one it does not know.
	ErrUnauthenticated = errcode.New(errcode.Unauthenticated, "unauthenticated")
	// ErrUnauthorized: the node checks permissions and the token's role
	// may not do this (a grant of the namespace's produce or consume is
	// missing, or the call is for superusers only).
	ErrUnauthorized = errcode.New(errcode.Unauthorized, "unauthorized")
	// ErrTopicTerminated: the topic was terminated (Admin.TerminateTopic):
	// sends and new producers fail with it, and a consumer's Receive
	// returns it once it has received every message (as io.EOF would).
	ErrTopicTerminated = errcode.New(errcode.TopicTerminated, "topic terminated")
	// ErrIncompatibleSchema: a producer's or consumer's schema, or one
	// uploaded, that the topic's namespace's compatibility strategy
	// refuses, or a producer without a schema where schemas are enforced.
	ErrIncompatibleSchema = errcode.New(errcode.IncompatibleSchema, "incompatible schema")

	// Consuming.
	ErrConsumerBusy = errcode.New(errcode.ConsumerBusy, "consumer busy")

	// Ownership and availability (retriable: the SDK retries them itself).
	ErrNotOwner    = errcode.New(errcode.NotOwner, "not the owner")
	ErrTopicFenced = errcode.New(errcode.TopicFenced, "topic fenced")
	ErrUnavailable = errcode.New(errcode.Unavailable, "unavailable")
	ErrTimeout     = errcode.New(errcode.Timeout, "timeout")

	// Generic.
	ErrInvalidArgument = errcode.New(errcode.InvalidArgument, "invalid argument")
	ErrUnimplemented   = errcode.New(errcode.Unimplemented, "unimplemented")
	ErrInternal        = errcode.New(errcode.Internal, "internal error")

	// ErrClosed is returned by every call on a closed Client, Producer,
	// Consumer or Reader, and given to the callbacks of messages that were not
	// acknowledged when their producer closed.
	ErrClosed = errcode.New(errcode.Closed, "closed")
)

// IsRetriable reports whether err carries a code that may succeed if retried.
func IsRetriable(err error) bool { return errcode.IsRetriable(err) }

// CodeOf returns the code carried by err (OK for nil, Internal for errors
// without one).
func CodeOf(err error) Code { return errcode.CodeOf(err) }

// wireErr decodes an error from a gRPC call, keeping context errors of the
// caller recognisable with errors.Is(err, context.Canceled) as well.
func wireErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errConnClosing) {
		// dropConn closed a connection under a call: another one is dialled
		// on the next try (when the whole client closes, its producers and
		// consumers have stopped first).
		return errcode.New(errcode.Unavailable, "connection closed: %v", err)
	}
	return errcode.FromError(err)
}

// errConnClosing is grpc-go's status for a call on a closed ClientConn.
var errConnClosing = status.Error(codes.Canceled, "grpc: the client connection is closing")

// redirectOf returns the owner's address carried by a NOT_OWNER error.
func redirectOf(err error) (string, bool) {
	var e *errcode.Error
	if errors.As(err, &e) && e.Code == errcode.NotOwner {
		return e.Redirect, true
	}
	return "", false
}

func invalidArg(format string, args ...any) error {
	return errcode.New(errcode.InvalidArgument, format, args...)
}
