package client

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/serving/servingpb"
)

// sentStream records what is sent on a consume stream.
type sentStream struct {
	consumeStream
	sent chan *servingpb.ConsumeRequest
}

func (s *sentStream) Send(r *servingpb.ConsumeRequest) error { s.sent <- r; return nil }

// TestHasMoreAsksFromTheRightPosition: with nothing handed out, HasNext
// asks from the subscription's start (no position); after a message, from
// it; from a start id inside a batch, from the entry before the start's,
// so that the rest of the start's own batch counts. A buffered message
// answers at once without asking.
func TestHasMoreAsksFromTheRightPosition(t *testing.T) {
	c, err := New("strata://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cons := &Consumer{c: c, notify: make(chan struct{}, 1)}
	for _, tc := range []struct {
		name    string
		last    *MessageID
		isStart bool
		want    *servingpb.MessageId // nil: no position sent
	}{
		{"nothing handed out", nil, false, nil},
		{"after a message", &MessageID{Ledger: 7, Entry: 4, Batch: 2}, false, &servingpb.MessageId{Ledger: 7, Entry: 4, Batch: 2}},
		{"from a start inside a batch", &MessageID{Ledger: 7, Entry: 4, Batch: 0}, true, &servingpb.MessageId{Ledger: 7, Entry: 3, Batch: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := newPartitionConsumer(cons, "public/default/t", 0, &servingpb.Subscribe{}, 10, 0)
			st := &sentStream{sent: make(chan *servingpb.ConsumeRequest, 1)}
			pc.mu.stream, pc.mu.last, pc.mu.lastIsStart = st, tc.last, tc.isStart
			got := make(chan bool, 1)
			go func() {
				more, err := pc.hasMore(context.Background())
				if err != nil {
					t.Error(err)
				}
				got <- more
			}()
			req := (<-st.sent).GetHasMessagesAfter()
			if a := req.GetAfter(); (a == nil) != (tc.want == nil) || (a != nil && (a.GetLedger() != tc.want.GetLedger() || a.GetEntry() != tc.want.GetEntry() || a.GetBatch() != tc.want.GetBatch())) {
				t.Fatalf("asked after %v, want %v", a, tc.want)
			}
			pc.answer(callHasMessagesAfter, callAnswer{yes: true})
			if !<-got {
				t.Fatal("the server's yes was not returned")
			}
		})
	}
	pc := newPartitionConsumer(cons, "public/default/t", 0, &servingpb.Subscribe{}, 10, 0)
	pc.mu.queue = []*Message{{}}
	if more, err := pc.hasMore(context.Background()); err != nil || !more {
		t.Fatalf("with a buffered message: %v, %v", more, err)
	}
}
