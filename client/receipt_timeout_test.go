package client_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/client/fakebroker"
)

func TestProducerWithoutReceiptsReconnectsAndResendsWithoutDuplicates(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerName("p"), client.ProducerLinger(0),
		client.ProducerReceiptTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The broker persists the batches but answers nothing, as a frozen
	// owner whose TCP connection stays up.
	b.HoldReceipts()
	var r receipts
	const n = 5
	for i := range n {
		p.SendAsync(ctx, payload(i), r.cb)
	}
	waitFor(t, "the producer to give up on the silent stream and open another", func() bool { return len(b.Opens()) >= 3 })
	b.ReleaseReceipts()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r.len() != n {
		t.Fatalf("%d callbacks, want %d", r.len(), n)
	}
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d failed: %v (a receipt timeout must not fail messages)", i, err)
		}
	}
	for _, o := range b.Opens() {
		if o.Producer != "p" {
			t.Fatalf("reopened as %q, want the same producer name", o.Producer)
		}
	}
	sent := 0
	for _, bt := range b.Batches() {
		sent += len(bt.Seqs)
	}
	if sent <= n {
		t.Fatalf("%d messages sent for %d: nothing was resent", sent, n)
	}
	msgs := cl.Messages(testTopic)
	if len(msgs) != n {
		t.Fatalf("%d messages stored, want %d (resends must be deduplicated)", len(msgs), n)
	}
	for i, m := range msgs {
		if m.GetSequenceId() != uint64(i) {
			t.Fatalf("message %d has sequence id %d", i, m.GetSequenceId())
		}
	}
}

// frozenListener accepts TCP connections and never answers on them, as a
// SIGSTOPped process whose kernel still completes handshakes.
func frozenListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

func TestLookupMovesPastAFrozenSeedNode(t *testing.T) {
	cl := fakebroker.NewCluster()
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	frozen := frozenListener(t)
	c, err := client.New("strata://"+frozen+","+b.Addr, client.OperationTimeout(time.Second),
		client.ReconnectBackoff(5*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := testCtx(t)
	// The first seed never answers: each lookup attempt is bounded on its
	// own, so the second seed still gets its turn within the first connect.
	p, err := c.NewProducer(ctx, "t", client.ProducerLinger(0))
	if err != nil {
		t.Fatalf("producer with a frozen first seed: %v", err)
	}
	if _, err := p.Send(ctx, payload(0)); err != nil {
		t.Fatal(err)
	}
	if got := len(cl.Messages(testTopic)); got != 1 {
		t.Fatalf("%d messages stored, want 1", got)
	}
}

func TestIdleConsumerLeavesANodeThatNoLongerOwnsTheTopic(t *testing.T) {
	cl := fakebroker.NewCluster()
	a := fakebroker.Start(t, cl)
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	cl.SetOwner(testTopic, a.Addr)
	c := newClient(t, "strata://"+a.Addr+","+b.Addr)
	ctx := testCtx(t)
	cons, err := c.Subscribe(ctx, "t", "s", client.ConsumerInitialPosition(client.Earliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// The topic moves to b, but a keeps the consumer's stream open and
	// silent, as a frozen owner would: the idle consumer must notice.
	cl.SetOwner(testTopic, b.Addr)
	waitFor(t, "the idle consumer to subscribe at the new owner", func() bool { return len(b.Subscribes()) > 0 })
	cl.Publish(testTopic, "after-move")
	m, err := cons.Receive(ctx)
	if err != nil || string(m.Payload) != "after-move" {
		t.Fatalf("receive after the move: %v %v", m, err)
	}
}

func TestProducerLeavesASilentOwnerForTheNodeThatTookTheTopic(t *testing.T) {
	// Small messages: receipts stop coming. Large ones: the silent node also
	// stops reading, so HTTP/2 flow control blocks the producer's Send.
	for _, tc := range []struct {
		name string
		size int
	}{{"small messages", 16}, {"send blocked by flow control", 512 << 10}} {
		t.Run(tc.name, func(t *testing.T) { leaveSilentOwner(t, tc.size) })
	}
}

func leaveSilentOwner(t *testing.T, size int) {
	cl := fakebroker.NewCluster()
	a := fakebroker.Start(t, cl)
	b := fakebroker.Start(t, cl)
	if err := cl.CreateTopic(testTopic, 0); err != nil {
		t.Fatal(err)
	}
	cl.SetOwner(testTopic, a.Addr)
	c := newClient(t, "strata://"+a.Addr+","+b.Addr)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerName("p"), client.ProducerLinger(0),
		client.ProducerBatchMaxBytes(1<<20), client.ProducerReceiptTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	msg := func(i int) *client.ProducerMessage {
		m := payload(i)
		m.Payload = append(m.Payload, make([]byte, size)...)
		return m
	}
	if _, err := p.Send(ctx, msg(0)); err != nil {
		t.Fatal(err)
	}
	// a goes silent with its stream up (no error, no redirect) and the
	// topic moves to b: only the missing receipts reveal it.
	a.HoldBatches()
	cl.SetOwner(testTopic, b.Addr)
	var r receipts
	const n = 20
	for i := 1; i <= n; i++ {
		p.SendAsync(ctx, msg(i), r.cb)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a.ReleaseBatches()
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d failed: %v", i+1, err)
		}
	}
	if len(b.Opens()) == 0 {
		t.Fatal("the producer never opened at the new owner")
	}
	msgs := cl.Messages(testTopic)
	if len(msgs) != n+1 {
		t.Fatalf("%d messages stored, want %d", len(msgs), n+1)
	}
	for i, m := range msgs {
		if m.GetSequenceId() != uint64(i) {
			t.Fatalf("message %d has sequence id %d (lost or duplicated)", i, m.GetSequenceId())
		}
	}
}

// A producer that abandons a stream for a missing receipt while it is still
// sending on it gets io.EOF from Send. Only the stream's receive goroutine
// may read the reason: a second reader (the sender calling Recv) can take
// the stream's one terminal status, leaving the receive goroutine blocked
// in Recv forever and the producer stuck waiting for it.
func TestProducerKeepsSendingThroughStreamsItAbandonsWhileSending(t *testing.T) {
	cl, b, c := setup(t, 0)
	ctx := testCtx(t)
	p, err := c.NewProducer(ctx, "t", client.ProducerName("p"), client.ProducerLinger(0),
		client.ProducerReceiptTimeout(100*time.Millisecond), client.ProducerMaxPendingMessages(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	b.HoldReceipts()
	var r receipts
	n := 0
	// Keep sending while the producer abandons stream after stream, so that
	// sends land on streams already cancelled.
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Opens()) < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages sent and only %d opens: the producer stopped leaving silent streams", n, len(b.Opens()))
		}
		p.SendAsync(ctx, payload(n), r.cb)
		n++
		time.Sleep(500 * time.Microsecond)
	}
	b.ReleaseReceipts()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush after %d messages: %v", n, err)
	}
	if r.len() != n {
		t.Fatalf("%d callbacks, want %d", r.len(), n)
	}
	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("message %d failed: %v", i, err)
		}
	}
	msgs := cl.Messages(testTopic)
	if len(msgs) != n {
		t.Fatalf("%d messages stored, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.GetSequenceId() != uint64(i) {
			t.Fatalf("message %d has sequence id %d (lost or duplicated)", i, m.GetSequenceId())
		}
	}
}
