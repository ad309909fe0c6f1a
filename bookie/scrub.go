package bookie

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/internal/ids"
)

// The scrubber, as BookKeeper's local scrub (localScrubPeriod,
// LedgerStorage.localConsistencyCheck). A record that rots on the disk
// after it was acknowledged is otherwise found only when something reads
// it, and the auditor's ledger check, which asks the bookie's index what
// it holds, counts it as held: the ledger runs a copy short unseen. A
// pass reads every entry the index holds back from the journal, at
// Config.ScrubBytesPerSecond, and checks its record (readRecord: CRC, and
// that it is the entry asked for); one that fails is marked damaged in the
// index, which leaves it out of ListEntries, so the next ledger check
// copies it back from another bookie and the copy replaces it.

// ScrubStats is what one scrub pass did.
type ScrubStats struct {
	Entries int   // entries read back and checked
	Bytes   int64 // their records' bytes
	Damaged int   // entries whose record failed, marked damaged
}

// scrubBatch bounds the entries a pass takes from the index under one
// hold of its lock, so that the syncer, which updates the index after
// each fdatasync, is not held up.
const scrubBatch = 1024

// scrubBurst is how far ahead of its rate the scrubber may read: enough
// that small records are not read one timer wake-up each.
const scrubBurst = 1 << 20

// Scrub runs one scrub pass now: it reads back every entry the index
// holds (not those already marked damaged) and marks damaged those whose
// record fails its check, at Config.ScrubBytesPerSecond. It waits first
// for a pass under way (the periodic one) to end. Cancelling ctx stops the
// wait or the pass; so does Close (ErrClosed). Entries added during the
// pass may or may not be read; entries deleted during it are skipped.
func (b *Bookie) Scrub(ctx context.Context) (ScrubStats, error) {
	select {
	case b.scrubSem <- struct{}{}:
	case <-ctx.Done():
		return ScrubStats{}, ctx.Err()
	case <-b.stop:
		return ScrubStats{}, ErrClosed
	}
	defer func() { <-b.scrubSem }()
	return b.scrub(ctx)
}

func (b *Bookie) scrub(ctx context.Context) (ScrubStats, error) {
	var st ScrubStats
	p := pacer{rate: float64(b.cfg.ScrubBytesPerSecond), burst: scrubBurst, tokens: scrubBurst, last: b.scrubNow()}
	var buf []byte
	var batch []index.EntryLoc
	for first := ids.LedgerID(1); first != 0; {
		var ls []ids.LedgerID
		ls, first = b.ListLedgers(first)
		for _, l := range ls {
			for from := ids.EntryID(0); from >= 0; {
				batch, from = b.scrubEntries(batch[:0], l, from)
				for _, el := range batch {
					n := int(el.Loc.Len)
					if err := b.scrubWait(ctx, p.take(b.scrubNow(), n)); err != nil {
						return st, err
					}
					buf = slices.Grow(buf[:0], n)[:n]
					if _, err := b.readRecord(l, el.Entry, el.Loc, buf); errors.Is(err, ErrCorruption) {
						st.Damaged++
						b.metrics.scrubDamaged.Inc()
					} else if err != nil {
						continue // deleted meanwhile, its segment reclaimed
					}
					st.Entries++
					st.Bytes += int64(n)
					b.metrics.scrubBytes.Add(float64(n))
				}
			}
		}
	}
	b.metrics.scrubPasses.Inc()
	return st, nil
}

// scrubEntries appends to dst the next batch of ledger l's entries from
// id from up, and answers where the next batch starts (-1: none left).
func (b *Bookie) scrubEntries(dst []index.EntryLoc, l ids.LedgerID, from ids.EntryID) ([]index.EntryLoc, ids.EntryID) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	led := b.mu.table.Get(l)
	if led == nil || led.Deleted {
		return dst, -1
	}
	return led.Entries.AppendFrom(dst, from, scrubBatch)
}

func (b *Bookie) scrubNow() time.Time {
	if b.hooks.scrubNow != nil {
		return b.hooks.scrubNow()
	}
	return time.Now()
}

// scrubWait waits d (the pacer's answer) unless ctx is done or the
// bookie closes, which it checks even when d is zero.
func (b *Bookie) scrubWait(ctx context.Context, d time.Duration) error {
	if d > 0 && b.hooks.scrubSleep != nil {
		b.hooks.scrubSleep(d)
		d = 0
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrClosed
	case <-timeout:
		return nil
	default:
	}
	if timeout == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrClosed
	case <-timeout:
		return nil
	}
}

// runScrubber runs a scrub pass every Config.ScrubInterval, the first at
// a random time within the first interval: bookies of a cluster started
// together do not all read their disks in the same hour, and a bookie
// restarted (which forgets the damage it had marked) gets its next pass
// half an interval later on average, not a whole one.
func (b *Bookie) runScrubber() {
	defer b.bgWG.Done()
	interval := b.cfg.ScrubInterval
	next := time.Duration(rand.Int64N(int64(interval)))
	for {
		t := time.NewTimer(next)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C:
		}
		start := time.Now()
		st, err := b.Scrub(context.Background())
		if err != nil {
			return // closed: the only way a pass without a deadline fails
		}
		took := time.Since(start)
		log := b.log.Info
		if st.Damaged > 0 {
			log = b.log.Warn
		}
		log("scrub pass finished", "entries", st.Entries, "bytes", st.Bytes, "damaged", st.Damaged, "took", took)
		next = max(0, interval-took)
	}
}

// pacer is a token bucket over bytes: it lets reads through at rate bytes
// a second, up to burst bytes ahead. A rate of zero or less lets every
// read through at once. It reads no clock: the caller passes the time.
type pacer struct {
	rate   float64 // bytes a second
	burst  float64
	tokens float64
	last   time.Time
}

// minScrubWait is the shortest wait the pacer asks for: below it, the
// read goes at once and its debt is carried into the next. Small records
// would otherwise cost a timer and a wake-up each, which on a busy bookie
// is CPU taken from its adds; the rate over a pass stays the same.
const minScrubWait = 10 * time.Millisecond

// take answers how long to wait, at now, before reading n bytes; the
// caller reads them after that wait, and asks again for the next read.
func (p *pacer) take(now time.Time, n int) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	if now.After(p.last) {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
	}
	p.tokens -= float64(n)
	d := time.Duration(-p.tokens / p.rate * float64(time.Second))
	if d < minScrubWait {
		return 0
	}
	return d
}
