package bookie

import (
	"runtime"
	"testing"
)

func TestRaiseProcsAddsAPForEachJournalGoroutineInASystemCall(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	if got := RaiseProcs(); got != before+ExtraProcs || runtime.GOMAXPROCS(0) != got {
		t.Fatalf("RaiseProcs from %d: returned %d, GOMAXPROCS %d; want %d", before, got, runtime.GOMAXPROCS(0), before+ExtraProcs)
	}
}

func TestRaiseProcsLeavesAnOperatorsGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	if got := RaiseProcs(); got != before || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("RaiseProcs with GOMAXPROCS set: returned %d, GOMAXPROCS %d; want both %d unchanged", got, runtime.GOMAXPROCS(0), before)
	}
}
