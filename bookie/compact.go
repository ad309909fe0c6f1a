package bookie

import (
	"context"
	"errors"
	"sync"

	"github.com/strata-mq/strata/bookie/index"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/ids"
)

// compactCandidate returns the sealed segment, wholly covered by both
// checkpoint slots, whose live entries take the fewest bytes, if those are
// below CompactLiveFraction of a segment. 0 if none.
func (b *Bookie) compactCandidate() uint32 {
	if b.cfg.CompactLiveFraction <= 0 {
		return 0
	}
	limit := int64(b.cfg.CompactLiveFraction * float64(b.cfg.JournalFileBytes))
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	bound := min(b.slotPos[0].File, b.slotPos[1].File)
	b.mu.RLock()
	defer b.mu.RUnlock()
	best, bestBytes := uint32(0), limit
	for id, n := range b.mu.table.LiveBytes {
		if id < bound && n < bestBytes && !b.compactStuck[id] {
			best, bestBytes = id, n
		}
	}
	return best
}

type liveEntry struct {
	ledger ids.LedgerID
	entry  ids.EntryID
	loc    index.Loc
}

func (b *Bookie) liveEntries(seg uint32) []liveEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []liveEntry
	for l, led := range b.mu.table.Ledgers {
		for e, loc := range led.Entries.All() {
			if loc.File == seg {
				out = append(out, liveEntry{l, e, loc})
			}
		}
	}
	return out
}

// compact copies the live entries of one sparse old segment into the
// journal (opRelocate), so that the segment holds no live entry and a later
// checkpoint reclaims it. Damaged entries stay where they are (and keep the
// segment, which is then not picked again). It runs on the checkpointer
// goroutine (or a test's, never both at once); Close cancels it. A
// read-only bookie does not compact: the copies need the space it lacks.
func (b *Bookie) compact() error {
	if b.readOnly.Load() {
		return nil
	}
	seg := b.compactCandidate()
	if seg == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	live := b.liveEntries(seg)
	left := 0
	defer func() {
		if left > 0 {
			b.ckptMu.Lock()
			b.compactStuck[seg] = true // do not retry it every round
			b.ckptMu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for _, le := range live {
		ent, err := b.readAt(le.ledger, le.entry, le.loc)
		if err != nil {
			left++
			b.log.Warn("compaction: entry left in place", "segment", journal.Name(seg), "ledger", le.ledger, "entry", le.entry, "err", err)
			continue
		}
		r := &request{op: opRelocate, ledger: le.ledger, entry: le.entry, lac: ent.LAC, payload: ent.Payload, recovery: ent.Recovery, from: le.loc}
		wg.Add(1)
		r.done = func(res result) {
			if res.err != nil && !errors.Is(res.err, ErrLedgerNotFound) {
				errMu.Lock()
				firstErr = cmpOr(firstErr, res.err)
				errMu.Unlock()
			}
			wg.Done()
		}
		if err := b.submit(ctx, r); err != nil {
			wg.Done()
			errMu.Lock()
			firstErr = cmpOr(firstErr, err)
			errMu.Unlock()
			break
		}
	}
	wg.Wait()
	errMu.Lock()
	defer errMu.Unlock()
	if firstErr == nil {
		b.log.Info("journal segment compacted", "segment", journal.Name(seg), "entries", len(live))
	}
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
