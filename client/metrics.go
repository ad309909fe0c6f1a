package client

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the SDK's own measurements of where a send's time goes, from
// the application's call to its receipt: the server's
// strata_publish_latency_seconds starts only when the batch arrives. nil
// when the client was built without Metrics; every method accepts nil.
type metrics struct {
	sendLatency prometheus.Histogram   // message enqueued → its receipt
	batchWait   prometheus.Histogram   // a batch's oldest message enqueued → the batch cut
	batchRTT    prometheus.Histogram   // batch sent → its receipt
	batchSize   prometheus.Histogram   // messages per batch
	sendErrors  *prometheus.CounterVec // messages that failed, by code
	reconnects  prometheus.Counter     // producer streams opened after the first
}

// Metrics registers the client's metrics with reg (Prometheus histograms of
// send latency, batching wait, batch round trip and batch size, and counters
// of failed sends and producer reconnects), so that an application can see
// which part of its publish latency is the client's.
func Metrics(reg prometheus.Registerer) Option { return func(c *clientConfig) { c.registerer = reg } }

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	lat := prometheus.ExponentialBuckets(100e-6, 2, 16) // 100 µs to 3.3 s
	m := &metrics{
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_client_send_latency_seconds",
			Help: "From a message's Send or SendAsync to its receipt.", Buckets: lat}),
		batchWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_client_batch_wait_seconds",
			Help: "How long a batch's oldest message waited for the batch to be cut (linger, full window).", Buckets: lat}),
		batchRTT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_client_batch_round_trip_seconds",
			Help: "From a batch's send to its receipt: network, serving node and bookies.", Buckets: lat}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_client_batch_messages",
			Help: "Messages per batch sent.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_client_send_errors_total",
			Help: "Messages whose send failed, by error code."}, []string{"code"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_client_producer_reconnects_total",
			Help: "Producer streams opened again after a failure or an ownership change."}),
	}
	for _, c := range []prometheus.Collector{m.sendLatency, m.batchWait, m.batchRTT, m.batchSize, m.sendErrors, m.reconnects} {
		if err := reg.Register(c); err != nil {
			return nil, invalidArg("metrics: %v", err)
		}
	}
	return m, nil
}

func (m *metrics) batchCut(oldest time.Time, n int, now time.Time) {
	if m != nil {
		m.batchWait.Observe(now.Sub(oldest).Seconds())
		m.batchSize.Observe(float64(n))
	}
}

func (m *metrics) receipt(b *sentBatch, now time.Time) {
	if m == nil {
		return
	}
	m.batchRTT.Observe(now.Sub(b.sentAt).Seconds())
	for _, pm := range b.msgs {
		m.sendLatency.Observe(now.Sub(pm.enqueued).Seconds())
	}
}

func (m *metrics) failed(n int, err error) {
	if m != nil {
		m.sendErrors.WithLabelValues(CodeOf(err).String()).Add(float64(n))
	}
}

func (m *metrics) reconnected() {
	if m != nil {
		m.reconnects.Inc()
	}
}
