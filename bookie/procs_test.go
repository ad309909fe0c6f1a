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
	// A value RaiseProcs would never choose, whatever this package's init
	// did: as the runtime would have set it from the variable.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	if got := RaiseProcs(); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("RaiseProcs with GOMAXPROCS=3: returned %d, GOMAXPROCS %d; want both 3", got, runtime.GOMAXPROCS(0))
	}
}

func TestRaiseProcsTreatsAnInvalidGOMAXPROCSAsUnset(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	for _, v := range []string{"0", "-1", "abc"} { // the runtime ignores these
		t.Setenv("GOMAXPROCS", v)
		if got := RaiseProcs(); got != def+ExtraProcs {
			t.Errorf("RaiseProcs with GOMAXPROCS=%q: %d, want %d", v, got, def+ExtraProcs)
		}
	}
}
