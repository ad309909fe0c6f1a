package loadtest

// Result is one driver's run. Its JSON form is the object `--json` writes.
type Result struct {
	Driver     string `json:"driver"`
	Durability string `json:"durability"`
	Verification
	ThroughputMsgsPerS        float64     `json:"throughput_msgs_per_s"`
	ThroughputMBPerS          float64     `json:"throughput_mb_per_s"`
	ConsumeThroughputMsgsPerS float64     `json:"consume_throughput_msgs_per_s"`
	PublishLatencyMs          Percentiles `json:"publish_latency_ms"`
	E2ELatencyMs              Percentiles `json:"e2e_latency_ms"`
	// HiccupMs is how late this machine woke a goroutine sleeping 1 ms,
	// over the same window (internal/hiccup): latency percentiles below
	// these are out of reach on this machine.
	HiccupMs        Percentiles `json:"hiccup_ms"`
	MeasuredSeconds float64     `json:"measured_seconds"`
	// GeneratorProcs is the load generator's own GOMAXPROCS during the
	// run: on a machine shared with the broker it moves the latency tail.
	GeneratorProcs int `json:"generator_procs"`
	// GeneratorGOGC is the load generator's own GOGC during the run, and
	// GeneratorGCsPerS how many garbage collections a second it made
	// while measuring: each takes CPU from the clients being measured.
	GeneratorGOGC    int             `json:"generator_gogc"`
	GeneratorGCsPerS float64         `json:"generator_gcs_per_s"`
	ReceiveErrors    uint64          `json:"receive_errors"`
	AckErrors        uint64          `json:"ack_errors"`
	Workload         WorkloadSummary `json:"workload"`
	// Backlog is a backlog run's figures (Workload.BacklogBytes).
	Backlog   *BacklogResult `json:"backlog,omitempty"`
	Intervals []Interval     `json:"intervals"`
	// Failed is true when anything acknowledged was lost or reordered (or
	// something never sent arrived): the command then exits non-zero.
	Failed bool `json:"failed"`
}

// WorkloadSummary is the workload as reported next to its results.
type WorkloadSummary struct {
	Topics                   int     `json:"topics"`
	Partitions               int     `json:"partitions"`
	ProducersPerTopic        int     `json:"producers_per_topic"`
	SubscriptionsPerTopic    int     `json:"subscriptions_per_topic"`
	ConsumersPerSubscription int     `json:"consumers_per_subscription"`
	SubscriptionType         string  `json:"subscription_type"`
	MessageSize              int     `json:"message_size"`
	KeyDistribution          string  `json:"key_distribution"`
	Rate                     float64 `json:"rate"`
	DurationS                float64 `json:"duration_s"`
	WarmupS                  float64 `json:"warmup_s"`
	Payload                  string  `json:"payload"`
	Compression              string  `json:"compression"`
	BacklogBytes             int64   `json:"backlog_bytes"`
}

func summarize(w Workload) WorkloadSummary {
	return WorkloadSummary{
		Topics:                   w.Topics,
		Partitions:               w.Partitions,
		ProducersPerTopic:        w.ProducersPerTopic,
		SubscriptionsPerTopic:    w.SubscriptionsPerTopic,
		ConsumersPerSubscription: w.ConsumersPerSubscription,
		SubscriptionType:         string(w.SubscriptionType),
		MessageSize:              w.MessageSize,
		KeyDistribution:          string(w.KeyDistribution),
		Rate:                     w.Rate,
		DurationS:                w.Duration.Seconds(),
		WarmupS:                  w.Warmup.Seconds(),
		Payload:                  string(w.Payload),
		Compression:              w.Compression,
		BacklogBytes:             w.BacklogBytes,
	}
}
