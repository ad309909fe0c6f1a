package main

import "testing"

// A cluster started with `strata serve` and no replication flags keeps each
// entry on three bookies and acknowledges it on two: with 1/1/1 defaults a
// user who left the flags out would run a cluster that loses acknowledged
// messages with one disk.
func TestServeDefaultsToThreeBookiesPerEntryAndTwoAcks(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"ensemble": "3", "write-quorum": "3", "ack-quorum": "2"} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("serve has no --%s", flag)
		}
		if f.DefValue != want {
			t.Errorf("serve --%s defaults to %s, want %s", flag, f.DefValue, want)
		}
	}
}
