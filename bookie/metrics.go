package bookie

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/errcode"
)

// metrics are the bookie's Prometheus series, registered on
// Config.Registerer when it is set.
type metrics struct {
	adds            *prometheus.CounterVec // by result code
	addBytes        prometheus.Counter     //
	fsync           prometheus.Histogram   // one fdatasync
	batchAdds       prometheus.Histogram   // requests answered per fdatasync
	corruptions     prometheus.Counter     // CRC mismatches on read or replay
	checkpoint      prometheus.Histogram   // encode + write + fsync of a checkpoint of ledger states
	segments        prometheus.Gauge       // journal segments on disk
	segmentsCreated *prometheus.CounterVec // by whether zeros were written
	reclaimed       prometheus.Counter     // segments removed
	recycled        prometheus.Counter     // free segments made new ones
	freeSegments    prometheus.Gauge       // free segments kept for reuse
	recovered       *prometheus.CounterVec // segments replayed at open, by source
	readOnly        prometheus.Gauge       // 1 while read-only
	diskUsage       prometheus.Gauge       // fraction of the data directory's disk used
	scrubPasses     prometheus.Counter     // scrub passes completed
	scrubBytes      prometheus.Counter     // record bytes the scrubber read and checked
	scrubDamaged    prometheus.Counter     // damaged records the scrubber found
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lat := prometheus.ExponentialBuckets(0.00005, 2, 18) // 50 µs .. 6.5 s
	m := &metrics{
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bookie_adds_total", Help: "Adds answered by the bookie, by result code."}, []string{"code"}),
		addBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_add_bytes_total", Help: "Payload bytes of acknowledged adds."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_bookie_journal_fsync_seconds", Help: "Duration of one journal fdatasync.", Buckets: lat}),
		batchAdds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_bookie_journal_group_requests", Help: "Requests made durable by one fdatasync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_corruptions_total", Help: "Journal records that failed their checksum."}),
		checkpoint: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_bookie_checkpoint_seconds", Help: "Duration of one index checkpoint.", Buckets: lat}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_bookie_journal_segments", Help: "Journal segments in use (the empty spare made ahead of the next rotation not counted)."}),
		segmentsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bookie_journal_segments_created_total",
			Help: "Journal segments created, by whether they were written with zeros first (zeros=true: faster fdatasyncs, the segment written twice)."}, []string{"zeros"}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_reclaimed_segments_total", Help: "Journal segments let go of (removed, or kept free for reuse) after their entries were deleted or compacted."}),
		recycled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_journal_segments_recycled_total",
			Help: "Journal segments made from a free (reclaimed) segment instead of a new file: no zeros to write, no extents to allocate."}),
		freeSegments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_bookie_journal_free_segments", Help: "Reclaimed journal segments kept to be written again (JournalRecycleSegments at most)."}),
		readOnly: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_bookie_read_only", Help: "1 while the bookie refuses new adds (disk over DiskUsageThreshold, or no journal segment could be made)."}),
		diskUsage: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_bookie_disk_usage_ratio", Help: "Fraction of the data directory's file system in use, as last measured."}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_bookie_recovered_segments_total",
			Help: "Journal segments applied to the index at open: from their segment index, or by a scan (the newest, and any without a valid index)."}, []string{"from"}),
		scrubPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_scrub_passes_total", Help: "Scrub passes completed: every stored entry read back and checked."}),
		scrubBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_scrub_bytes_total", Help: "Journal record bytes the scrubber read back and checked."}),
		scrubDamaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_bookie_scrub_damaged_entries_total",
			Help: "Entries whose record the scrubber found damaged (checksum or header) and marked, for the ledger check to copy back."}),
	}
	if reg != nil {
		reg.MustRegister(m.adds, m.addBytes, m.fsync, m.batchAdds, m.corruptions, m.checkpoint, m.segments, m.segmentsCreated, m.reclaimed, m.recycled, m.freeSegments, m.recovered, m.readOnly, m.diskUsage,
			m.scrubPasses, m.scrubBytes, m.scrubDamaged)
	}
	return m
}

func (m *metrics) addDone(err error, bytes int) {
	m.adds.WithLabelValues(errcode.CodeOf(err).String()).Inc()
	if err == nil {
		m.addBytes.Add(float64(bytes))
	}
}

func (m *metrics) since(h prometheus.Histogram, start time.Time) {
	h.Observe(time.Since(start).Seconds())
}
