package loadtest

import (
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
)

func TestDefaultWorkloadIsValid(t *testing.T) {
	if err := DefaultWorkload().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWorkloadValidateRejectsEachBadField(t *testing.T) {
	cases := map[string]func(*Workload){
		"no topics":              func(w *Workload) { w.Topics = 0 },
		"too many partitions":    func(w *Workload) { w.Partitions = MaxPartitions + 1 },
		"size under header":      func(w *Workload) { w.MessageSize = HeaderSize - 1 },
		"negative rate":          func(w *Workload) { w.Rate = -1 },
		"unknown sub type":       func(w *Workload) { w.SubscriptionType = "fanout" },
		"two exclusive":          func(w *Workload) { w.ConsumersPerSubscription = 2 },
		"unknown key dist":       func(w *Workload) { w.KeyDistribution = "zipf" },
		"zero duration":          func(w *Workload) { w.Duration = 0 },
		"zero pending window":    func(w *Workload) { w.MaxPending = 0 },
		"negative warm-up":       func(w *Workload) { w.Warmup = -1 },
		"empty topic prefix":     func(w *Workload) { w.TopicPrefix = "" },
		"negative message limit": func(w *Workload) { w.MaxMessagesPerProducer = -1 },
		"unknown payload":        func(w *Workload) { w.Payload = "zeros" },
		"unknown compression":    func(w *Workload) { w.Compression = "gzip" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			w := DefaultWorkload()
			mutate(&w)
			err := w.Validate()
			if errcode.CodeOf(err) != errcode.InvalidArgument {
				t.Fatalf("Validate() = %v, want InvalidArgument", err)
			}
		})
	}
}
