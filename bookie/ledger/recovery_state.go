package ledger

import (
	"errors"
	"time"

	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// recoveryTiming holds the recovery machine's time limits.
type recoveryTiming struct {
	// RequestTimeout: a fence, read or add unanswered this long is
	// considered failed and is retried.
	RequestTimeout time.Duration
	// RetryInterval: wait after a metadata error.
	RetryInterval time.Duration
	// Window: entries read ahead in parallel (at least 1).
	Window int
}

// recEntry is the recovery's knowledge of one entry of the window.
type recEntry struct {
	found   bool
	payload []byte
	have    map[string]bool // bookies of the write set that hold it
	noEntry map[string]bool // fenced bookies that do not
	readOut map[string]time.Duration
	addOut  map[string]time.Duration
}

type recoveryPhase int

const (
	phaseGet   recoveryPhase = iota // reading the metadata
	phaseMark                       // CAS to in-recovery
	phaseFence                      // fencing the last fragment
	phaseRead                       // reading and re-replicating forward
	phaseClose                      // CAS to closed
	phaseDone
)

// recoveryReady is what the recovery machine asks its driver to do.
type recoveryReady struct {
	Fences []string
	Reads  []readOp
	Adds   []addOp
	Meta   *metaOp
	// Done is set once: Result on success, Err otherwise.
	Done   bool
	Result *metadata.Ledger
	Err    error
}

// recoveryState is the deterministic core of a ledger recovery: mark
// in-recovery, fence, read forward, re-replicate, close. See the package doc.
type recoveryState struct {
	timing recoveryTiming
	id     ids.LedgerID
	now    time.Duration
	phase  recoveryPhase

	l           *metadata.Ledger
	metaBusy    bool
	metaGet     bool
	metaRetryAt time.Duration // > 0: re-read the metadata then

	frag     metadata.Fragment // the last fragment
	fenced   map[string]bool
	fenceOut map[string]time.Duration
	maxLAC   ids.EntryID
	// FencedAt is when the fence quorum was reached (for the simulation's
	// checks); -1 before.
	FencedAt time.Duration

	// The read window: entries head..head+Window-1 are read (and those
	// found re-replicated) in parallel; the end is decided at the head only.
	head    ids.EntryID
	window  map[ids.EntryID]*recEntry
	suspect map[string]time.Duration // bookies whose recovery add failed, and when
	last    ids.EntryID              // the last entry recovered so far

	out recoveryReady
}

func newRecoveryState(id ids.LedgerID, timing recoveryTiming) *recoveryState {
	return &recoveryState{timing: timing, id: id, FencedAt: -1, suspect: map[string]time.Duration{}}
}

func (r *recoveryState) ready() recoveryReady {
	o := r.out
	r.out = recoveryReady{}
	return o
}

// start reads the ledger's metadata.
func (r *recoveryState) start(now time.Duration) {
	r.now = now
	r.getMeta()
}

func (r *recoveryState) getMeta() {
	r.phase = phaseGet
	r.reread()
}

// reread asks for the metadata; in the close phase the answer decides
// between closing again and adopting another recoverer's close.
func (r *recoveryState) reread() {
	if r.phase != phaseClose {
		r.phase = phaseGet
	}
	r.metaBusy, r.metaGet = true, true
	r.out.Meta = &metaOp{}
}

func (r *recoveryState) putMeta(l *metadata.Ledger, close bool) {
	r.metaBusy, r.metaGet = true, false
	r.out.Meta = &metaOp{Put: l, Close: close}
}

func (r *recoveryState) done(l *metadata.Ledger, err error) {
	r.phase = phaseDone
	r.out.Done, r.out.Result, r.out.Err = true, l, err
}

// metaResult takes the answer to the last metaOp.
func (r *recoveryState) metaResult(l *metadata.Ledger, err error) {
	wasGet := r.metaGet
	r.metaBusy, r.metaGet = false, false
	switch {
	case r.phase == phaseDone:
	case err != nil && wasGet && errors.Is(err, metadata.ErrNotFound):
		r.done(nil, ErrLedgerNotFound)
	case err != nil && !wasGet && errors.Is(err, metadata.ErrBadVersion):
		r.reread()
	case err != nil:
		r.metaRetryAt = r.now + r.timing.RetryInterval
	case wasGet && r.phase == phaseClose:
		r.closeRead(l)
	case wasGet:
		r.metaRead(l)
	case r.phase == phaseMark:
		r.beginFence(l)
	case r.phase == phaseClose:
		r.done(cloneLedger(l), nil)
	}
}

// closeRead: the re-read after a lost or unknown close. Another recoverer
// may have closed the ledger first: its close stands.
func (r *recoveryState) closeRead(l *metadata.Ledger) {
	if l.State == metadata.LedgerClosed {
		r.done(cloneLedger(l), nil)
		return
	}
	r.l = cloneLedger(l)
	r.proposeClose()
}

// metaRead decides from the ledger read what to do next.
func (r *recoveryState) metaRead(l *metadata.Ledger) {
	switch l.State {
	case metadata.LedgerClosed:
		r.done(cloneLedger(l), nil)
	case metadata.LedgerOpen:
		nl := cloneLedger(l)
		nl.State = metadata.LedgerInRecovery
		r.phase = phaseMark
		r.putMeta(nl, false)
	default:
		r.beginFence(l)
	}
}

// beginFence sends a fence to every bookie of the last fragment.
func (r *recoveryState) beginFence(l *metadata.Ledger) {
	r.l = cloneLedger(l)
	f := lastFragment(r.l)
	if f == nil {
		r.last = ids.NoEntry
		r.proposeClose()
		return
	}
	r.frag = *f
	r.phase = phaseFence
	r.fenced = map[string]bool{}
	r.fenceOut = map[string]time.Duration{}
	r.maxLAC = f.FirstEntry - 1
	for _, b := range r.frag.Bookies {
		r.sendFence(b)
	}
}

func (r *recoveryState) sendFence(b string) {
	if _, out := r.fenceOut[b]; out || r.fenced[b] {
		return
	}
	r.fenceOut[b] = r.now
	r.out.Fences = append(r.out.Fences, b)
}

// fenceResult takes a bookie's answer to a fence: its LAC on success.
func (r *recoveryState) fenceResult(b string, lac ids.EntryID, err error) {
	if (r.phase != phaseFence && r.phase != phaseRead) || r.fenceOut == nil {
		return
	}
	delete(r.fenceOut, b)
	if err != nil {
		return // retried on tick
	}
	r.fenced[b] = true
	if r.phase == phaseFence {
		r.maxLAC = max(r.maxLAC, lac)
		if fenceQuorum(r.frag.Bookies, r.l.WriteQuorum, r.l.AckQuorum, func(b string) bool { return r.fenced[b] }) {
			r.FencedAt = r.now
			r.last = r.maxLAC
			r.startRead(r.maxLAC + 1)
		}
		return
	}
	r.pumpAll()
}

func (r *recoveryState) writeSet(e ids.EntryID) []string {
	return writeSet(&r.frag, r.l.WriteQuorum, e)
}

// startRead opens the window at e.
func (r *recoveryState) startRead(e ids.EntryID) {
	r.phase = phaseRead
	r.head = e
	r.window = map[ids.EntryID]*recEntry{}
	for i := range max(1, r.timing.Window) {
		r.open(e + ids.EntryID(i))
	}
}

func (r *recoveryState) open(e ids.EntryID) {
	en := &recEntry{
		have: map[string]bool{}, noEntry: map[string]bool{},
		readOut: map[string]time.Duration{}, addOut: map[string]time.Duration{},
	}
	r.window[e] = en
	r.pump(e, en)
}

func (r *recoveryState) isSuspect(b string) bool {
	at, ok := r.suspect[b]
	return ok && r.now-at < r.timing.RequestTimeout
}

func (r *recoveryState) pumpAll() {
	for e := r.head; r.window[e] != nil; e++ {
		r.pump(e, r.window[e])
	}
}

// pump sends what entry e still needs. Not found yet: fences to the
// unfenced bookies of its write set and reads to the fenced ones without an
// answer (reads go to fenced bookies only, so that "no such entry" proves
// the bookie will never take the entry from the old writer). Found:
// recovery adds to the bookies of its write set that lack it (or whose
// read is not answered: they may have it). A recovery add carries the last
// entry recovered so far as its LAC, never more: a later recoverer starts
// reading after the highest LAC, so a LAC past an entry not yet recovered
// (e-1 for entry e of the window) could leave a hole in the ledger.
func (r *recoveryState) pump(e ids.EntryID, en *recEntry) {
	for _, b := range r.writeSet(e) {
		_, reading := en.readOut[b]
		_, adding := en.addOut[b]
		switch {
		case en.found && r.isSuspect(b):
			// A bookie whose recovery add failed lately gets none until
			// RequestTimeout passed: entries on Qa bookies move on without it.
		case en.found && !en.have[b] && !adding && !reading:
			en.addOut[b] = r.now
			r.out.Adds = append(r.out.Adds, addOp{Bookie: b, Entry: e, LAC: r.last, Payload: en.payload, Recovery: true})
		case en.found:
		case !r.fenced[b]:
			r.sendFence(b)
		case !en.noEntry[b] && !reading:
			en.readOut[b] = r.now
			r.out.Reads = append(r.out.Reads, readOp{Bookie: b, Entry: e})
		}
	}
}

// readResult takes a bookie's answer to a read of entry e.
func (r *recoveryState) readResult(b string, e ids.EntryID, payload []byte, err error) {
	en := r.window[e]
	if r.phase != phaseRead || en == nil {
		return
	}
	delete(en.readOut, b)
	switch {
	case err == nil:
		en.have[b] = true
		if !en.found {
			en.found, en.payload = true, payload
			r.pump(e, en)
		}
	case isNoEntry(err):
		en.noEntry[b] = true
	}
	if en.found {
		r.pump(e, en)
	}
	r.advance()
}

// addResult takes a bookie's answer to a recovery add.
func (r *recoveryState) addResult(b string, e ids.EntryID, err error) {
	en := r.window[e]
	if r.phase != phaseRead || en == nil {
		return
	}
	delete(en.addOut, b)
	if err == nil {
		en.have[b] = true
		delete(r.suspect, b)
	} else {
		r.suspect[b] = r.now
	}
	r.advance()
}

// streamBroken: the add stream to b broke, its adds will not be answered.
func (r *recoveryState) streamBroken(b string) {
	if r.phase != phaseRead {
		return
	}
	r.suspect[b] = r.now
	for _, en := range r.window {
		delete(en.addOut, b)
	}
	r.advance()
}

// advance moves the head over the entries recovered, and ends the read at
// the first missing one.
func (r *recoveryState) advance() {
	for r.phase == phaseRead {
		en := r.window[r.head]
		switch {
		case en.found && r.replicated(r.head, en):
			r.last = r.head
			delete(r.window, r.head)
			r.head++
			r.open(r.head + ids.EntryID(max(1, r.timing.Window)) - 1)
		case !en.found && r.missing(r.head, en):
			r.proposeClose()
		default:
			return
		}
	}
}

// missing: (Qw−Qa)+1 fenced bookies of e's write set lack it, so at most
// Qa−1 bookies hold it and no more ever will: the old writer was never told
// it succeeded, nor anything after it.
func (r *recoveryState) missing(e ids.EntryID, en *recEntry) bool {
	n := 0
	for _, b := range r.writeSet(e) {
		if en.noEntry[b] {
			n++
		}
	}
	return n >= r.l.WriteQuorum-r.l.AckQuorum+1
}

// replicated: e is on its whole write set, or on Qa bookies with nothing
// more to wait for.
func (r *recoveryState) replicated(e ids.EntryID, en *recEntry) bool {
	n := 0
	for _, b := range r.writeSet(e) {
		if en.have[b] {
			n++
		}
	}
	return n >= r.l.WriteQuorum || (n >= r.l.AckQuorum && len(en.addOut) == 0)
}

// proposeClose CASes the ledger closed at the last recovered entry.
func (r *recoveryState) proposeClose() {
	nl := cloneLedger(r.l)
	nl.State = metadata.LedgerClosed
	nl.LastEntry = r.last
	r.phase = phaseClose
	r.putMeta(nl, true)
}

// tick advances the clock: expired requests are retried, and so is the
// metadata after an error.
func (r *recoveryState) tick(now time.Duration) {
	r.now = now
	if r.phase == phaseDone {
		return
	}
	if r.metaRetryAt > 0 && now >= r.metaRetryAt && !r.metaBusy {
		r.metaRetryAt = 0
		r.retryMeta()
		return
	}
	r.expire(r.fenceOut)
	switch r.phase {
	case phaseFence:
		for _, b := range r.frag.Bookies {
			r.sendFence(b)
		}
	case phaseRead:
		for _, en := range r.window {
			r.expire(en.readOut)
			for _, b := range r.expire(en.addOut) {
				r.suspect[b] = now
			}
		}
		r.advance() // entries on Qa bookies whose other adds just expired
		r.pumpAll()
		r.advance()
	}
}

// retryMeta repeats the metadata step that failed, starting with a read.
func (r *recoveryState) retryMeta() { r.reread() }

// expire forgets the requests older than RequestTimeout and returns their
// bookies.
func (r *recoveryState) expire(out map[string]time.Duration) []string {
	var gone []string
	for b, at := range out {
		if r.now-at >= r.timing.RequestTimeout {
			delete(out, b)
			gone = append(gone, b)
		}
	}
	return gone
}
