package ledger

import (
	"errors"
	"slices"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// writerTiming holds the writer machine's time limits.
type writerTiming struct {
	// AddTimeout: an add unanswered this long fails its bookie.
	AddTimeout time.Duration
	// RetryInterval: wait between attempts at an ensemble change that found
	// no replacement, and after a metadata error.
	RetryInterval time.Duration
}

// pendingEntry is an appended entry that is not confirmed yet.
type pendingEntry struct {
	id      ids.EntryID
	payload []byte
	// sent holds, for each bookie of the write set the add was sent to and
	// has not answered, when it was sent.
	sent map[string]time.Duration
	// acked holds the bookies of the current write set that stored it.
	acked map[string]bool
}

// metaPurpose says why the writer is talking to the metadata store.
type metaPurpose int

const (
	purposeChange metaPurpose = iota + 1 // an ensemble change
	purposeClose                         // closing the ledger
)

// writerReady is what the writer machine asks its driver to do. Completions
// are in append order.
type writerReady struct {
	Adds        []addOp
	Meta        *metaOp
	ListBookies bool
	Done        []completion
	// CloseDone is set once, when a close finished: Closed on success,
	// CloseErr otherwise.
	CloseDone bool
	Closed    *metadata.Ledger
	CloseErr  error
}

// writerState is the deterministic core of a ledger writer: striping, the
// ack rule and LAC, ensemble change, fencing and close. It does no I/O and
// reads no clock; see the package doc.
type writerState struct {
	timing writerTiming
	l      *metadata.Ledger // the metadata as last written or read
	now    time.Duration

	lac     ids.EntryID
	next    ids.EntryID
	bytes   uint64
	pending []*pendingEntry // entries lac+1 .. next-1, in order

	// failed holds bookies of the current ensemble that failed, and when.
	failed map[string]time.Duration
	// heard holds when each bookie last answered an add: a bookie that
	// answers is slow, not failed.
	heard map[string]time.Duration

	err       error // terminal: ErrFenced or ErrLedgerClosed
	closing   bool
	closeSent bool // the close CAS was proposed
	closeDone bool

	changing      bool // an ensemble change is being recorded: no confirmations
	metaBusy      bool // a metadata operation is in flight
	metaGet       bool // ... and it is a read
	purpose       metaPurpose
	metaRetryAt   time.Duration // > 0: re-read the metadata then
	changeRetryAt time.Duration // > 0: retry the ensemble change then

	resend          bool // some adds were refused as too many in flight
	listing         bool // a bookie listing is in flight
	candidates      []string
	candidatesFresh bool

	out writerReady
}

func newWriterState(l *metadata.Ledger, timing writerTiming) *writerState {
	return &writerState{
		timing: timing,
		l:      cloneLedger(l),
		lac:    ids.NoEntry,
		next:   0,
		failed: map[string]time.Duration{},
		heard:  map[string]time.Duration{},
	}
}

// ready returns and clears the machine's outputs.
func (w *writerState) ready() writerReady {
	r := w.out
	w.out = writerReady{}
	return r
}

// LAC returns the last add confirmed.
func (w *writerState) LAC() ids.EntryID { return w.lac }

// append assigns the next entry id to payload and sends it, or completes it
// at once with the writer's error.
func (w *writerState) append(payload []byte) {
	if w.err != nil || w.closing {
		err := w.err
		if err == nil {
			err = ErrLedgerClosed
		}
		w.complete(ids.NoEntry, err)
		return
	}
	p := &pendingEntry{id: w.next, payload: payload, sent: map[string]time.Duration{}, acked: map[string]bool{}}
	w.next++
	w.pending = append(w.pending, p)
	if !w.changing {
		w.send(p)
	}
}

// send sends p to every bookie of its write set that neither holds it, nor
// has it in flight, nor failed.
func (w *writerState) send(p *pendingEntry) {
	for _, b := range w.writeSet(p.id) {
		if p.acked[b] || w.isFailed(b) {
			continue
		}
		if _, inFlight := p.sent[b]; inFlight {
			continue
		}
		p.sent[b] = w.now
		w.out.Adds = append(w.out.Adds, addOp{Bookie: b, Entry: p.id, LAC: w.lac, Payload: p.payload})
	}
}

func (w *writerState) isFailed(b string) bool {
	_, ok := w.failed[b]
	return ok
}

func (w *writerState) writeSet(e ids.EntryID) []string {
	return writeSet(w.l.FragmentFor(e), w.l.WriteQuorum, e)
}

func (w *writerState) complete(e ids.EntryID, err error) {
	w.out.Done = append(w.out.Done, completion{Entry: e, Err: err})
}

// addResult takes a bookie's answer to an add.
func (w *writerState) addResult(b string, e ids.EntryID, err error) {
	if w.err != nil {
		return
	}
	w.heard[b] = w.now
	if isFencedCode(err) {
		w.fence()
		return
	}
	if errcode.CodeOf(err) == errcode.TooManyInFlight {
		if p := w.find(e); p != nil {
			delete(p.sent, b) // the bookie is busy, not failed: resent on the next tick
			w.resend = true
		}
		return
	}
	if err != nil {
		w.bookieFailed(b)
		return
	}
	p := w.find(e)
	if p == nil || w.isFailed(b) || !slices.Contains(w.writeSet(e), b) {
		return // late, duplicate, or from a replaced bookie
	}
	delete(p.sent, b)
	p.acked[b] = true
	w.advance()
}

func (w *writerState) find(e ids.EntryID) *pendingEntry {
	i := int(e - w.lac - 1)
	if i < 0 || i >= len(w.pending) {
		return nil
	}
	return w.pending[i]
}

// advance confirms entries from the head while they have Qa acks.
func (w *writerState) advance() {
	if w.changing {
		return
	}
	for len(w.pending) > 0 && w.ackCount(w.pending[0]) >= w.l.AckQuorum {
		p := w.pending[0]
		w.pending[0] = nil
		w.pending = w.pending[1:]
		w.lac = p.id
		w.bytes += uint64(len(p.payload))
		w.complete(p.id, nil)
	}
	w.maybeProposeClose()
}

func (w *writerState) ackCount(p *pendingEntry) int {
	n := 0
	for _, b := range w.writeSet(p.id) {
		if p.acked[b] {
			n++
		}
	}
	return n
}

// bookieFailed marks b failed (its stream broke, an add to it failed or
// timed out) and starts an ensemble change.
func (w *writerState) bookieFailed(b string) {
	if w.err != nil || w.isFailed(b) || !slices.Contains(lastFragment(w.l).Bookies, b) {
		return
	}
	w.failed[b] = w.now
	for _, p := range w.pending {
		delete(p.sent, b)
	}
	w.startChange()
}

// bookiesListed takes the driver's answer to ListBookies.
func (w *writerState) bookiesListed(bookies []string, err error) {
	w.listing = false
	if err != nil {
		w.changeRetryAt = w.now + w.timing.RetryInterval
		return
	}
	w.candidates = slices.Clone(bookies)
	w.candidatesFresh = true
	w.startChange()
}

// startChange replaces the failed bookies of the ensemble, if any and if no
// metadata operation is under way.
func (w *writerState) startChange() {
	if w.err != nil || w.changing || w.metaBusy || w.closeSent {
		return
	}
	ensemble := lastFragment(w.l).Bookies
	if !slices.ContainsFunc(ensemble, w.isFailed) {
		return
	}
	if !w.candidatesFresh {
		if !w.listing {
			w.listing = true
			w.out.ListBookies = true
		}
		return
	}
	w.candidatesFresh = false
	next, replaced := w.replacements(ensemble)
	w.reinstate(next)
	if replaced == 0 {
		w.changeRetryAt = w.now + w.timing.RetryInterval
		return
	}
	w.changeRetryAt = 0
	w.proposeChange(next)
}

// replacements returns the ensemble with each failed bookie replaced by a
// listed bookie outside the ensemble, where one is available, and how many
// were replaced.
func (w *writerState) replacements(ensemble []string) ([]string, int) {
	next := slices.Clone(ensemble)
	replaced := 0
	for i, b := range next {
		if !w.isFailed(b) {
			continue
		}
		for _, c := range w.candidates {
			if !slices.Contains(next, c) && !w.isFailed(c) {
				next[i] = c
				replaced++
				break
			}
		}
	}
	return next, replaced
}

// reinstate gives a failed bookie that could not be replaced another chance
// when it is listed as live again and failed long enough ago: its un-acked
// adds are sent again. The metadata does not change: it is still in the
// ensemble.
func (w *writerState) reinstate(next []string) {
	for _, b := range next {
		at, failed := w.failed[b]
		if !failed || !slices.Contains(w.candidates, b) || w.now-at < w.timing.RetryInterval {
			continue
		}
		delete(w.failed, b)
		for _, p := range w.pending {
			w.send(p)
		}
	}
}

// proposeChange asks for the CAS that records ensemble next from LAC+1.
func (w *writerState) proposeChange(next []string) {
	nl := cloneLedger(w.l)
	last := &nl.Fragments[len(nl.Fragments)-1]
	if last.FirstEntry == w.lac+1 {
		last.Bookies = next
	} else {
		nl.Fragments = append(nl.Fragments, metadata.Fragment{FirstEntry: w.lac + 1, Bookies: next})
	}
	w.changing = true
	w.purpose = purposeChange
	w.metaBusy, w.metaGet = true, false
	w.out.Meta = &metaOp{Put: nl}
}

// metaResult takes the answer to the last metaOp: for a put, the stored
// ledger with its new version; for a get, the ledger read.
func (w *writerState) metaResult(l *metadata.Ledger, err error) {
	wasGet := w.metaGet
	w.metaBusy, w.metaGet = false, false
	if w.err != nil {
		return
	}
	switch {
	case err == nil && wasGet:
		w.metaRead(l)
	case err == nil:
		w.metaWritten(l)
	case !wasGet && errors.Is(err, metadata.ErrBadVersion):
		w.getMeta()
	default: // unknown outcome: read back after a pause
		w.metaRetryAt = w.now + w.timing.RetryInterval
	}
}

func (w *writerState) getMeta() {
	w.metaBusy, w.metaGet = true, true
	w.out.Meta = &metaOp{}
}

// metaWritten: our CAS succeeded.
func (w *writerState) metaWritten(l *metadata.Ledger) {
	if w.purpose == purposeClose {
		w.finishClose(cloneLedger(l), nil)
		return
	}
	w.adopt(l)
}

// metaRead: the re-read after a lost or unknown CAS.
func (w *writerState) metaRead(l *metadata.Ledger) {
	if l.State != metadata.LedgerOpen {
		if w.purpose == purposeClose && l.State == metadata.LedgerClosed && l.LastEntry == w.lac && w.closeSent {
			w.finishClose(cloneLedger(l), nil) // our close did land
			return
		}
		w.fence()
		return
	}
	w.adopt(l)
	if w.purpose == purposeClose {
		w.closeSent = false
		w.maybeProposeClose()
	}
}

// adopt makes l the current metadata: acks and sends of bookies no longer
// in an entry's write set are dropped, the entries are sent to the new
// members, confirmations resume and remaining failures get replaced. New
// members get entries only here, once the stored metadata names them: a
// writer never sends an entry to a bookie its ledger's metadata does not
// name, which the garbage collection counts on (collect.go).
func (w *writerState) adopt(l *metadata.Ledger) {
	w.l = cloneLedger(l)
	w.changing = false
	ensemble := lastFragment(w.l).Bookies
	for b := range w.failed {
		if !slices.Contains(ensemble, b) {
			delete(w.failed, b)
		}
	}
	for _, p := range w.pending {
		ws := w.writeSet(p.id)
		for b := range p.acked {
			if !slices.Contains(ws, b) {
				delete(p.acked, b)
			}
		}
		for b := range p.sent {
			if !slices.Contains(ws, b) {
				delete(p.sent, b)
			}
		}
		w.send(p)
	}
	w.advance()
	w.startChange()
}

// tick advances the machine's clock: add timeouts and retries.
func (w *writerState) tick(now time.Duration) {
	w.now = now
	if w.err != nil {
		return
	}
	for _, b := range w.timedOut() {
		w.bookieFailed(b)
	}
	if w.resend && !w.changing {
		w.resend = false
		for _, p := range w.pending {
			w.send(p)
		}
	}
	if w.metaRetryAt > 0 && now >= w.metaRetryAt && !w.metaBusy {
		w.metaRetryAt = 0
		w.getMeta()
	}
	if w.changeRetryAt > 0 && now >= w.changeRetryAt {
		w.changeRetryAt = 0
		w.candidatesFresh = false
		w.startChange()
	}
}

// timedOut returns the bookies with an add older than AddTimeout that did
// not answer any add for as long, sorted.
func (w *writerState) timedOut() []string {
	var out []string
	for _, p := range w.pending {
		for b, at := range p.sent {
			if w.now-at >= w.timing.AddTimeout && w.now-w.heard[b] >= w.timing.AddTimeout && !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fence makes the writer fenced: every pending add fails with ErrFenced,
// and so do future ones and a pending close.
func (w *writerState) fence() {
	if w.err != nil {
		return
	}
	w.err = ErrFenced
	w.changing = false
	w.failPending(ErrFenced)
	if w.closing && !w.closeDone {
		w.finishClose(nil, ErrFenced)
	}
}

func (w *writerState) failPending(err error) {
	for _, p := range w.pending {
		w.complete(p.id, err)
	}
	w.pending = nil
}

// close stops new appends and closes the ledger at the LAC once the pending
// entries are confirmed (or abort was called).
func (w *writerState) close() {
	if w.closing {
		return
	}
	w.closing = true
	if w.err != nil {
		w.finishClose(nil, w.err)
		return
	}
	w.maybeProposeClose()
}

func (w *writerState) maybeProposeClose() {
	if !w.closing || w.closeSent || w.closeDone || w.err != nil ||
		len(w.pending) > 0 || w.changing || w.metaBusy {
		return
	}
	nl := cloneLedger(w.l)
	nl.State = metadata.LedgerClosed
	nl.LastEntry = w.lac
	nl.Bytes = w.bytes
	w.closeSent = true
	w.purpose = purposeClose
	w.metaBusy, w.metaGet = true, false
	w.out.Meta = &metaOp{Put: nl, Close: true}
}

func (w *writerState) finishClose(l *metadata.Ledger, err error) {
	w.closeDone = true
	if err == nil {
		w.err = ErrLedgerClosed
		w.l = l
	}
	w.out.CloseDone, w.out.Closed, w.out.CloseErr = true, l, err
}
