package serving_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

// TestBacklogAgeIsThePublishTimeOfTheOldestUnackedMessage: a durable
// subscription's stats carry the publish time of the first message it has
// not acknowledged (read from the bookies when the entry cache holds
// nothing), which follows the acknowledgements and is zero once drained.
func TestBacklogAgeIsThePublishTimeOfTheOldestUnackedMessage(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.BacklogQuotaCheckInterval = 20 * time.Millisecond
		cfg.CacheBytes = 1 // nothing cached: the age is read from the ledger
	})
	const topic = "public/default/aged"
	p := mustProducer(t, n, topic, "p")
	sub := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "slow", InitialPosition: servingpb.InitialPosition_EARLIEST})
	p.mustSend(msg(1))
	p.mustSend(msg(2))
	sub.flow(10)
	got := sub.receive(2)
	oldest := func(want int64) {
		t.Helper()
		eventually(t, fmt.Sprintf("the oldest unacknowledged publish time %d", want), func() error {
			st, err := n.client.TopicStats(ctxT(t), &servingpb.TopicStatsRequest{Topic: topic})
			if err != nil {
				return err
			}
			if ss := st.GetSubscriptions(); len(ss) != 1 || ss[0].GetOldestUnackedPublishTimeUnixNano() != want {
				return fmt.Errorf("stats %v", ss)
			}
			return nil
		})
	}
	oldest(got[0].GetPublishTimeUnixNano())
	sub.ack(got[0].GetId())
	oldest(got[1].GetPublishTimeUnixNano())
	sub.ack(got[1].GetId())
	oldest(0)
}
