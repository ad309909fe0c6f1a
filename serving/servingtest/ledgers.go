package servingtest

import (
	"context"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/serving"
)

// ErrFenced is what an append to a fenced ledger fails with.
var ErrFenced = errcode.New(errcode.Fenced, "servingtest: ledger fenced")

// Ledgers is an in-memory serving.Ledgers: entries live in a map, ledger
// metadata in the Meta twin, and Recover fences the ledger so that its old
// writer's next append fails with errcode.Fenced.
type Ledgers struct {
	meta  *Meta
	mu    sync.Mutex
	data  map[ids.LedgerID]*ledgerData
	stall chan struct{} // while non-nil, appends wait for it to close
}

// Stall holds every append until the returned function is called.
func (l *Ledgers) Stall() (resume func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.stall = ch
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		l.stall = nil
		l.mu.Unlock()
		close(ch)
	}
}

type ledgerData struct {
	entries [][]byte
	fenced  bool
}

// NewLedgers returns a ledger client over meta.
func NewLedgers(meta *Meta) *Ledgers {
	return &Ledgers{meta: meta, data: map[ids.LedgerID]*ledgerData{}}
}

var _ serving.Ledgers = (*Ledgers)(nil)

func (l *Ledgers) Create(ctx context.Context, o serving.CreateOptions) (serving.Writer, error) {
	id, _ := l.meta.NewLedgerID(ctx)
	rec := &metadata.Ledger{ID: id, Ensemble: o.Ensemble, WriteQuorum: o.WriteQuorum, AckQuorum: o.AckQuorum,
		State: metadata.LedgerOpen, LastEntry: ids.NoEntry, Topic: o.Topic, CreatedAt: time.Now().UnixNano()}
	if err := l.meta.CreateLedger(ctx, rec); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.data[id] = &ledgerData{}
	l.mu.Unlock()
	w := &writer{l: l, id: id, lac: ids.NoEntry, queue: make(chan op, 1<<16), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Fence fences a ledger without recovering it (for tests).
func (l *Ledgers) Fence(id ids.LedgerID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.data[id]; d != nil {
		d.fenced = true
	}
}

func (l *Ledgers) Recover(ctx context.Context, id ids.LedgerID, annotate func(*metadata.Ledger)) (*metadata.Ledger, error) {
	l.mu.Lock()
	d := l.data[id]
	if d != nil {
		d.fenced = true
	}
	n := 0
	var bytes uint64
	if d != nil {
		n = len(d.entries)
		for _, e := range d.entries {
			bytes += uint64(len(e))
		}
	}
	l.mu.Unlock()
	rec, err := l.meta.GetLedger(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.State == metadata.LedgerClosed {
		return rec, nil
	}
	if annotate != nil {
		annotate(rec)
	}
	rec.State, rec.LastEntry, rec.Bytes = metadata.LedgerClosed, ids.EntryID(n-1), bytes
	if err := l.meta.UpdateLedger(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (l *Ledgers) Read(ctx context.Context, rec *metadata.Ledger, first, last ids.EntryID) ([]serving.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.data[rec.ID]
	if d == nil {
		return nil, errcode.New(errcode.LedgerNotFound, "ledger %d", rec.ID)
	}
	if first < 0 || int(last) >= len(d.entries) || last < first {
		return nil, errcode.New(errcode.EntryNotFound, "entries %d..%d of ledger %d", first, last, rec.ID)
	}
	out := make([]serving.Entry, 0, last-first+1)
	for e := first; e <= last; e++ {
		out = append(out, serving.Entry{ID: e, Payload: d.entries[e]})
	}
	return out, nil
}

func (l *Ledgers) Delete(ctx context.Context, rec *metadata.Ledger) error {
	l.mu.Lock()
	delete(l.data, rec.ID)
	l.mu.Unlock()
	return l.meta.DeleteLedger(ctx, rec.ID)
}

// Has reports whether the ledger's entries are still stored.
func (l *Ledgers) Has(id ids.LedgerID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.data[id] != nil
}

type op struct {
	payload []byte
	done    func(ids.EntryID, error)
	closed  chan struct{} // a close marker: run stops after it
}

type writer struct {
	l      *Ledgers
	id     ids.LedgerID
	mu     sync.Mutex
	lac    ids.EntryID
	closed bool
	queue  chan op
	done   chan struct{}
}

func (w *writer) ID() ids.LedgerID { return w.id }

func (w *writer) LAC() ids.EntryID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lac
}

// Append queues payload; completions come from the writer's goroutine, in
// order.
func (w *writer) Append(payload []byte, done func(ids.EntryID, error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		go done(ids.NoEntry, errcode.New(errcode.LedgerClosed, "ledger %d closed", w.id))
		return
	}
	w.queue <- op{payload: payload, done: done}
}

func (w *writer) run() {
	defer close(w.done)
	for o := range w.queue {
		if o.closed != nil {
			return
		}
		w.apply(o)
	}
}

func (w *writer) apply(o op) {
	w.l.mu.Lock()
	if st := w.l.stall; st != nil {
		w.l.mu.Unlock()
		<-st
		w.l.mu.Lock()
	}
	d := w.l.data[w.id]
	if d == nil || d.fenced {
		w.l.mu.Unlock()
		o.done(ids.NoEntry, ErrFenced)
		return
	}
	d.entries = append(d.entries, append([]byte(nil), o.payload...))
	id := ids.EntryID(len(d.entries) - 1)
	w.l.mu.Unlock()
	w.mu.Lock()
	w.lac = id
	w.mu.Unlock()
	o.done(id, nil)
}

// Close waits for the queued appends and closes the ledger.
func (w *writer) Close(ctx context.Context, annotate func(*metadata.Ledger)) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.queue <- op{closed: make(chan struct{})}
	}
	w.mu.Unlock()
	<-w.done
	w.l.mu.Lock()
	d := w.l.data[w.id]
	fenced := d == nil || d.fenced
	var bytes uint64
	if d != nil {
		for _, e := range d.entries {
			bytes += uint64(len(e))
		}
	}
	w.l.mu.Unlock()
	if fenced {
		return ErrFenced
	}
	rec, err := w.l.meta.GetLedger(ctx, w.id)
	if err != nil {
		return err
	}
	if rec.State == metadata.LedgerClosed {
		return nil
	}
	if annotate != nil {
		annotate(rec)
	}
	rec.State, rec.LastEntry, rec.Bytes = metadata.LedgerClosed, w.LAC(), bytes
	return w.l.meta.UpdateLedger(ctx, rec)
}
