package serving_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/metadata"
	"github.com/strata-mq/strata/metadata/metatest"
	"github.com/strata-mq/strata/serving"
)

// TestPolicyChangesReachATopicServedElsewhereWithinMoments: a namespace
// or topic policy written through another connection to etcd (another
// node's admin call) reaches a topic this node serves through the node's
// watch, without waiting for a trim (an hour here).
func TestPolicyChangesReachATopicServedElsewhereWithinMoments(t *testing.T) {
	c := newRealCluster(t, 3)
	n := c.startWith("a", func(cfg *serving.Config) { cfg.TrimInterval = time.Hour })
	const topic = "public/watched/t"
	mustProducer(t, n, topic, "p").mustSend(msg(1)) // served here now
	other := metatest.OpenStoreAt(t, c.endpoints)
	limitIs := func(want uint64) {
		t.Helper()
		eventually(t, fmt.Sprintf("the served topic's limit at %d", want), func() error {
			p, err := openProducer(t, n, topic, "")
			if err != nil {
				return err
			}
			defer p.close()
			if got := p.opened.GetMaxMessageBytes(); got != want {
				return fmt.Errorf("limit %d", got)
			}
			return nil
		})
	}
	pol := metadata.DefaultNamespacePolicy()
	pol.MaxMessageBytes = 4096
	if err := other.SetNamespacePolicy(ctxT(t), "public/watched", pol); err != nil {
		t.Fatal(err)
	}
	limitIs(4096)
	small := uint64(1024)
	if err := other.SetTopicPolicy(ctxT(t), topic, metadata.TopicPolicy{MaxMessageBytes: &small}); err != nil {
		t.Fatal(err)
	}
	limitIs(1024)
	if err := other.DeleteTopicPolicy(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	limitIs(4096)
}
