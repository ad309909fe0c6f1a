package errcode

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// domain marks ErrorInfo details that carry a Strata code.
const domain = "strata.io"

var grpcCodes = map[Code]codes.Code{
	OK:                   codes.OK,
	Internal:             codes.Internal,
	InvalidArgument:      codes.InvalidArgument,
	TopicNotFound:        codes.NotFound,
	SubscriptionNotFound: codes.NotFound,
	MessageTooLarge:      codes.InvalidArgument,
	InvalidTopicName:     codes.InvalidArgument,
	Fenced:               codes.FailedPrecondition,
	NotOwner:             codes.FailedPrecondition,
	ServiceNotReady:      codes.Unavailable,
	ProducerBusy:         codes.AlreadyExists,
	ProducerQueueFull:    codes.ResourceExhausted,
	LedgerNotFound:       codes.NotFound,
	EntryNotFound:        codes.NotFound,
	Corruption:           codes.DataLoss,
	LedgerClosed:         codes.FailedPrecondition,
	TooManyInFlight:      codes.ResourceExhausted,
	Timeout:              codes.DeadlineExceeded,
	Unavailable:          codes.Unavailable,
	TopicExists:          codes.AlreadyExists,
	ConsumerBusy:         codes.FailedPrecondition,
	InvalidSubscription:  codes.InvalidArgument,
	NamespaceNotFound:    codes.NotFound,
	TopicFenced:          codes.Unavailable,
	NotEnoughBookies:     codes.Unavailable,
	Closed:               codes.Canceled,
	Unimplemented:        codes.Unimplemented,
	InvalidPolicy:        codes.InvalidArgument,
	BadVersion:           codes.Aborted,
	SubscriptionExists:   codes.AlreadyExists,
	BacklogQuotaExceeded: codes.ResourceExhausted,
	Unauthenticated:      codes.Unauthenticated,
	ProducerFenced:       codes.FailedPrecondition,
	NamespaceNotEmpty:    codes.FailedPrecondition,
	Unauthorized:         codes.PermissionDenied,
	TopicTerminated:      codes.FailedPrecondition,
	IncompatibleSchema:   codes.FailedPrecondition,
	BookieReadOnly:       codes.Unavailable,
}

// ToStatus converts err into a gRPC status error carrying its Strata code (and
// redirect address) in an ErrorInfo detail. Context errors map to Timeout and
// Closed. nil stays nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !hasCode(err) {
		return err // already a status from a lower layer
	}
	e := asError(err)
	gc, ok := grpcCodes[e.Code]
	if !ok {
		gc = codes.Unknown
	}
	st := status.New(gc, e.Error())
	md := map[string]string{"code": strconv.FormatUint(uint64(e.Code), 10)}
	if e.Redirect != "" {
		md["redirect"] = e.Redirect
	}
	if e.CursorMoved {
		md["cursor_moved"] = "1"
	}
	if withDetails, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Code.String(), Domain: domain, Metadata: md}); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// FromError converts an error returned by a gRPC call into an *Error. A status
// without a Strata detail is classified by its gRPC code: Unavailable and
// transport failures become Unavailable (retriable), DeadlineExceeded becomes
// Timeout. nil stays nil.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	if hasCode(err) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: Timeout, Message: err.Error()}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: Closed, Message: err.Error()}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: Internal, Message: err.Error()}
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != domain {
			continue
		}
		n, perr := strconv.ParseUint(info.Metadata["code"], 10, 32)
		if perr != nil {
			continue
		}
		msg := strings.TrimPrefix(trimPrefix(st.Message()), Code(n).String()+": ")
		return &Error{Code: Code(n), Message: msg, Redirect: info.Metadata["redirect"], CursorMoved: info.Metadata["cursor_moved"] == "1"}
	}
	switch st.Code() {
	case codes.Unavailable:
		return &Error{Code: Unavailable, Message: st.Message()}
	case codes.DeadlineExceeded:
		return &Error{Code: Timeout, Message: st.Message()}
	case codes.Canceled:
		return &Error{Code: Closed, Message: st.Message()}
	case codes.ResourceExhausted:
		return &Error{Code: TooManyInFlight, Message: st.Message()}
	case codes.Unimplemented:
		return &Error{Code: Unimplemented, Message: st.Message()}
	case codes.InvalidArgument:
		return &Error{Code: InvalidArgument, Message: st.Message()}
	}
	return &Error{Code: Internal, Message: st.Message()}
}

// IsAnswer reports whether err is a gRPC status carrying a Strata code, that
// is the peer's own answer. A refused dial, a broken connection or a deadline
// on the way carries none: it says nothing about the operation itself.
func IsAnswer(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == domain {
			return true
		}
	}
	return false
}

// UnaryServerInterceptor converts every handler error with ToStatus.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		return resp, ToStatus(err)
	}
}

// StreamServerInterceptor converts every stream handler error with ToStatus.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return ToStatus(h(srv, ss))
	}
}

func hasCode(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Message == "" || err.Error() == e.Error() {
			return e
		}
		// keep the wrapping context in the message
		w := *e
		w.Message = trimPrefix(err.Error())
		return &w
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: Timeout, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &Error{Code: Closed, Message: err.Error()}
	}
	return &Error{Code: Internal, Message: err.Error()}
}

func trimPrefix(msg string) string {
	const p = "strata: "
	for len(msg) >= len(p) && msg[:len(p)] == p {
		msg = msg[len(p):]
	}
	return msg
}
