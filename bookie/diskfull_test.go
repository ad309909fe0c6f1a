package bookie

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// noSegmentWhile is a createSegment hook that fails every segment
// creation, as a full disk would, while full is set.
func noSegmentWhile(full *atomic.Bool) func(uint32, bool) error {
	return func(uint32, bool) error {
		if full.Load() {
			return errors.New("no space left on device (test)")
		}
		return nil
	}
}

// usageHook is a disk usage the test sets (as a fraction).
type usageHook struct{ bits atomic.Uint64 }

func (u *usageHook) set(f float64)         { u.bits.Store(math.Float64bits(f)) }
func (u *usageHook) get() (float64, error) { return math.Float64frombits(u.bits.Load()), nil }
func (b *Bookie) isReadOnly() bool         { ro, _ := b.ReadOnly(); return ro }
func health(t *testing.T, c bookiepb.BookieClient) *bookiepb.HealthResponse {
	t.Helper()
	h, err := c.Health(context.Background(), &bookiepb.HealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Over the disk usage threshold a bookie refuses new adds with the typed
// BOOKIE_READ_ONLY error (so that writers move to other bookies) and says
// so in Health and ReadOnly, while reads, fences, deletes and recovery
// adds go on; it takes adds again only under the low-water mark, and a
// bookie opened on a full disk starts read-only.
func TestBookieOverTheDiskThresholdRefusesAddsUntilUnderTheLowWaterMark(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	usage := &usageHook{}
	usage.set(0.5)
	b, err := open(cfg, testLogger(t), hooks{diskUsage: usage.get})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c, _ := dial(t, serve(t, b))
	mustAdd(t, b, 1, 0, -1, 100)
	_, changed := b.ReadOnly()

	usage.set(0.96)
	b.checkDisk()
	select {
	case <-changed:
	default:
		t.Fatal("turning read-only did not close the change channel")
	}
	if !b.isReadOnly() || !health(t, c).ReadOnly || !health(t, c).Ready || gaugeValue(b.metrics.readOnly) != 1 || gaugeValue(b.metrics.diskUsage) != 0.96 {
		t.Fatalf("read-only %v, health %+v, gauges %v %v: want read-only (and said so) and still ready", b.isReadOnly(), health(t, c),
			gaugeValue(b.metrics.readOnly), gaugeValue(b.metrics.diskUsage))
	}
	err = b.Add(ctx, Entry{Ledger: 1, ID: 1, LAC: 0, Payload: payload(1, 1, 100)})
	if !errors.Is(err, ErrReadOnly) || errcode.CodeOf(err) != errcode.BookieReadOnly || !errcode.IsRetriable(err) {
		t.Fatalf("an add to a read-only bookie: %v, want a retriable BOOKIE_READ_ONLY", err)
	}
	st, err := c.Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&bookiepb.AddRequest{LedgerId: 1, EntryId: 1, Lac: 0, Payload: []byte("x")})
	if r, err := st.Recv(); err != nil || r.ErrorCode != uint32(errcode.BookieReadOnly) {
		t.Fatalf("an add over gRPC: %+v %v, want BOOKIE_READ_ONLY", r, err)
	}
	mustRead(t, b, 1, 0, 100)
	if err := b.Add(ctx, Entry{Ledger: 2, ID: 0, LAC: -1, Payload: []byte("copy"), Recovery: true}); err != nil {
		t.Fatalf("a recovery add to a read-only bookie: %v", err)
	}
	if _, _, err := b.Fence(ctx, 2); err != nil {
		t.Fatalf("a fence on a read-only bookie: %v", err)
	}
	if err := b.Delete(ctx, 2); err != nil {
		t.Fatalf("a delete on a read-only bookie: %v", err)
	}

	usage.set(0.92) // under the threshold, over the low-water mark
	b.checkDisk()
	if !b.isReadOnly() {
		t.Fatal("writable again above the low-water mark")
	}
	usage.set(0.89)
	b.checkDisk()
	if b.isReadOnly() || health(t, c).ReadOnly || gaugeValue(b.metrics.readOnly) != 0 {
		t.Fatal("still read-only under the low-water mark")
	}
	mustAdd(t, b, 1, 1, 0, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	usage.set(0.99)
	r, err := open(cfg, testLogger(t), hooks{diskUsage: usage.get})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !r.isReadOnly() {
		t.Fatal("a bookie opened on a full disk is not read-only")
	}
	mustRead(t, r, 1, 1, 100)
}

// A journal that cannot make its next segment (a full disk, or a quota
// that df does not show) fails only the adds that needed it, with
// BOOKIE_READ_ONLY, and turns read-only instead of failing for good:
// nothing was written. Fences, deletes and recovery adds still go
// through, in the room new adds leave at the end of each segment. The disk check alone does not end it (usage is low), nor is
// it needed to: once a segment can be made (the disk check retries it)
// adds go on, with the usage check on or off, and every acknowledged add
// reads back, also after a restart.
func TestJournalThatCannotMakeASegmentTurnsReadOnlyAndRecovers(t *testing.T) {
	for _, threshold := range []float64{0, -1} {
		t.Run(fmt.Sprintf("threshold=%v", threshold), func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig(t.TempDir())
			cfg.JournalRecycleSegments = -1
			cfg.DiskUsageThreshold = threshold
			var full atomic.Bool
			usage := &usageHook{}
			usage.set(0.5)
			b, err := open(cfg, testLogger(t), hooks{diskUsage: usage.get, createSegment: noSegmentWhile(&full)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			b.spareWG.Wait() // the first spare is made before the disk fills
			full.Store(true)
			var acked []ids.EntryID
			e := ids.EntryID(0)
			for ; ; e++ {
				err := b.Add(ctx, Entry{Ledger: 3, ID: e, LAC: e - 1, Payload: payload(3, e, 60<<10)})
				if err != nil {
					if !errors.Is(err, ErrReadOnly) {
						t.Fatalf("add %d: %v, want BOOKIE_READ_ONLY once no segment can be made", e, err)
					}
					break
				}
				acked = append(acked, e)
				if e > 100 {
					t.Fatal("no add failed though no segment can be made")
				}
			}
			if !b.isReadOnly() || b.failure() != nil {
				t.Fatalf("read-only %v, journal failure %v: want read-only, not failed", b.isReadOnly(), b.failure())
			}
			if _, _, err := b.Fence(ctx, 99); err != nil {
				t.Fatalf("a fence while no segment can be made: %v", err)
			}
			if err := b.Delete(ctx, 98); err != nil {
				t.Fatalf("a delete while no segment can be made: %v", err)
			}
			if err := b.Add(ctx, Entry{Ledger: 97, ID: 0, LAC: -1, Payload: payload(97, 0, 1<<10), Recovery: true}); err != nil {
				t.Fatalf("a recovery add while no segment can be made: %v", err)
			}
			b.checkDisk()
			if !b.isReadOnly() {
				t.Fatal("the disk check made the bookie writable while no segment can be made")
			}
			full.Store(false)
			for deadline := time.Now().Add(30 * time.Second); b.isReadOnly(); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("still read-only though segments can be made again")
				}
				b.checkDisk()
			}
			for ; e < ids.EntryID(len(acked))+40; e++ {
				mustAdd(t, b, 3, e, e-1, 60<<10) // rotations again
			}
			b = reopen(t, b, false)
			for _, a := range acked {
				mustRead(t, b, 3, a, 60<<10)
			}
			mustRead(t, b, 3, e-1, 60<<10)
		})
	}
}

// The disk usage the bookie measures is df's Use% of the same file system
// (what an operator compares the threshold with).
func TestDiskUsageIsWhatDfReports(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("df", "--output=pcent", dir).Output()
	if err != nil {
		t.Skipf("df: %v", err)
	}
	fields := strings.Fields(string(out))
	pct, err := strconv.Atoi(strings.TrimSuffix(fields[len(fields)-1], "%"))
	if err != nil {
		t.Skipf("df printed %q", out)
	}
	got, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// df rounds up; other writers may move the figure meanwhile.
	if math.Abs(100*got-float64(pct)) > 2 {
		t.Fatalf("disk usage %.2f%%, df says %d%%", 100*got, pct)
	}
}

// A bookie restarted on a disk with no room for a new segment (none free
// to recycle either) still starts: read-only, on its newest segment,
// serving reads and writing fences and deletes after its last record.
// Once there is room again it moves on to new segments by itself, and
// after a restart (from the sealed segments' indexes) everything is there:
// the entries, the fence, the delete.
func TestBookieWithNoRoomForANewSegmentStartsReadOnlyOnItsNewestOne(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.JournalRecycleSegments = -1
	var full atomic.Bool
	h := hooks{createSegment: noSegmentWhile(&full)}
	b, err := open(cfg, testLogger(t), h)
	if err != nil {
		t.Fatal(err)
	}
	for e := range ids.EntryID(5) {
		mustAdd(t, b, 1, e, e-1, 10<<10)
	}
	mustAdd(t, b, 2, 0, -1, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	b, err = open(cfg, testLogger(t), h)
	if err != nil {
		t.Fatalf("open with no room for a new segment: %v", err)
	}
	if !b.isReadOnly() {
		t.Fatal("not read-only without room for a segment")
	}
	for e := range ids.EntryID(5) {
		mustRead(t, b, 1, e, 10<<10)
	}
	if err := b.Add(ctx, Entry{Ledger: 1, ID: 5, LAC: 4, Payload: payload(1, 5, 100)}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("an add: %v, want BOOKIE_READ_ONLY", err)
	}
	// The resumed segment takes nothing past its reserve (the disk may
	// have no more): a recovery add larger than it is refused, and the
	// journal does not fail.
	if err := b.Add(ctx, Entry{Ledger: 4, ID: 0, LAC: -1, Payload: payload(4, 0, 100<<10), Recovery: true}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a recovery add larger than the reserve: %v, want BOOKIE_READ_ONLY", err)
	}
	if _, _, err := b.Fence(ctx, 1); err != nil {
		t.Fatalf("a fence: %v", err)
	}
	if err := b.Delete(ctx, 2); err != nil {
		t.Fatalf("a delete: %v", err)
	}
	if b.failure() != nil {
		t.Fatalf("journal failed: %v", b.failure())
	}
	// Room again, without a restart: the disk check retries the spare,
	// and the writer moves on from the resumed segment, sealing it.
	full.Store(false)
	for deadline := time.Now().Add(30 * time.Second); b.isReadOnly(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still read-only though segments can be made again")
		}
		b.checkDisk()
	}
	for e := range ids.EntryID(30) {
		mustAdd(t, b, 3, e, e-1, 50<<10) // rotations
	}
	if err := b.checkpoint(); err != nil { // the sealed segments' indexes
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = open(cfg, testLogger(t), h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.isReadOnly() {
		t.Fatal("read-only with room again")
	}
	if err := b.Add(ctx, Entry{Ledger: 1, ID: 5, LAC: 4, Payload: payload(1, 5, 100)}); !errors.Is(err, ErrFenced) {
		t.Fatalf("an add to the ledger fenced while read-only: %v, want fenced (the fence was lost)", err)
	}
	if _, err := b.Read(2, 0); !errors.Is(err, ErrLedgerNotFound) {
		t.Fatalf("the ledger deleted while read-only: %v, want not found (the delete was lost)", err)
	}
	for e := range ids.EntryID(5) {
		mustRead(t, b, 1, e, 10<<10)
	}
	for e := range ids.EntryID(30) {
		mustRead(t, b, 3, e, 50<<10)
	}
	mustAdd(t, b, 3, 30, 29, 50<<10)
}
