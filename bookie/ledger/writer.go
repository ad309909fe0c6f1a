package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// Writer appends entries to one ledger. It is the ledger's only writer.
// Its methods are safe for concurrent use; completions are delivered in
// entry order on one goroutine of the writer (a callback must not block for
// long: it holds back the next ones).
type Writer struct {
	c   *Client
	id  ids.LedgerID
	sem chan struct{} // one token per append not completed yet

	events    chan func() // run on the loop goroutine
	kick      chan struct{}
	quit      chan struct{}
	stopped   chan struct{} // closed when the loop has exited
	delivered chan struct{} // closed when the delivery goroutine has exited
	stopMu    sync.Once
	wg        sync.WaitGroup // the loop, stream and metadata goroutines

	mu struct {
		sync.Mutex
		appends []appendReq // taken by the loop on kick
		closed  bool
	}

	lac     atomic.Int64
	termErr atomic.Pointer[error] // why the loop exited

	// Owned by the loop goroutine.
	sm        *writerState
	streams   *streamSet
	callbacks []func(ids.EntryID, error)
	annotate  func(*metadata.Ledger)
	closeWait chan closeResult
	started   time.Time
	complete  chan completionCall
	// what logChanges already logged
	fragments    int
	fencedLogged bool
}

type appendReq struct {
	payload []byte
	done    func(ids.EntryID, error)
}

type closeResult struct {
	l   *metadata.Ledger
	err error
}

type completionCall struct {
	done func(ids.EntryID, error)
	e    ids.EntryID
	err  error
}

// startWriter starts the loop of a writer of the open ledger l.
func (c *Client) startWriter(l *metadata.Ledger) (*Writer, error) {
	cfg := c.cfg
	w := &Writer{
		c: c, id: l.ID,
		sem:       make(chan struct{}, cfg.MaxInFlight),
		events:    make(chan func(), 1024),
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		delivered: make(chan struct{}),
		complete:  make(chan completionCall, cfg.MaxInFlight),
		started:   time.Now(),
		sm:        newWriterState(l, writerTiming{AddTimeout: cfg.AddTimeout, RetryInterval: cfg.RetryInterval}),
	}
	w.lac.Store(int64(ids.NoEntry))
	if err := c.register(w); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.streams = &streamSet{
		c: c, ledger: l.ID, ctx: ctx, wg: &w.wg, queueCap: 2 * cfg.MaxInFlight,
		post: w.post, onResult: w.sm.addResult, onBroken: w.sm.bookieFailed,
		streams: map[string]*addStream{},
	}
	w.wg.Add(1)
	go func() {
		defer close(w.delivered)
		w.deliver()
	}()
	go func() {
		defer w.wg.Done()
		defer cancel()
		w.run()
	}()
	return w, nil
}

// ID returns the ledger's id.
func (w *Writer) ID() ids.LedgerID { return w.id }

// LAC returns the last add confirmed: every entry up to it succeeded.
func (w *Writer) LAC() ids.EntryID { return ids.EntryID(w.lac.Load()) }

// Append appends payload as the next entry; done is called once with its id
// on success, or with an error (ErrFenced, ErrLedgerClosed, ...), in entry
// order. Append blocks while MaxInFlight appends are not completed.
func (w *Writer) Append(payload []byte, done func(ids.EntryID, error)) {
	if len(payload) > w.c.cfg.MaxEntryBytes {
		done(ids.NoEntry, errcode.New(errcode.MessageTooLarge, "ledger: entry of %d bytes, limit %d", len(payload), w.c.cfg.MaxEntryBytes))
		return
	}
	select {
	case w.sem <- struct{}{}:
	case <-w.stopped:
		done(ids.NoEntry, w.err())
		return
	}
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		<-w.sem
		done(ids.NoEntry, w.err())
		return
	}
	w.mu.appends = append(w.mu.appends, appendReq{payload, done})
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takeAppends hands the queued appends to the machine, in order.
func (w *Writer) takeAppends() {
	w.mu.Lock()
	q := w.mu.appends
	w.mu.appends = nil
	w.mu.Unlock()
	for _, a := range q {
		w.callbacks = append(w.callbacks, a.done)
		w.sm.append(a.payload)
	}
}

// AppendSync appends payload and waits for its outcome. Cancelling ctx stops
// the wait, not the append.
func (w *Writer) AppendSync(ctx context.Context, payload []byte) (ids.EntryID, error) {
	type result struct {
		e   ids.EntryID
		err error
	}
	ch := make(chan result, 1)
	w.Append(payload, func(e ids.EntryID, err error) { ch <- result{e, err} })
	select {
	case r := <-ch:
		return r.e, r.err
	case <-ctx.Done():
		return ids.NoEntry, errcode.FromError(ctx.Err())
	}
}

// Close stops appends, waits for the pending ones, and closes the ledger
// (state closed, LastEntry = LAC, Bytes) by CAS, after annotate (may be nil)
// set the caller's fields (Topic, publish times, Properties; the state,
// last entry, fragments and version are kept). ErrFenced if a recovery got
// there first. If ctx ends first, the pending appends fail, the writer stops
// and the ledger stays open (a Recover closes it).
func (w *Writer) Close(ctx context.Context, annotate func(*metadata.Ledger)) (*metadata.Ledger, error) {
	reply := make(chan closeResult, 1)
	select {
	// Appends that returned before this call may still wait for the loop
	// in w.mu.appends: they are taken before the close, so that they are
	// written and waited for, not failed as closed.
	case w.events <- func() { w.takeAppends(); w.annotate = annotate; w.closeWait = reply; w.sm.close() }:
	case <-w.stopped:
		w.stop()
		return nil, w.err()
	}
	select {
	case r := <-reply:
		w.stop()
		return r.l, r.err
	case <-w.stopped:
		w.stop()
		// A close that completes ends the loop right after it replies, and
		// select picks at random among ready cases: the reply, when there
		// is one, is the answer (else a closed ledger was reported as a
		// failed close, and its topic dropped).
		select {
		case r := <-reply:
			return r.l, r.err
		default:
		}
		return nil, w.err()
	case <-ctx.Done():
		w.stop()
		return nil, fmt.Errorf("ledger: close %d: %w", w.id, errcode.FromError(ctx.Err()))
	}
}

// stop ends the loop and waits for the writer's goroutines (but the one
// delivering completions, which may be the caller).
func (w *Writer) stop() {
	w.stopMu.Do(func() { close(w.quit) })
	w.wg.Wait()
	w.c.unregister(w)
}

func (w *Writer) err() error {
	if p := w.termErr.Load(); p != nil {
		return *p
	}
	return ErrLedgerClosed
}

// post runs f on the loop goroutine (dropped once the loop is gone).
func (w *Writer) post(f func()) {
	select {
	case w.events <- f:
	case <-w.quit:
	case <-w.stopped:
	}
}

// run is the writer's loop: it owns the state machine and does its I/O.
func (w *Writer) run() {
	defer w.shutdown()
	ticker := time.NewTicker(w.c.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case f := <-w.events:
			f()
		case <-w.kick:
			w.takeAppends()
		case <-ticker.C:
			w.sm.tick(time.Since(w.started))
		case <-w.quit:
			return
		}
		if w.flush() {
			return
		}
	}
}

// flush performs the machine's outputs until it has none. It reports true
// when the writer is finished (closed or fenced).
func (w *Writer) flush() bool {
	for {
		r := w.sm.ready()
		if len(r.Adds) == 0 && r.Meta == nil && !r.ListBookies && len(r.Done) == 0 && !r.CloseDone {
			return w.sm.err != nil && len(w.callbacks) == 0
		}
		w.lac.Store(int64(w.sm.LAC()))
		w.logChanges()
		for _, op := range r.Adds {
			if !w.streams.send(op) {
				w.sm.bookieFailed(op.Bookie)
			}
		}
		if r.Meta != nil {
			w.doMeta(*r.Meta)
		}
		if r.ListBookies {
			w.listBookies()
		}
		w.deliverDone(r.Done)
		if r.CloseDone && w.closeWait != nil {
			w.closeWait <- closeResult{r.Closed, r.CloseErr}
		}
	}
}

// logChanges logs ensemble changes (and closes the streams of replaced
// bookies) and fencing, once each.
func (w *Writer) logChanges() {
	if n := len(w.sm.l.Fragments); n != w.fragments {
		if w.fragments > 0 {
			f := lastFragment(w.sm.l)
			w.c.log.Info("ledger ensemble changed", "ledger", w.id, "first_entry", f.FirstEntry, "bookies", f.Bookies)
			for b, st := range w.streams.streams {
				if !slices.Contains(f.Bookies, b) {
					w.streams.drop(st) // replaced: no add goes there any more
				}
			}
		}
		w.fragments = n
	}
	if w.sm.err == ErrFenced && !w.fencedLogged {
		w.fencedLogged = true
		w.c.log.Warn("ledger fenced: another owner recovered it", "ledger", w.id, "lac", w.sm.LAC())
	}
}

// deliverDone hands completions to the delivery goroutine, in order.
func (w *Writer) deliverDone(done []completion) {
	for _, d := range done {
		cb := w.callbacks[0]
		w.callbacks[0] = nil
		w.callbacks = w.callbacks[1:]
		w.complete <- completionCall{cb, d.Entry, d.Err} // never blocks: cap MaxInFlight
	}
}

// deliver runs the callbacks, in order, and frees their in-flight slots.
func (w *Writer) deliver() {
	for {
		select {
		case c := <-w.complete:
			c.done(c.e, c.err)
			<-w.sem
		case <-w.stopped:
			for {
				select {
				case c := <-w.complete:
					c.done(c.e, c.err)
					<-w.sem
				default:
					return
				}
			}
		}
	}
}

// shutdown fails what is still pending and stops the streams.
func (w *Writer) shutdown() {
	err := w.sm.err
	if err == nil {
		err = ErrLedgerClosed
	}
	w.termErr.Store(&err)
	w.mu.Lock()
	w.mu.closed = true
	q := w.mu.appends
	w.mu.appends = nil
	w.mu.Unlock()
	for _, cb := range w.callbacks {
		w.complete <- completionCall{cb, ids.NoEntry, err}
	}
	for _, a := range q {
		w.complete <- completionCall{a.done, ids.NoEntry, err}
	}
	w.callbacks = nil
	w.streams.closeAll()
	close(w.stopped)
}

// doMeta runs one metadata operation in a goroutine; its result goes back
// to the loop.
func (w *Writer) doMeta(op metaOp) {
	var put *metadata.Ledger
	if op.Put != nil {
		put = cloneLedger(op.Put)
		if op.Close && w.annotate != nil {
			annotateKeeping(put, w.annotate)
		}
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		l, err := w.c.metaOp(w.id, put)
		w.post(func() { w.sm.metaResult(l, err) })
	}()
}

func (w *Writer) listBookies() {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.MetaTimeout)
		defer cancel()
		live, err := w.c.liveBookies(ctx)
		// Writers should not all pick the same spare.
		rand.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		w.post(func() { w.sm.bookiesListed(live, err) })
	}()
}

// metaOp reads ledger id (put == nil) or CASes put.
func (c *Client) metaOp(id ids.LedgerID, put *metadata.Ledger) (*metadata.Ledger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.MetaTimeout)
	defer cancel()
	if put == nil {
		return c.store.GetLedger(ctx, id)
	}
	if err := c.store.UpdateLedger(ctx, put); err != nil {
		return nil, err
	}
	return put, nil
}

// annotateKeeping applies annotate to l but keeps the fields the ledger's
// correctness rests on.
func annotateKeeping(l *metadata.Ledger, annotate func(*metadata.Ledger)) {
	keep := cloneLedger(l)
	annotate(l)
	l.ID, l.Ensemble, l.WriteQuorum, l.AckQuorum = keep.ID, keep.Ensemble, keep.WriteQuorum, keep.AckQuorum
	l.State, l.Fragments, l.LastEntry, l.Version = keep.State, keep.Fragments, keep.LastEntry, keep.Version
}
