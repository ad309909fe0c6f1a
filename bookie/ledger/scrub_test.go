package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/ledger"
	"github.com/strata-mq/strata/metadata"
)

// flipInJournal flips one bit inside the first copy of want in the
// journal segments of the bookie in dir, in place on its disk, and fails
// the test unless exactly one segment holds it.
func flipInJournal(t *testing.T, dir string, want []byte) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "journal", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, p := range segs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, want)
		if i < 0 {
			continue
		}
		found++
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		at := int64(i + len(want) - 1)
		if _, err := f.WriteAt([]byte{data[at] ^ 0x04}, at); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if found != 1 {
		t.Fatalf("%d journal segments of %s hold the payload, want 1", found, dir)
	}
}

// TestAnEntryDamagedOnOneBookieIsFoundByTheScrubAndCopiedBack: a closed
// ledger on three bookies (E=Qw=3, Qa=2) whose entry rots on one
// bookie's disk after it was acknowledged. The ledger check alone counts
// the damaged copy as held (it asks the index). Once that bookie's scrub
// has read it, the next pass of the check finds it missing there and
// copies it back from another bookie, and the bookie itself serves the
// entry byte-identical again; the metadata does not change, and a later
// pass finds nothing missing.
func TestAnEntryDamagedOnOneBookieIsFoundByTheScrubAndCopiedBack(t *testing.T) {
	c := startCluster(t, 3)
	cl := c.client(t)
	ctx := context.Background()
	l := writeClosed(t, c, cl, ledger.ClusterOptions(), 30)
	tb := c.bookies[1]
	const damaged = 17
	flipInJournal(t, tb.dir, payload(damaged)) // while it runs; nothing reads it

	reg := prometheus.NewRegistry()
	a := ledger.NewAuditor(cl, c.store.(*metadata.Store), ledger.AuditorConfig{Delay: time.Hour, CheckInterval: time.Hour, Registerer: reg})
	start := time.Now()
	a.Round(ctx, start)
	if checked, missing, copied, failures := checkMetrics(t, reg); checked != 1 || missing != 0 || copied != 0 || failures != 0 {
		t.Fatalf("the check before a scrub: checked %v, missing %v, copied %v, failures %v; want the damaged copy counted as held", checked, missing, copied, failures)
	}

	st, err := tb.b.Scrub(ctx)
	if err != nil || st.Entries != 30 || st.Damaged != 1 {
		t.Fatalf("scrub: %+v %v; want 30 entries read, 1 damaged", st, err)
	}
	if _, err := tb.b.Read(l.ID, damaged); !errors.Is(err, bookie.ErrCorruption) {
		t.Fatalf("read of the damaged copy: %v, want corruption", err)
	}
	a.Round(ctx, start.Add(2*time.Hour)) // a new pass
	if checked, missing, copied, failures := checkMetrics(t, reg); checked != 2 || missing != 1 || copied != 1 || failures != 0 {
		t.Fatalf("the check after the scrub: checked %v, missing %v, copied %v, failures %v; want 2, 1, 1, 0", checked, missing, copied, failures)
	}
	got, err := tb.b.Read(l.ID, damaged)
	if err != nil || !bytes.Equal(got.Payload, payload(damaged)) {
		t.Fatalf("the damaged bookie's own copy after the check: %q %v", got.Payload, err)
	}
	checkEveryCopy(t, c, l)
	if st, err := tb.b.Scrub(ctx); err != nil || st.Entries != 30 || st.Damaged != 0 {
		t.Fatalf("scrub after the copy: %+v %v; want 30 entries, none damaged", st, err)
	}
	if stored, err := c.store.GetLedger(ctx, l.ID); err != nil || stored.Version != l.Version {
		t.Fatalf("the check changed the metadata: %+v %v", stored, err)
	}
	a.Round(ctx, start.Add(4*time.Hour))
	if checked, missing, _, _ := checkMetrics(t, reg); checked != 3 || missing != 1 {
		t.Fatalf("a later pass: checked %v, missing %v; want 3 and nothing more missing", checked, missing)
	}
}
