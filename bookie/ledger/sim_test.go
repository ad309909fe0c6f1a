package ledger

import (
	"bytes"
	"container/heap"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

var (
	simSeeds = flag.Int("sim.seeds", 2000, "number of seeds the ledger simulation runs")
	simSeed  = flag.Uint64("sim.seed", 0, "run only this simulation seed, with a trace")
)

// TestSimulationNeverLosesAckedEntriesNorAcksTwoWriters runs the writer and
// recovery machines against simulated bookies that crash and restart (and
// in some seeds one that dies for good), a network that delays and drops,
// and an in-memory CAS metadata store that sometimes answers an ambiguous
// timeout, with one or two recoverers racing the writer (which sometimes
// closes the ledger itself). Quorums, fault intensity and timing vary by
// seed. A seed fails, and is printed, if: an entry is acknowledged out of
// order, after a failure, or while fewer than Qa bookies of its write set
// hold it; the ledger does not end closed; an acknowledged entry is past the
// closed LastEntry (so no entry was acknowledged to the old writer after the
// fence unless the recovery kept it); an entry up to LastEntry is on fewer
// than Qa bookies of its write set or does not read back as the bytes the
// writer appended; a bookie ever holds other bytes for an entry (two
// writers); the recoverers disagree; a recovery does not finish.
func TestSimulationNeverLosesAckedEntriesNorAcksTwoWriters(t *testing.T) {
	if *simSeed != 0 {
		s := newSim(*simSeed, true)
		if err := s.run(); err != nil {
			t.Fatalf("seed %d: %v\n%s", *simSeed, err, strings.Join(s.trace, "\n"))
		}
		t.Logf("seed %d ok\n%s", *simSeed, strings.Join(s.trace, "\n"))
		return
	}
	n := *simSeeds
	if testing.Short() {
		n = min(n, 200)
	}
	// Seeds are independent and deterministic: run them on every CPU.
	var (
		mu    sync.Mutex
		stats simStats
		fails []string
		next  atomic.Uint64
		wg    sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := next.Add(1); seed <= uint64(n); seed = next.Add(1) {
				s := newSim(seed, false)
				err := s.run()
				mu.Lock()
				if err != nil {
					fails = append(fails, fmt.Sprintf("seed %d failed: %v (replay: go test ./bookie/ledger -run Simulation -sim.seed=%d)", seed, err, seed))
				} else {
					stats.add(s)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, f := range fails {
		t.Error(f)
	}
	t.Logf("%d seeds: %+v", n, stats)
}

type simStats struct {
	Acked, Recovered, EnsembleChanges, FencedWriters, WriterCloses, Crashes int
}

func (st *simStats) add(s *sim) {
	st.Acked += len(s.acked)
	st.Recovered += int(s.final.LastEntry + 1)
	st.EnsembleChanges += len(s.final.Fragments) - 1
	st.Crashes += s.crashes
	if errorsIsFenced(s.writerErr) {
		st.FencedWriters++
	}
	if s.writerClosed {
		st.WriterCloses++
	}
}

func errorsIsFenced(err error) bool { return err != nil && IsFenced(err) }

// simEvent is one thing that happens at a virtual time.
type simEvent struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simBookie is a bookie with honest durability: what it acknowledged (and a
// fence) survives its crashes; while down it answers nothing.
type simBookie struct {
	up      bool
	known   bool // has a record of the ledger
	fenced  bool
	lac     ids.EntryID
	entries map[ids.EntryID][]byte
}

const simLedger ids.LedgerID = 7

type sim struct {
	seed    uint64
	rng     *rand.Rand
	now     time.Duration
	seq     uint64
	q       eventQueue
	verbose bool
	trace   []string
	err     error

	names   []string
	bookies map[string]*simBookie
	down    int
	crashes int
	faulty  bool   // faults and losses are on
	storm   int    // fault intensity of this seed: 1 (calm) .. 4 (stormy)
	dead    string // a bookie that never comes back after the faults ("" for none)

	meta *metadata.Ledger // the stored record

	w            *writerState
	payloads     map[ids.EntryID][]byte // what the writer appended
	appended     int
	toAppend     int
	acked        map[ids.EntryID]time.Duration
	writerErr    error
	lastOK       ids.EntryID
	writerClosed bool
	closeAt      time.Duration

	recs    []*recoveryState
	recAt   []time.Duration
	recOut  []*metadata.Ledger
	recDead []bool // the recoverer crashed: it does nothing more
	final   *metadata.Ledger
}

func newSim(seed uint64, verbose bool) *sim {
	s := &sim{
		seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), verbose: verbose,
		bookies: map[string]*simBookie{}, payloads: map[ids.EntryID][]byte{},
		acked: map[ids.EntryID]time.Duration{}, lastOK: ids.NoEntry, faulty: true,
	}
	s.storm = 1 + s.rng.IntN(4)
	e := 1 + s.rng.IntN(4)
	qw := 1 + s.rng.IntN(e)
	qa := 1 + s.rng.IntN(qw)
	n := e + s.rng.IntN(3)
	for i := range n {
		b := fmt.Sprintf("b%d", i)
		s.names = append(s.names, b)
		s.bookies[b] = &simBookie{up: true, lac: ids.NoEntry, entries: map[ids.EntryID][]byte{}}
	}
	s.meta = &metadata.Ledger{
		ID: simLedger, Ensemble: e, WriteQuorum: qw, AckQuorum: qa, State: metadata.LedgerOpen,
		Fragments: []metadata.Fragment{{FirstEntry: 0, Bookies: slices.Clone(s.names[:e])}},
		LastEntry: ids.NoEntry, Version: 1,
	}
	s.w = newWriterState(s.meta, writerTiming{AddTimeout: 200 * time.Millisecond, RetryInterval: 100 * time.Millisecond})
	s.toAppend = 20 + s.rng.IntN(60)
	if s.rng.IntN(5) == 0 {
		s.closeAt = time.Duration(200+s.rng.IntN(1500)) * time.Millisecond
	}
	if qa >= 2 && qw > qa && s.rng.IntN(4) == 0 {
		// Recovery must finish without it. (With Qa = 1 the fence needs
		// every bookie of a write set; with Qw = Qa an entry found on
		// one live bookie could not be brought back to Qa copies without an
		// ensemble change during recovery, which is not implemented.)
		s.dead = s.names[s.rng.IntN(len(s.names))]
	}
	s.logf("E=%d Qw=%d Qa=%d bookies=%d entries=%d closeAt=%v dead=%q", e, qw, qa, n, s.toAppend, s.closeAt, s.dead)
	return s
}

func (s *sim) logf(format string, args ...any) {
	if s.verbose {
		s.trace = append(s.trace, fmt.Sprintf("%8v ", s.now)+fmt.Sprintf(format, args...))
	}
}

func (s *sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("at %v: %s", s.now, fmt.Sprintf(format, args...))
		s.logf("FAIL: %v", s.err)
	}
}

func (s *sim) at(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, simEvent{at: s.now + d, seq: s.seq, fn: fn})
}

// delay is a network or disk delay: usually small, sometimes long.
func (s *sim) delay() time.Duration {
	if s.faulty && s.rng.IntN(24/s.storm) == 0 {
		return time.Duration(50+s.rng.IntN(400)) * time.Millisecond
	}
	return time.Duration(1+s.rng.IntN(10)) * time.Millisecond
}

func (s *sim) lost() bool { return s.faulty && s.rng.IntN(40/s.storm) == 0 }

const (
	simTick     = 10 * time.Millisecond
	simFaultEnd = 3 * time.Second
	simDeadline = 120 * time.Second
)

func (s *sim) run() error {
	s.at(0, s.tick)
	s.at(time.Millisecond, s.appendSome)
	s.at(time.Duration(s.rng.IntN(1000))*time.Millisecond, s.crashSome)
	s.startRecovery(time.Duration(300+s.rng.IntN(2500)) * time.Millisecond)
	if s.rng.IntN(3) == 0 {
		s.startRecovery(time.Duration(300+s.rng.IntN(3000)) * time.Millisecond)
	}
	s.at(simFaultEnd, s.heal)
	for s.q.Len() > 0 && s.err == nil && !s.finished() {
		ev := heap.Pop(&s.q).(simEvent)
		s.now = ev.at
		if s.now > simDeadline {
			return fmt.Errorf("recovery did not finish by %v (E=%d Qw=%d Qa=%d)", simDeadline, s.meta.Ensemble, s.meta.WriteQuorum, s.meta.AckQuorum)
		}
		ev.fn()
	}
	if s.err != nil {
		return s.err
	}
	return s.check()
}

func (s *sim) finished() bool {
	if len(s.recs) == 0 || s.faulty {
		return false // not before heal
	}
	for i, r := range s.recs {
		if r.phase != phaseDone && !s.recDead[i] {
			return false
		}
	}
	return true
}

func (s *sim) tick() {
	s.w.tick(s.now)
	s.pumpWriter()
	for i, r := range s.recs {
		if s.now >= s.recAt[i] && !s.recDead[i] {
			r.tick(s.now)
			s.pumpRecovery(i)
		}
	}
	if s.closeAt > 0 && s.now >= s.closeAt && !s.w.closing {
		s.logf("writer closes")
		s.w.close()
		s.pumpWriter()
	}
	s.at(simTick, s.tick)
}

// appendSome appends a few entries, keeping at most 30 unconfirmed.
func (s *sim) appendSome() {
	for range 1 + s.rng.IntN(4) {
		if s.appended >= s.toAppend || len(s.w.pending) >= 30 || s.w.closing {
			break
		}
		e := ids.EntryID(s.appended)
		p := []byte(fmt.Sprintf("seed %d entry %d %x", s.seed, e, s.rng.Uint64()))
		if s.w.err == nil {
			s.payloads[e] = p
		}
		s.appended++
		s.w.append(p)
	}
	s.pumpWriter()
	if s.appended < s.toAppend {
		s.at(time.Duration(1+s.rng.IntN(20))*time.Millisecond, s.appendSome)
	}
}

// crashSome crashes a bookie or restarts one, while faults are on.
func (s *sim) crashSome() {
	if !s.faulty {
		return
	}
	b := s.names[s.rng.IntN(len(s.names))]
	bk := s.bookies[b]
	if bk.up && s.down < s.storm {
		s.logf("crash %s", b)
		bk.up = false
		s.down++
		s.crashes++
		s.at(s.delay(), func() { s.w.bookieFailed(b); s.pumpWriter() }) // its streams break
		for i, r := range s.recs {
			s.at(s.delay(), func() { r.streamBroken(b); s.pumpRecovery(i) })
		}
		s.at(time.Duration(20+s.rng.IntN(800))*time.Millisecond, func() { s.restart(b) })
	}
	s.at(time.Duration(10+s.rng.IntN(600/s.storm))*time.Millisecond, s.crashSome)
}

func (s *sim) restart(b string) {
	if bk := s.bookies[b]; !bk.up {
		s.logf("restart %s", b)
		bk.up = true
		s.down--
	}
}

// heal ends the faults: every bookie comes back, nothing is lost any more.
func (s *sim) heal() {
	s.logf("heal")
	s.faulty = false
	for _, b := range s.names {
		s.restart(b)
	}
	if s.dead != "" {
		s.logf("%s dies for good", s.dead)
		s.bookies[s.dead].up = false
		s.down++
		s.at(s.delay(), func() { s.w.bookieFailed(s.dead); s.pumpWriter() })
	}
	if len(s.recs) == 0 {
		s.startRecovery(0)
	}
}

func (s *sim) startRecovery(at time.Duration) {
	i := len(s.recs)
	r := newRecoveryState(simLedger, recoveryTiming{RequestTimeout: 200 * time.Millisecond, RetryInterval: 100 * time.Millisecond, Window: 1 + s.rng.IntN(8)})
	s.recs = append(s.recs, r)
	s.recAt = append(s.recAt, s.now+at)
	s.recOut = append(s.recOut, nil)
	s.recDead = append(s.recDead, false)
	s.at(at, func() {
		s.logf("recoverer %d starts", i)
		r.start(s.now)
		s.pumpRecovery(i)
	})
	if i == 0 && s.rng.IntN(3) == 0 {
		// The new owner dies in the middle of its recovery; another one
		// takes over later and must finish the job.
		s.at(at+time.Duration(s.rng.IntN(300))*time.Millisecond, func() {
			if r.phase == phaseDone {
				return
			}
			s.logf("recoverer %d crashes", i)
			s.recDead[i] = true
			s.startRecovery(time.Duration(s.rng.IntN(500)) * time.Millisecond)
		})
	}
}

// pumpWriter performs the writer machine's outputs.
func (s *sim) pumpWriter() {
	for {
		r := s.w.ready()
		if len(r.Adds) == 0 && r.Meta == nil && !r.ListBookies && len(r.Done) == 0 && !r.CloseDone {
			return
		}
		for _, op := range r.Adds {
			s.sendAdd(op, func(err error) { s.w.addResult(op.Bookie, op.Entry, err); s.pumpWriter() })
		}
		if r.Meta != nil {
			s.sendMeta("writer", *r.Meta, func(l *metadata.Ledger, err error) { s.w.metaResult(l, err); s.pumpWriter() })
		}
		if r.ListBookies {
			s.listBookies()
		}
		for _, d := range r.Done {
			s.writerDone(d)
		}
		if r.CloseDone {
			s.logf("writer close: %v", r.CloseErr)
			if r.CloseErr == nil {
				s.writerClosed = true
				if r.Closed.LastEntry != s.lastOK {
					s.fail("writer closed at %d, its LAC is %d", r.Closed.LastEntry, s.lastOK)
				}
			}
		}
	}
}

// writerDone checks the completion order: successes 0, 1, 2, ... and none
// after a failure.
func (s *sim) writerDone(d completion) {
	if d.Err != nil {
		if s.writerErr == nil {
			s.logf("writer: entry %d fails: %v", d.Entry, d.Err)
		}
		s.writerErr = d.Err
		return
	}
	if s.writerErr != nil {
		s.fail("entry %d acknowledged after a failure (%v)", d.Entry, s.writerErr)
	}
	if d.Entry != s.lastOK+1 {
		s.fail("entry %d acknowledged after %d", d.Entry, s.lastOK)
	}
	s.lastOK = d.Entry
	s.acked[d.Entry] = s.now
	if n := s.copies(d.Entry); n < s.meta.AckQuorum {
		s.fail("entry %d acknowledged while %d bookies of its write set hold it, want %d", d.Entry, n, s.meta.AckQuorum)
	}
	s.logf("writer: entry %d acknowledged", d.Entry)
}

func (s *sim) listBookies() {
	var live []string
	for _, b := range s.names {
		if s.bookies[b].up {
			live = append(live, b)
		}
	}
	s.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	s.at(s.delay(), func() { s.w.bookiesListed(live, nil); s.pumpWriter() })
}

// pumpRecovery performs recoverer i's outputs.
func (s *sim) pumpRecovery(i int) {
	r := s.recs[i]
	for !s.recDead[i] {
		o := r.ready()
		if len(o.Fences) == 0 && len(o.Reads) == 0 && len(o.Adds) == 0 && o.Meta == nil && !o.Done {
			return
		}
		for _, b := range o.Fences {
			s.sendFence(b, func(lac ids.EntryID, err error) { r.fenceResult(b, lac, err); s.pumpRecovery(i) })
		}
		for _, op := range o.Reads {
			s.sendRead(op, func(p []byte, err error) { r.readResult(op.Bookie, op.Entry, p, err); s.pumpRecovery(i) })
		}
		for _, op := range o.Adds {
			s.sendAdd(op, func(err error) { r.addResult(op.Bookie, op.Entry, err); s.pumpRecovery(i) })
		}
		if o.Meta != nil {
			s.sendMeta(fmt.Sprintf("recoverer %d", i), *o.Meta, func(l *metadata.Ledger, err error) { r.metaResult(l, err); s.pumpRecovery(i) })
		}
		if o.Done {
			s.logf("recoverer %d done: %v", i, o.Err)
			if o.Err != nil {
				s.fail("recoverer %d: %v", i, o.Err)
			}
			s.recOut[i] = o.Result
		}
	}
}

// request delivers a request to bookie b after a delay and its answer back
// after another; a down bookie drops it or refuses it, and a faulty
// network drops some answers.
func (s *sim) request(b string, handle func(bk *simBookie) func()) {
	s.at(s.delay(), func() {
		bk := s.bookies[b]
		if !bk.up || s.lost() {
			return
		}
		reply := handle(bk)
		if s.lost() {
			return
		}
		s.at(s.delay(), reply)
	})
}

func (s *sim) sendAdd(op addOp, answer func(error)) {
	s.request(op.Bookie, func(bk *simBookie) func() {
		if bk.fenced && !op.Recovery {
			return func() { answer(errcode.New(errcode.Fenced, "sim: fenced")) }
		}
		if old, ok := bk.entries[op.Entry]; ok && !bytes.Equal(old, op.Payload) {
			s.fail("bookie %s: entry %d rewritten with different bytes", op.Bookie, op.Entry)
		}
		bk.known = true
		bk.entries[op.Entry] = op.Payload
		bk.lac = max(bk.lac, op.LAC)
		return func() { answer(nil) }
	})
}

func (s *sim) sendFence(b string, answer func(ids.EntryID, error)) {
	s.request(b, func(bk *simBookie) func() {
		bk.known, bk.fenced = true, true
		lac := bk.lac
		return func() { answer(lac, nil) }
	})
}

func (s *sim) sendRead(op readOp, answer func([]byte, error)) {
	s.request(op.Bookie, func(bk *simBookie) func() {
		p, ok := bk.entries[op.Entry]
		switch {
		case ok:
			return func() { answer(p, nil) }
		case !bk.known:
			return func() { answer(nil, errcode.New(errcode.LedgerNotFound, "sim")) }
		default:
			return func() { answer(nil, errcode.New(errcode.EntryNotFound, "sim")) }
		}
	})
}

// sendMeta runs a metadata operation on the CAS store; under faults an
// answer may be an ambiguous timeout (the put may or may not have applied).
func (s *sim) sendMeta(who string, op metaOp, answer func(*metadata.Ledger, error)) {
	s.at(s.delay(), func() {
		var l *metadata.Ledger
		var err error
		if op.Put == nil {
			l = cloneLedger(s.meta)
		} else if op.Put.Version != s.meta.Version {
			err = metadata.ErrBadVersion
		} else if s.applyPut(who, op.Put) {
			l = cloneLedger(s.meta)
		}
		if s.faulty && s.rng.IntN(25) == 0 {
			l, err = nil, errcode.New(errcode.Timeout, "sim: metadata timeout")
		}
		s.at(s.delay(), func() { answer(l, err) })
	})
}

// applyPut stores a CAS, checking that states only move forward and that
// a closed ledger never changes.
func (s *sim) applyPut(who string, l *metadata.Ledger) bool {
	old := s.meta
	order := map[metadata.LedgerState]int{metadata.LedgerOpen: 0, metadata.LedgerInRecovery: 1, metadata.LedgerClosed: 2}
	if order[l.State] < order[old.State] || old.State == metadata.LedgerClosed {
		s.fail("%s: metadata moved from %s to %s", who, old.State, l.State)
		return false
	}
	nl := cloneLedger(l)
	nl.Version = old.Version + 1
	s.meta = nl
	s.logf("%s: metadata v%d %s last=%d fragments=%v", who, nl.Version, nl.State, nl.LastEntry, nl.Fragments)
	return true
}

// check verifies the end state; see the test's doc.
func (s *sim) check() error {
	if s.meta.State != metadata.LedgerClosed {
		return fmt.Errorf("ledger not closed at the end: %s", s.meta.State)
	}
	s.final = s.meta
	last := s.meta.LastEntry
	for i, out := range s.recOut {
		if s.recDead[i] {
			continue
		}
		if out == nil || out.LastEntry != last || out.Version != s.meta.Version {
			return fmt.Errorf("recoverer %d returned %+v, the store holds %+v", i, out, s.meta)
		}
	}
	fencedAt := time.Duration(-1)
	for _, r := range s.recs {
		if r.FencedAt >= 0 && (fencedAt < 0 || r.FencedAt < fencedAt) {
			fencedAt = r.FencedAt
		}
	}
	for e, at := range s.acked {
		if e > last {
			return fmt.Errorf("entry %d acknowledged at %v (fence quorum at %v) but the ledger closed at %d", e, at, fencedAt, last)
		}
	}
	if err := s.checkCopies(last); err != nil {
		return err
	}
	if err := s.checkReadable(last); err != nil {
		return err
	}
	return s.checkNoDivergence()
}

// checkCopies: every entry up to the last one is on at least Qa bookies of
// its write set, with the bytes the writer appended.
func (s *sim) checkCopies(last ids.EntryID) error {
	for e := ids.EntryID(0); e <= last; e++ {
		_, ok := s.payloads[e]
		if !ok {
			return fmt.Errorf("entry %d in the closed ledger was never appended", e)
		}
		if n := s.copies(e); n < s.meta.AckQuorum {
			_, acked := s.acked[e]
			return fmt.Errorf("entry %d (acked: %v) readable from %d bookies of its write set, want %d", e, acked, n, s.meta.AckQuorum)
		}
	}
	return nil
}

// checkReadable reads every entry of the closed ledger the way Client.Read
// does (the first live bookie of its write set that has it) and compares
// it with what the writer appended, acknowledged or not.
func (s *sim) checkReadable(last ids.EntryID) error {
	for e := ids.EntryID(0); e <= last; e++ {
		var got []byte
		for _, b := range writeSet(s.meta.FragmentFor(e), s.meta.WriteQuorum, e) {
			if bk := s.bookies[b]; bk.up && bk.entries[e] != nil {
				got = bk.entries[e]
				break
			}
		}
		if !bytes.Equal(got, s.payloads[e]) {
			_, acked := s.acked[e]
			return fmt.Errorf("entry %d (acked: %v) reads %q, the writer appended %q", e, acked, got, s.payloads[e])
		}
	}
	return nil
}

// copies counts the bookies of e's write set (in the stored metadata) that
// hold the bytes the writer appended as e.
func (s *sim) copies(e ids.EntryID) int {
	n := 0
	for _, b := range writeSet(s.meta.FragmentFor(e), s.meta.WriteQuorum, e) {
		if p, ok := s.bookies[b].entries[e]; ok && bytes.Equal(p, s.payloads[e]) {
			n++
		}
	}
	return n
}

// checkNoDivergence: no bookie holds bytes for an entry other than what the
// writer appended.
func (s *sim) checkNoDivergence() error {
	for _, b := range s.names {
		for e, p := range s.bookies[b].entries {
			if !bytes.Equal(p, s.payloads[e]) {
				return fmt.Errorf("bookie %s holds entry %d = %q, the writer appended %q", b, e, p, s.payloads[e])
			}
		}
	}
	return nil
}
