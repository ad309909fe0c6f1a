package client

import (
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/serving/servingpb"
)

func idAt(entry int) MessageID { return MessageID{Ledger: 1, Entry: int64(entry)} }

// at is an ack of idAt(entry) of unknown epoch.
func at(entry int) keptAck { return keptAck{id: idAt(entry)} }

func entries(acks []keptAck) []int64 {
	out := make([]int64, len(acks))
	for i, a := range acks {
		out[i] = a.id.Entry
	}
	return out
}

// TestAckQueueKeepsAtMostItsBoundDroppingTheOldest: a partition that
// stays down while its application acks keeps the newest ids only, and
// never more than maxKeptAcks.
func TestAckQueueKeepsAtMostItsBoundDroppingTheOldest(t *testing.T) {
	var q ackQueue
	dropped := 0
	for i := range maxKeptAcks + 1 {
		n, _ := q.add(at(i))
		dropped += n
		if len(q.ids) > maxKeptAcks {
			t.Fatalf("%d ids kept after %d acks", len(q.ids), i+1)
		}
	}
	if dropped+len(q.ids) != maxKeptAcks+1 {
		t.Fatalf("%d dropped and %d kept of %d", dropped, len(q.ids), maxKeptAcks+1)
	}
	if first, last := q.ids[0].id.Entry, q.ids[len(q.ids)-1].id.Entry; first != int64(dropped) || last != maxKeptAcks {
		t.Fatalf("kept entries %d..%d, want the newest (%d..%d)", first, last, dropped, maxKeptAcks)
	}
}

// TestAckQueuePutBackOrdersAndSupersedes: what a failed send puts back goes
// before the acks made meanwhile; a cumulative ack made meanwhile
// supersedes the batch's; a clear (a seek) since the take drops the batch;
// a cursor move drops it and the acks made after it, until resume.
func TestAckQueuePutBackOrdersAndSupersedes(t *testing.T) {
	cum := func(e int) *keptAck { a := at(e); return &a }
	for _, tc := range []struct {
		name      string
		meanwhile func(*ackQueue)
		wantIDs   []int64
		wantCum   *keptAck
	}{
		{"nothing meanwhile", func(*ackQueue) {}, []int64{1, 2}, cum(3)},
		{"acks meanwhile", func(q *ackQueue) { q.add(at(4)) }, []int64{1, 2, 4}, cum(3)},
		{"a newer cumulative", func(q *ackQueue) { q.addCumulative(at(5)) }, []int64{1, 2}, cum(5)},
		{"a seek", func(q *ackQueue) { q.clear(); q.add(at(6)) }, []int64{6}, nil},
		{"a cursor move", func(q *ackQueue) { q.cursorMoved(); q.add(at(7)); q.addCumulative(at(8)) }, nil, nil},
		{"a cursor move, then a new stream", func(q *ackQueue) { q.cursorMoved(); q.resume(); q.add(at(9)) }, []int64{9}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q ackQueue
			q.add(at(1))
			q.add(at(2))
			q.addCumulative(at(3))
			b := q.take()
			if !q.empty() {
				t.Fatal("take left acks queued")
			}
			tc.meanwhile(&q)
			q.putBack(b)
			if got := entries(q.ids); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("ids %v, want %v", got, tc.wantIDs)
			}
			if (q.cum == nil) != (tc.wantCum == nil) || (q.cum != nil && *q.cum != *tc.wantCum) {
				t.Errorf("cumulative %v, want %v", q.cum, tc.wantCum)
			}
		})
	}
}

// TestAckBatchRequestsAndWhatIsLeftAfterAFailedSend: a batch goes as
// requests of at most maxAckBatch ids, the cumulative ack last; a send
// failing at a request leaves that request and those after it.
func TestAckBatchRequestsAndWhatIsLeftAfterAFailedSend(t *testing.T) {
	ids := make([]keptAck, 2*maxAckBatch+1)
	for i := range ids {
		ids[i] = at(i)
	}
	cum := at(9999)
	b := ackBatch{ids: ids, cum: &cum}
	reqs := b.requests()
	if len(reqs) != 4 || len(reqs[2].GetAck().GetIds()) != 1 || !reqs[3].GetAck().GetCumulative() {
		t.Fatalf("%d requests, want 3 of ids (the last with one) and the cumulative ack", len(reqs))
	}
	for _, tc := range []struct {
		sent    int
		wantIDs int
		wantCum bool
	}{{0, len(ids), true}, {1, maxAckBatch + 1, true}, {3, 0, true}, {4, 0, false}} {
		sent, rest := b.split(tc.sent)
		if len(rest.ids) != tc.wantIDs || (rest.cum != nil) != tc.wantCum {
			t.Errorf("after %d requests sent: %d ids and cumulative %v left, want %d and %v", tc.sent, len(rest.ids), rest.cum != nil, tc.wantIDs, tc.wantCum)
		}
		if len(sent.ids)+len(rest.ids) != len(ids) || (sent.cum != nil) == (rest.cum != nil) {
			t.Errorf("after %d requests sent: %d ids sent and %d left of %d, cumulative sent %v", tc.sent, len(sent.ids), len(rest.ids), len(ids), sent.cum != nil)
		}
	}
}

// TestAckQueueSendsAgainWhatWentJustBeforeItsStreamEnded: the batches sent
// within ackResendWindow before the stream ended (and any sent on it after
// its end was noted) are queued again when the next stream is up, before
// the acks made meanwhile; older ones are forgotten, and a seek or a
// cursor move forgets them all.
func TestAckQueueSendsAgainWhatWentJustBeforeItsStreamEnded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sentAt := func(q *ackQueue, entry int, when time.Duration) {
		q.add(at(entry))
		q.recordSent(q.take(), t0.Add(when))
	}
	for _, tc := range []struct {
		name    string
		between func(*ackQueue)
		want    []int64
	}{
		{"a stream end", func(*ackQueue) {}, []int64{2, 3, 4, 5}},
		{"a seek", (*ackQueue).clear, []int64{5}},
		{"a cursor move", (*ackQueue).cursorMoved, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q ackQueue
			q.resume()                                    // a first stream, live
			sentAt(&q, 1, 0)                              // long before the end
			sentAt(&q, 2, 2*time.Second)                  // within the window
			sentAt(&q, 3, 3*time.Second)                  // just before
			q.ended(t0.Add(3 * time.Second))              // the stream ends
			sentAt(&q, 4, 3*time.Second+time.Millisecond) // sent into the ended stream
			tc.between(&q)
			q.add(at(5)) // made while reconnecting
			q.resume()
			if got := entries(q.ids); !slices.Equal(got, tc.want) {
				t.Fatalf("queued on the next stream: %v, want %v", got, tc.want)
			}
		})
	}
}

// sendRecorder is a consume stream that records what is sent on it.
type sendRecorder struct {
	grpc.ClientStream
	mu   sync.Mutex
	sent []*servingpb.ConsumeRequest
}

func (s *sendRecorder) Send(r *servingpb.ConsumeRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, r)
	return nil
}

func (s *sendRecorder) Recv() (*servingpb.ConsumeResponse, error) { return nil, io.EOF }

// TestAFlushTakesNoAckWhileAnotherSendHoldsTheStream: serve sends the kept
// acks and then its flow, each under sendMu. A flush elsewhere (the
// grouping timer's, an Ack's) that took the queued acks while serve held
// sendMu would send them after the flow, and the server would redeliver
// their messages first. So a flush takes nothing until it may send, and
// then sends all it took.
func TestAFlushTakesNoAckWhileAnotherSendHoldsTheStream(t *testing.T) {
	st := &sendRecorder{}
	pc := &partitionConsumer{log: slog.Default(), topic: "t"}
	pc.mu.stream = st
	pc.acks.q.add(keptAck{id: idAt(1), epoch: 1})
	pc.sendMu.Lock() // serve, about to send its flow
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		pc.flushAcks()
	}()
	queued := func() bool {
		pc.acks.Lock()
		defer pc.acks.Unlock()
		return !pc.acks.q.empty()
	}
	// The flush must wait for sendMu with the ack still queued; a flush
	// that takes first empties the queue within microseconds.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); runtime.Gosched() {
		if !queued() {
			t.Fatal("a flush took the queued ack while another send held the stream: it would go after that send's flow")
		}
	}
	pc.sendMu.Unlock()
	<-flushed
	if queued() || len(st.sent) != 1 || len(st.sent[0].GetAck().GetIds()) != 1 {
		t.Fatalf("after the stream was free: queued %v, sent %v; want the ack sent", queued(), st.sent)
	}
}

// TestAckRequestsCarryTheEpochOfTheirMessagesStream: each ack goes with
// the cursor epoch of the stream that delivered its message, so a batch
// kept across a cursor move goes as one request per run of one epoch (the
// server drops those of an epoch it moved past), and a send failing at a
// request leaves that request's acks and those after it.
func TestAckRequestsCarryTheEpochOfTheirMessagesStream(t *testing.T) {
	atEpoch := func(entry int, epoch uint64) keptAck { return keptAck{id: idAt(entry), epoch: epoch} }
	cum := atEpoch(9, 3)
	b := ackBatch{ids: []keptAck{atEpoch(1, 2), atEpoch(2, 2), atEpoch(3, 3), atEpoch(4, 2)}, cum: &cum}
	type req struct {
		entries    []int64
		epoch      uint64
		cumulative bool
	}
	var got []req
	for _, r := range b.requests() {
		a := r.GetAck()
		var es []int64
		for _, id := range a.GetIds() {
			es = append(es, id.GetEntry())
		}
		got = append(got, req{es, a.GetCursorEpoch(), a.GetCumulative()})
	}
	want := []req{{[]int64{1, 2}, 2, false}, {[]int64{3}, 3, false}, {[]int64{4}, 2, false}, {[]int64{9}, 3, true}}
	if !slices.EqualFunc(got, want, func(a, b req) bool {
		return slices.Equal(a.entries, b.entries) && a.epoch == b.epoch && a.cumulative == b.cumulative
	}) {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
	sent, rest := b.split(2)
	if !slices.Equal(entries(sent.ids), []int64{1, 2, 3}) || !slices.Equal(entries(rest.ids), []int64{4}) || rest.cum == nil || sent.cum != nil {
		t.Fatalf("after 2 requests sent: %v sent, %v and cumulative %v left", entries(sent.ids), entries(rest.ids), rest.cum)
	}
	if rest.ids[0].epoch != 2 || rest.cum.epoch != 3 {
		t.Fatalf("what is left lost its epochs: %+v, cumulative %+v", rest.ids, rest.cum)
	}
}
