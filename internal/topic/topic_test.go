package topic

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
)

func TestParseAcceptsFullAndBareNames(t *testing.T) {
	for in, want := range map[string]string{
		"orders":                 "public/default/orders",
		"acme/prod/orders.v1":    "acme/prod/orders.v1",
		"a/b/c-partition-3":      "a/b/c-partition-3",
		"t_1/ns-2/Name_With.Dot": "t_1/ns-2/Name_With.Dot",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseRejectsInvalidNamesWithTypedError(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'x'
	}
	for _, in := range []string{"", "a/b", "a/b/c/d", "a//c", "a/b/c d", "a/b/ü", "../b/c", "a/b/c:1", string(long)} {
		if _, err := Parse(in); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Parse(%q) = %v; want ErrInvalidName", in, err)
		}
	}
}

func TestPartitionNamesRoundTrip(t *testing.T) {
	n, _ := Parse("a/b/c")
	p := n.Partition(7)
	idx, parent := p.PartitionIndex()
	if idx != 7 || parent != n || p.String() != "a/b/c-partition-7" {
		t.Fatalf("got %v %v %v", p, idx, parent)
	}
	if idx, _ := n.PartitionIndex(); idx != -1 {
		t.Fatalf("non-partition reported index %d", idx)
	}
}

func TestCheckSubscriptionRefusesNamesNoCursorKeyCanHold(t *testing.T) {
	for _, ok := range []string{"s", "billing-v2", "with space", "ünïcode", strings.Repeat("x", MaxSubscriptionBytes)} {
		if err := CheckSubscription(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxSubscriptionBytes+1), "a/b", "tab\there", "del\x7f"} {
		if err := CheckSubscription(bad); errcode.CodeOf(err) != errcode.InvalidSubscription {
			t.Errorf("%q: %v, want INVALID_SUBSCRIPTION", bad, err)
		}
	}
}
