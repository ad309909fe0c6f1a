package serving

import "github.com/prometheus/client_golang/prometheus"

// metrics are the serving node's Prometheus series, registered on the
// registry passed to New.
type metrics struct {
	publishedMessages *prometheus.CounterVec // by topic
	publishedBytes    *prometheus.CounterVec // by topic
	publishLatency    prometheus.Histogram   // receive → durable receipt
	bookieWrite       prometheus.Histogram   // ledger append → quorum ack
	deliveredMessages *prometheus.CounterVec // by topic
	backlog           *prometheus.GaugeVec   // by topic, subscription (entries)
	backlogBytes      *prometheus.GaugeVec   // by topic, subscription (estimated bytes)
	backlogAge        *prometheus.GaugeVec   // by topic, subscription (seconds)
	delayed           *prometheus.GaugeVec   // by topic, subscription: entries held back (delay.go)
	keySharedWaiting  *prometheus.GaugeVec   // by topic, subscription: key_shared entries with waiting messages
	ownedTopics       prometheus.Gauge       //
	takeovers         prometheus.Counter     //
	loadRecoveries    prometheus.Counter     // loads that fenced and recovered an open ledger
	loadReplayed      prometheus.Counter     // entries loads read back for deduplication
	earlierReads      prometheus.Counter     // entries of earlier owners read back for the receipts of resends
	drops             *prometheus.CounterVec // by reason
	sendErrors        *prometheus.CounterVec // by code
	offloadedLedgers  prometheus.Counter     //
	offloadFailures   prometheus.Counter     // failed offload passes
	tierReadErrors    prometheus.Counter     // failed object-store reads
	quotaEvictions    prometheus.Counter     // subscriptions moved forward by a backlog quota (quota.go)
	staleAcks         prometheus.Counter     // acked ids dropped, made before a cursor move (cursorepoch.go)
	dispatchThrottled *prometheus.CounterVec // by topic: seconds dispatchers waited for the dispatch rate
	publishThrottled  *prometheus.CounterVec // by topic: seconds producers' streams waited for the publish rate
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lat := prometheus.ExponentialBuckets(0.0001, 2, 18) // 0.1 ms .. 13 s
	m := &metrics{
		publishedMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_publish_messages_total", Help: "Messages persisted, by topic."}, []string{"topic"}),
		publishedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_publish_bytes_total", Help: "Entry bytes persisted, by topic."}, []string{"topic"}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_publish_latency_seconds", Help: "Batch received to receipt sent.", Buckets: lat}),
		bookieWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_bookie_write_latency_seconds", Help: "Ledger append to ack quorum.", Buckets: lat}),
		deliveredMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_deliver_messages_total", Help: "Messages sent to consumers, by topic."}, []string{"topic"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_subscription_backlog_entries", Help: "Entries not yet acknowledged, by subscription."},
			[]string{"topic", "subscription"}),
		backlogAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_subscription_backlog_age_seconds", Help: "Age of the oldest message a durable subscription has not acknowledged, by its publish time (0 with no backlog), by subscription."},
			[]string{"topic", "subscription"}),
		backlogBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_subscription_backlog_bytes", Help: "Bytes of the entries after the mark-delete position (estimated from ledger sizes, as Pulsar's backlogSize), by subscription."},
			[]string{"topic", "subscription"}),
		delayed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_subscription_delayed_entries", Help: "Entries a shared or key_shared subscription holds back until their delivery time, by subscription."},
			[]string{"topic", "subscription"}),
		keySharedWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_subscription_key_shared_waiting_entries", Help: "Entries of a key_shared subscription with messages waiting for their key's consumer (bounded by MaxKeySharedWaitingEntries), by subscription."},
			[]string{"topic", "subscription"}),
		ownedTopics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_owned_topics", Help: "Topics this node serves."}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_topic_loads_total", Help: "Topics loaded (fence, recover, open)."}),
		loadRecoveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_topic_load_recoveries_total", Help: "Topic loads that fenced and recovered the previous owner's open ledger (after a crash, a lost lease, or an unload that could not record its ledger closed)."}),
		loadReplayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_topic_load_replayed_entries_total", Help: "Entries of recovered ledgers that topic loads read back to rebuild deduplication."}),
		earlierReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_topic_earlier_receipt_entries_total", Help: "Entries of a topic's earlier owners read back to answer resends at their original positions (receipts the previous owner could not deliver)."}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_topic_drops_total", Help: "Topics dropped, by reason."}, []string{"reason"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_send_errors_total", Help: "Batches rejected, by error code."}, []string{"code"}),
		offloadedLedgers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_offloaded_ledgers_total", Help: "Ledgers offloaded to the object store."}),
		offloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_offload_failures_total", Help: "Offload passes that failed (retried with backoff)."}),
		tierReadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_tier_read_errors_total", Help: "Reads of offloaded ledgers that failed."}),
		quotaEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_backlog_quota_evictions_total", Help: "Times a subscription over its backlog quota was moved forward (consumer_backlog_eviction)."}),
		staleAcks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_acks_stale_epoch_total", Help: "Message ids acknowledged before a seek or reset of their subscription (an older cursor epoch) and dropped, so as not to skip what the move redelivers."}),
		dispatchThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_dispatch_throttled_seconds_total", Help: "Seconds subscriptions' dispatchers waited for their namespace's dispatch rate, by topic."}, []string{"topic"}),
		publishThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_publish_throttled_seconds_total", Help: "Seconds producers' streams were not read, to keep a topic under its publish rate, by topic."}, []string{"topic"}),
	}
	if reg != nil {
		reg.MustRegister(m.publishedMessages, m.publishedBytes, m.publishLatency, m.bookieWrite,
			m.deliveredMessages, m.backlog, m.backlogBytes, m.backlogAge, m.delayed, m.keySharedWaiting, m.ownedTopics, m.takeovers, m.loadRecoveries, m.loadReplayed, m.earlierReads, m.drops, m.sendErrors,
			m.offloadedLedgers, m.offloadFailures, m.tierReadErrors, m.quotaEvictions, m.staleAcks, m.dispatchThrottled, m.publishThrottled)
	}
	return m
}

// forgetTopic removes the per-topic series of a topic no longer served
// here.
func (m *metrics) forgetTopic(topic string) {
	m.dispatchThrottled.DeleteLabelValues(topic)
	m.publishThrottled.DeleteLabelValues(topic)
}

// forgetSubscription removes the per-subscription series of a subscription
// that is deleted or no longer served here.
func (m *metrics) forgetSubscription(topic, sub string) {
	for _, g := range []*prometheus.GaugeVec{m.backlog, m.backlogBytes, m.backlogAge, m.delayed, m.keySharedWaiting} {
		g.DeleteLabelValues(topic, sub)
	}
}
