package bookie

import (
	"fmt"
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

// checkDisk measures the data directory's disk usage and enters or leaves
// read-only mode.
func (b *Bookie) checkDisk() {
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
	ro, _ := b.ReadOnly()
	switch {
	case !ro && usage >= b.cfg.DiskUsageThreshold:
		b.setReadOnly(true, fmt.Sprintf("disk %.1f%% used, at or over the %.1f%% threshold", 100*usage, 100*b.cfg.DiskUsageThreshold))
	case ro && usage < b.cfg.lowWater():
		b.setReadOnly(false, fmt.Sprintf("disk %.1f%% used, under the %.1f%% low-water mark", 100*usage, 100*b.cfg.lowWater()))
	}
}

// setReadOnly enters or leaves read-only mode and wakes whoever waits for
// a change (ReadOnly).
func (b *Bookie) setReadOnly(on bool, why string) {
	b.ro.Lock()
	defer b.ro.Unlock()
	if b.ro.on == on {
		return
	}
	b.ro.on, b.ro.why = on, why
	b.readOnly.Store(on)
	close(b.ro.changed)
	b.ro.changed = make(chan struct{})
	if on {
		b.metrics.readOnly.Set(1)
		b.log.Warn("bookie read-only: new adds are refused until space comes back", "why", why)
	} else {
		b.metrics.readOnly.Set(0)
		b.log.Info("bookie writable again", "why", why)
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

// readOnlyErr is the error refused adds get while read-only.
func (b *Bookie) readOnlyErr() error {
	b.ro.Lock()
	defer b.ro.Unlock()
	return fmt.Errorf("%w: %s", ErrReadOnly, b.ro.why)
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
