package loadtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/internal/hiccup"
)

// RunOptions are the optional parts of a run.
type RunOptions struct {
	// Logger receives errors that do not end the run (default: discard).
	Logger *slog.Logger
	// Progress, if set, is called once a second with the interval just
	// closed, from the run's ticker goroutine.
	Progress func(Interval)
}

// run is the state of one Run call.
type run struct {
	w        Workload
	d        Driver
	log      *slog.Logger
	verifier *Verifier
	rec      *Recorder
	keys     []string
	filler   []byte

	producers []*loadProducer
	consumers []*loadConsumer

	receiveErrors atomic.Uint64
	ackErrors     atomic.Uint64

	// hiccups is the machine's own wake-up lateness over the measured
	// window (internal/hiccup), to read the latencies against.
	hiccups Percentiles
	// gcs counts the load generator's own garbage collections over the
	// measured window: each one takes CPU from the clients it measures.
	gcs gcCounter
	// backlog is a backlog run's figures, set once its phases are over.
	backlog *BacklogResult
}

// Run runs workload w against d and returns its result. It does not close
// d. Cancelling ctx stops the run early; the result then covers what was
// done and the error is ctx's.
func Run(ctx context.Context, d Driver, w Workload, opts RunOptions) (*Result, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	r := newRun(d, w, opts)
	topics := w.TopicNames()
	if err := d.Setup(ctx, w, topics); err != nil {
		return nil, fmt.Errorf("loadtest: %s setup: %w", d.Name(), err)
	}
	defer r.closeAll()
	if err := r.openConsumers(ctx, topics); err != nil {
		return nil, err
	}
	if err := r.openProducers(ctx, topics); err != nil {
		return nil, err
	}
	runErr := r.execute(ctx, opts.Progress)
	return r.result(), runErr
}

func newRun(d Driver, w Workload, opts RunOptions) *run {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{w: w, d: d, log: log, verifier: NewVerifier(w.Partitions)}
	if w.SubscriptionType == KeyShared {
		r.verifier.OrderPerKey()
	}
	if w.KeyDistribution != NoKey {
		r.keys = make([]string, w.Keys)
		for i := range r.keys {
			r.keys[i] = fmt.Sprintf("key-%d", i)
		}
	}
	r.filler = makeFiller(w.Payload, w.MessageSize+fillerSlack, rand.New(rand.NewPCG(uint64(w.Seed), 0x5eed)))
	return r
}

// execute runs the producers for warm-up + duration (a backlog run may
// stop them earlier), then drains.
func (r *run) execute(ctx context.Context, progress func(Interval)) error {
	start := time.Now()
	r.rec = NewRecorder(start)
	meter := hiccup.Start()
	if r.w.Warmup == 0 {
		r.rec.StartMeasuring(start)
		r.gcs.start()
	} else {
		warm := time.AfterFunc(r.w.Warmup, func() { r.rec.StartMeasuring(time.Now()); meter.Reset(); r.gcs.start() })
		defer warm.Stop()
	}
	consumeCtx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	var wg sync.WaitGroup
	startConsumers := sync.OnceFunc(func() {
		for _, c := range r.consumers {
			wg.Go(func() { r.consume(consumeCtx, c) })
		}
	})
	backlog := r.w.BacklogBytes > 0
	if backlog {
		r.rec.SetPhase(PhaseBuild, start)
	}
	tickCtx, stopTicker := context.WithCancel(ctx)
	var tickWG sync.WaitGroup
	tickWG.Go(func() { r.tick(tickCtx, progress) })

	var err error
	if backlog {
		err = r.produceBacklog(ctx, start, startConsumers)
	} else {
		startConsumers()
		err = r.produce(ctx, start)
	}
	r.rec.StopMeasuring(time.Now())
	r.hiccups = percentilesOf(meter.Stop())
	r.gcs.stop()
	startConsumers() // a backlog that was never built still has to be received
	if err == nil {
		err = r.drain(ctx)
	}
	stopConsumers()
	wg.Wait()
	stopTicker()
	tickWG.Wait()
	r.closeInterval(time.Now()) // the last, partial interval
	return err
}

// closeInterval closes the recorder's interval at now with the backlog
// then.
func (r *run) closeInterval(now time.Time) Interval {
	n := r.verifier.Missing()
	return r.rec.Tick(now, n, n*uint64(r.w.MessageSize))
}

// tick closes an interval every second.
func (r *run) tick(ctx context.Context, progress func(Interval)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			iv := r.closeInterval(now)
			if progress != nil {
				progress(iv)
			}
		}
	}
}

// produce runs every producer until the end of the load and flushes them.
func (r *run) produce(ctx context.Context, start time.Time) error {
	r.send(ctx, start)
	return r.flush(ctx)
}

// send runs every producer until the end of the load or until ctx ends,
// and marks when they stopped.
func (r *run) send(ctx context.Context, start time.Time) {
	end := start.Add(r.w.Warmup + r.w.Duration)
	pctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range r.producers {
		wg.Go(func() { r.runProducer(pctx, p, start) })
	}
	wg.Wait()
	r.rec.StopSending(time.Now())
}

// flush waits until every producer's sends are answered, DrainTimeout at
// most.
func (r *run) flush(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fctx, fcancel := context.WithTimeout(ctx, r.w.DrainTimeout)
	defer fcancel()
	for _, p := range r.producers {
		for part, dp := range p.parts {
			if err := dp.Flush(fctx); err != nil {
				r.log.Warn("loadtest: flush", "producer", p.id, "partition", part, "err", err)
			}
		}
	}
	return ctx.Err()
}

// drain waits until every acknowledged message was received, or until
// consumers made no progress for DrainTimeout.
func (r *run) drain(ctx context.Context) error {
	const poll = 50 * time.Millisecond
	last, lastProgress := r.verifier.Missing(), time.Now()
	for last > 0 && time.Since(lastProgress) < r.w.DrainTimeout {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		if m := r.verifier.Missing(); m != last {
			last, lastProgress = m, time.Now()
		}
	}
	return nil
}

func (r *run) result() *Result {
	now := time.Now()
	if r.rec == nil {
		r.rec = NewRecorder(now)
	}
	t := r.rec.Totals(now)
	v := r.verifier.Report()
	res := &Result{
		Driver:           r.d.Name(),
		Durability:       r.d.Durability(),
		Verification:     v,
		PublishLatencyMs: t.PublishLatencyMs,
		E2ELatencyMs:     t.EndToEndLatencyMs,
		HiccupMs:         r.hiccups,
		MeasuredSeconds:  t.Seconds,
		GeneratorProcs:   runtime.GOMAXPROCS(0),
		GeneratorGOGC:    int(readMetric(gogcMetric)),
		ReceiveErrors:    r.receiveErrors.Load(),
		AckErrors:        r.ackErrors.Load(),
		Workload:         summarize(r.w),
		Intervals:        r.rec.Intervals(),
		Failed:           !v.OK(),
	}
	if r.backlog != nil {
		b := *r.backlog
		b.DrainPublishLatencyMs = r.rec.DrainPublishLatency()
		res.Backlog = &b
	}
	if t.Seconds > 0 {
		res.GeneratorGCsPerS = float64(r.gcs.n.Load()) / t.Seconds
		res.ThroughputMsgsPerS = float64(t.Acked) / t.Seconds
		res.ThroughputMBPerS = float64(t.AckedBytes) / t.Seconds / 1e6
		res.ConsumeThroughputMsgsPerS = float64(t.Received) / t.Seconds
	}
	return res
}

func (r *run) closeAll() {
	for _, p := range r.producers {
		for _, dp := range p.parts {
			if err := dp.Close(); err != nil {
				r.log.Warn("loadtest: close producer", "err", err)
			}
		}
	}
	for _, c := range r.consumers {
		if err := c.c.Close(); err != nil {
			r.log.Warn("loadtest: close consumer", "err", err)
		}
	}
}

// partitionFor routes a message: by key hash, or round robin without a key.
func partitionFor(key string, n int64, partitions int) int {
	if key == "" {
		return int(n % int64(partitions))
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(partitions))
}

const (
	gcCyclesMetric = "/gc/cycles/total:gc-cycles"
	gogcMetric     = "/gc/gogc:percent"
)

// gcCounter counts this process's garbage collections between start and
// stop, which run on different goroutines (the warm-up timer's and Run's).
type gcCounter struct {
	mu    sync.Mutex
	begun uint64
	on    bool
	n     atomic.Uint64
}

func (g *gcCounter) start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.begun, g.on = readMetric(gcCyclesMetric), true
}

func (g *gcCounter) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.on {
		g.n.Store(readMetric(gcCyclesMetric) - g.begun)
		g.on = false
	}
}

// readMetric reads one of the runtime's uint64 metrics (0 if this
// runtime has no such metric).
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
