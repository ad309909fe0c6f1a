package bookie

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Read-only mode. A bookie whose disk fills up stops taking new entries
// before its journal cannot make the next segment: over
// Config.DiskUsageThreshold it refuses adds with ErrReadOnly, which a
// ledger writer takes as a failed bookie and replaces (an ensemble
// change), and it says so (ReadOnly, Health) so that its registration
// keeps new ensembles off it (cmd/strata). Fences, deletes, recovery adds
// and compaction still go through: they are small, fencing and recovery
// are what let another owner close a ledger safely, and deletes are how
// space comes back. Below Config.DiskUsageLowWater it takes adds again.
// BookKeeper's bookies do the same (diskUsageThreshold 0.95,
// diskUsageLwmThreshold 0.90).

// diskUsage is the fraction of the file system holding dir that is used,
// as df's Use% counts it: used blocks over used and available ones (the
// blocks reserved for root count in neither).
func diskUsage(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	used := float64(st.Blocks - st.Bfree)
	if used+float64(st.Bavail) == 0 {
		return 0, nil
	}
	return used / (used + float64(st.Bavail)), nil
}

// Causes of read-only mode, each with its own way out.
const (
	// causeDisk: usage at or over the threshold; cleared under the
	// low-water mark (checkDisk).
	causeDisk = iota
	// causeSegment: the journal could not make its next segment; cleared
	// once one is made (createSegment), which the disk check tries again
	// while nothing else would (retrySpare).
	causeSegment
	numCauses
)

// checkDisk measures the data directory's disk usage and enters or leaves
// read-only mode for it; it also retries a spare segment that could not
// be made.
func (b *Bookie) checkDisk() {
	if b.roCause(causeSegment) {
		b.retrySpare()
	}
	if b.cfg.DiskUsageThreshold < 0 {
		return
	}
	measure := diskUsage
	if b.hooks.diskUsage != nil {
		measure = func(string) (float64, error) { return b.hooks.diskUsage() }
	}
	usage, err := measure(b.cfg.DataDir)
	if err != nil {
		b.log.Warn("measuring the data directory's disk usage failed", "err", err)
		return
	}
	b.metrics.diskUsage.Set(usage)
	full := b.roCause(causeDisk)
	switch {
	case !full && usage >= b.cfg.DiskUsageThreshold:
		b.setCause(causeDisk, fmt.Sprintf("disk %.1f%% used, at or over the %.1f%% threshold", 100*usage, 100*b.cfg.DiskUsageThreshold))
	case full && usage < b.cfg.lowWater():
		b.setCause(causeDisk, "")
		b.log.Info("disk usage under the low-water mark", "usage", usage, "low_water", b.cfg.lowWater())
	}
}

// retrySpare tries again to make the spare segment whose creation failed,
// while the bookie is read-only for want of it: no add comes to need a
// rotation meanwhile. The writer's rotation takes whatever it makes.
func (b *Bookie) retrySpare() {
	select {
	case s := <-b.spare:
		if s.err == nil {
			b.spare <- s // made meanwhile (which cleared the cause)
			return
		}
		b.prepareSpare(s.id, false)
	default: // being made, or taken by a rotation
	}
}

// roCause reports whether cause holds.
func (b *Bookie) roCause(cause int) bool {
	b.ro.Lock()
	defer b.ro.Unlock()
	return b.ro.why[cause] != ""
}

// setCause sets why cause holds ("" when it no longer does), entering or
// leaving read-only mode when that changes whether any cause holds, and
// wakes whoever waits for a change (ReadOnly).
func (b *Bookie) setCause(cause int, why string) {
	b.ro.Lock()
	defer b.ro.Unlock()
	if b.ro.why[cause] == why {
		return
	}
	b.ro.why[cause] = why
	on := slices.ContainsFunc(b.ro.why[:], func(w string) bool { return w != "" })
	if on == b.ro.on {
		return
	}
	b.ro.on = on
	b.readOnly.Store(on)
	close(b.ro.changed)
	b.ro.changed = make(chan struct{})
	if on {
		b.metrics.readOnly.Set(1)
		b.log.Warn("bookie read-only: new adds are refused until space comes back", "why", why)
	} else {
		b.metrics.readOnly.Set(0)
		b.log.Info("bookie writable again")
	}
}

// ReadOnly reports whether the bookie refuses new adds (its disk is
// full, or it could not make a journal segment), and returns a channel
// closed at the next change of that state.
func (b *Bookie) ReadOnly() (readOnly bool, changed <-chan struct{}) {
	b.ro.Lock()
	defer b.ro.Unlock()
	return b.ro.on, b.ro.changed
}

// readOnlyErr is the error refused adds get while read-only: why.
func (b *Bookie) readOnlyErr() error {
	b.ro.Lock()
	defer b.ro.Unlock()
	var whys []string
	for _, w := range b.ro.why {
		if w != "" {
			whys = append(whys, w)
		}
	}
	return fmt.Errorf("%w: %s", ErrReadOnly, strings.Join(whys, "; "))
}

// runDiskChecker checks the disk every Config.DiskCheckInterval until
// b.stop closes.
func (b *Bookie) runDiskChecker() {
	defer b.bgWG.Done()
	t := time.NewTicker(b.cfg.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.checkDisk()
		}
	}
}
