package bookie

import (
	"runtime"
	"testing"
)

func TestRaiseProcsAddsAPForEachJournalGoroutineInASystemCallOnceHoweverOftenCalled(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	for range 3 { // a process may start several bookies, or tests commands
		if got := RaiseProcs(); got != def+ExtraProcs || runtime.GOMAXPROCS(0) != got {
			t.Fatalf("RaiseProcs with a default of %d: returned %d, GOMAXPROCS %d; want %d", def, got, runtime.GOMAXPROCS(0), def+ExtraProcs)
		}
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
