package bookie

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/ids"
)

func add(l ids.LedgerID, e ids.EntryID, recovery bool) *request {
	return &request{op: opAdd, ledger: l, entry: e, recovery: recovery}
}

func TestPlanRejectsAddsQueuedAfterAFenceInTheSameGroup(t *testing.T) {
	none := func(ids.LedgerID) (bool, bool) { return false, false }
	group := []*request{
		add(1, 0, false),
		add(2, 0, false),
		{op: opFence, ledger: 1},
		add(1, 1, false), // after the fence: rejected
		add(1, 1, true),  // recovery: accepted
		add(2, 1, false), // other ledger: accepted
		{op: opDelete, ledger: 2},
		add(2, 2, true), // deleted: rejected even for recovery
		{op: opFence, ledger: 2},
	}
	acc, rej := plan(group, none)
	want := []*request{group[0], group[1], group[2], group[4], group[5], group[6]}
	if len(acc) != len(want) {
		t.Fatalf("accepted %d, want %d", len(acc), len(want))
	}
	for i := range want {
		if acc[i] != want[i] {
			t.Fatalf("accepted[%d] = %+v, want %+v", i, acc[i], want[i])
		}
	}
	wantErr := []error{ErrFenced, ErrLedgerNotFound, ErrLedgerNotFound}
	for i, rj := range rej {
		if !errors.Is(rj.err, wantErr[i]) {
			t.Fatalf("rejection %d: %v, want %v", i, rj.err, wantErr[i])
		}
	}
}

func TestPlanUsesDurableFlags(t *testing.T) {
	status := func(l ids.LedgerID) (bool, bool) { return l == 1, l == 2 }
	acc, rej := plan([]*request{add(1, 5, false), add(1, 5, true), add(2, 0, false), add(3, 0, false)}, status)
	if len(acc) != 2 || acc[0].entry != 5 || !acc[0].recovery || acc[1].ledger != 3 || len(rej) != 2 {
		t.Fatalf("accepted %v rejected %v", acc, rej)
	}
}

func TestCollectorStopsAtBytesOrDelay(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := collector{maxBytes: 1000, maxDelay: 2 * time.Millisecond}
	c.reset(t0)
	c.add(&request{payload: make([]byte, 500)})
	if c.full(t0.Add(time.Millisecond)) {
		t.Fatal("full too early")
	}
	if !c.full(t0.Add(2 * time.Millisecond)) {
		t.Fatal("delay bound not applied")
	}
	c.add(&request{payload: make([]byte, 500)})
	if !c.full(t0) {
		t.Fatal("bytes bound not applied")
	}
}
