package tiering

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the tiering tier's Prometheus metrics. One Metrics is shared
// by the Offloader, Reader and Seeker of a process and registered once.
type Metrics struct {
	offloadBytes    prometheus.Counter
	offloadObjects  prometheus.Counter
	offloadFailures prometheus.Counter
	offloadRetries  prometheus.Counter
	uploadSeconds   prometheus.Histogram
	readBytes       prometheus.Counter
	readBatches     prometheus.Counter
	cacheHits       prometheus.Counter
	seekReads       prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "strata", Subsystem: "tiering", Name: name, Help: help})
	}
	m := &Metrics{
		offloadBytes:    c("offload_bytes_total", "Bytes of segment objects written and verified."),
		offloadObjects:  c("offload_objects_total", "Segment objects written and verified."),
		offloadFailures: c("offload_failures_total", "Offload calls that failed."),
		offloadRetries:  c("offload_retries_total", "Object uploads retried after a retriable error."),
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "tiering", Name: "upload_seconds",
			Help:    "Time to put, read back and verify one segment object.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		readBytes:   c("read_bytes_total", "Bytes of record batches fetched from the object store."),
		readBatches: c("read_batches_total", "Record batches fetched from the object store."),
		cacheHits:   c("read_cache_hits_total", "Record batch reads served from the reader's cache."),
		seekReads:   c("seek_object_reads_total", "Object reads made by time seeks."),
	}
	if reg != nil {
		reg.MustRegister(m.offloadBytes, m.offloadObjects, m.offloadFailures, m.offloadRetries,
			m.uploadSeconds, m.readBytes, m.readBatches, m.cacheHits, m.seekReads)
	}
	return m
}
