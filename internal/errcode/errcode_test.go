package errcode

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCodeSurvivesGRPCRoundTrip(t *testing.T) {
	for c := range catalogue {
		if c == OK {
			continue
		}
		in := &Error{Code: c, Message: "boom", Redirect: "10.0.0.1:6650", CursorMoved: c%2 == 0}
		out := FromError(ToStatus(fmt.Errorf("ctx: %w", in)))
		var e *Error
		if !errors.As(out, &e) {
			t.Fatalf("%v: decoded %T", c, out)
		}
		if e.Code != c || e.Redirect != in.Redirect || e.CursorMoved != in.CursorMoved {
			t.Fatalf("%v: got code %v redirect %q cursor moved %v", c, e.Code, e.Redirect, e.CursorMoved)
		}
		if !errors.Is(out, New(c, "any message")) {
			t.Fatalf("%v: errors.Is against a sentinel of the same code failed", c)
		}
	}
}

func TestEveryCodeHasNameAndGRPCMapping(t *testing.T) {
	for c, i := range catalogue {
		if i.name == "" {
			t.Errorf("code %d has no name", c)
		}
		if _, ok := grpcCodes[c]; !ok {
			t.Errorf("code %v has no gRPC mapping", c)
		}
	}
}

func TestPlainStatusIsClassifiedByGRPCCode(t *testing.T) {
	err := FromError(status.Error(codes.Unavailable, "connection refused"))
	if CodeOf(err) != Unavailable || !IsRetriable(err) {
		t.Fatalf("got %v", err)
	}
	if CodeOf(FromError(errors.New("plain"))) != Internal {
		t.Fatal("plain error should be Internal")
	}
}

func TestDifferentCodesDoNotMatch(t *testing.T) {
	if errors.Is(New(Fenced, "x"), New(LedgerClosed, "x")) {
		t.Fatal("different codes matched")
	}
}

func TestDecodedErrorTextNamesTheCodeOnce(t *testing.T) {
	out := FromError(ToStatus(New(TopicNotFound, "topic a/b/c not found")))
	if got, want := out.Error(), "strata: TOPIC_NOT_FOUND: topic a/b/c not found"; got != want {
		t.Fatalf("decoded error %q, want %q", got, want)
	}
}

func TestOnlyAStatusCarryingACodeIsAPeersAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"coded status", ToStatus(New(NotEnoughBookies, "2 writable, ensemble of 3")), true},
		{"wrapped coded status", fmt.Errorf("create: %w", ToStatus(New(Unavailable, "x"))), true},
		{"transport status", status.Error(codes.Unavailable, "connection refused"), false},
		{"local error", New(NotEnoughBookies, "x"), false},
		{"nil", nil, false},
	} {
		if got := IsAnswer(tc.err); got != tc.want {
			t.Errorf("%s: IsAnswer = %v, want %v", tc.name, got, tc.want)
		}
	}
}
