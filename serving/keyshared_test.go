package serving_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving"
	"github.com/strata-mq/strata/serving/servingpb"
)

func keySharedSub(topic, consumer string) *servingpb.Subscribe {
	return &servingpb.Subscribe{Topic: topic, Subscription: "ks", Type: servingpb.SubscriptionType_KEY_SHARED, ConsumerName: consumer}
}

// keyedMsg is message seq with key k<key>.
func keyedMsg(seq uint64, key int) *servingpb.Message {
	return &servingpb.Message{SequenceId: seq, Key: fmt.Sprintf("k%d", key), Payload: payloadOf(seq)}
}

// round is one batch (one entry) of keys messages, keys k0.. in order,
// sequence ids from first on.
func round(first uint64, keys int) []*servingpb.Message {
	out := make([]*servingpb.Message, keys)
	for i := range out {
		out[i] = keyedMsg(first+uint64(i), i)
	}
	return out
}

// drain reads a consumer's stream in the background, for tests that do not
// know in advance how many messages each consumer gets.
type drain struct {
	c  *cons
	ch chan *servingpb.ReceivedMessage
}

func startDrain(c *cons) *drain {
	d := &drain{c: c, ch: make(chan *servingpb.ReceivedMessage, 10_000)}
	go func() {
		for {
			r, err := c.stream.Recv()
			if err != nil {
				close(d.ch)
				return
			}
			for _, m := range r.GetMessages().GetMessages() {
				d.ch <- m
			}
		}
	}()
	return d
}

// take returns the next n messages d received.
func (d *drain) take(t *testing.T, n int) []*servingpb.ReceivedMessage {
	t.Helper()
	out := make([]*servingpb.ReceivedMessage, 0, n)
	deadline := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case m, ok := <-d.ch:
			if !ok {
				t.Fatalf("stream ended after %d of %d messages", len(out), n)
			}
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// takeAll returns n messages received by any of ds, with the index of the
// one that received each.
func takeAll(t *testing.T, n int, ds ...*drain) map[int][]*servingpb.ReceivedMessage {
	t.Helper()
	out := map[int][]*servingpb.ReceivedMessage{}
	deadline := time.After(20 * time.Second)
	for got := 0; got < n; {
		progress := false
		for i, d := range ds {
			select {
			case m, ok := <-d.ch:
				if !ok {
					t.Fatalf("stream %d ended after %d of %d messages", i, got, n)
				}
				out[i] = append(out[i], m)
				got++
				progress = true
			default:
			}
		}
		if !progress {
			select {
			case <-deadline:
				t.Fatalf("received %d of %d messages", got, n)
			case <-time.After(time.Millisecond):
			}
		}
	}
	return out
}

func idsOf(msgs []*servingpb.ReceivedMessage) []*servingpb.MessageId {
	out := make([]*servingpb.MessageId, len(msgs))
	for i, m := range msgs {
		out[i] = m.GetId()
	}
	return out
}

// unackedIs checks the messages delivered and not acknowledged on the
// topic's only subscription.
func unackedIs(t *testing.T, n *testNode, topic string, want uint64) error {
	s, err := onlySubscription(t, n, topic)
	if err == nil && s.GetUnacked() != want {
		err = fmt.Errorf("unacked %d, want %d", s.GetUnacked(), want)
	}
	return err
}

// checkKeyOrder fails unless, within each consumer's messages, every key's
// sequence ids increase.
func checkKeyOrder(t *testing.T, by map[int][]*servingpb.ReceivedMessage) {
	t.Helper()
	for i, msgs := range by {
		last := map[string]uint64{}
		for _, m := range msgs {
			if m.GetSequenceId() <= last[m.GetKey()] {
				t.Fatalf("consumer %d got key %s seq %d after seq %d", i, m.GetKey(), m.GetSequenceId(), last[m.GetKey()])
			}
			last[m.GetKey()] = m.GetSequenceId()
		}
	}
}

// movedToB lists the keys k0..k<keys-1> that consumer b takes over when it
// joins a's subscription.
func movedToB(keys int) []int {
	var moved []int
	for k := range keys {
		if serving.KeyOwner([]string{"a", "b"}, fmt.Sprintf("k%d", k)) == "b" {
			moved = append(moved, k)
		}
	}
	return moved
}

// twoConsumers attaches consumers a and b (1,000 permits each, drained) and
// opens a producer.
func twoConsumers(t *testing.T, n *testNode, topic string) (*cons, *cons, *drain, *drain, *prod) {
	t.Helper()
	ca := mustSubscribe(t, n, keySharedSub(topic, "a"))
	cb := mustSubscribe(t, n, keySharedSub(topic, "b"))
	ca.flow(1000)
	cb.flow(1000)
	return ca, cb, startDrain(ca), startDrain(cb), mustProducer(t, n, topic, "")
}

// joinAfterRound attaches consumer a, publishes one round of keys messages,
// which a receives and does not acknowledge, then attaches consumer b. It
// returns a, both consumers' drains, the producer and a's messages.
func joinAfterRound(t *testing.T, n *testNode, topic string, keys int) (*cons, *drain, *drain, *prod, []*servingpb.ReceivedMessage) {
	t.Helper()
	ca := mustSubscribe(t, n, keySharedSub(topic, "a"))
	ca.flow(1000)
	a := startDrain(ca)
	p := mustProducer(t, n, topic, "")
	p.mustSend(round(1, keys)...)
	first := a.take(t, keys)
	cb := mustSubscribe(t, n, keySharedSub(topic, "b"))
	cb.flow(1000)
	return ca, a, startDrain(cb), p, first
}

// A key_shared subscription splits batches by key: every message of a key
// goes to one consumer, the keys spread over the consumers, each message is
// delivered once and each key's messages arrive in order.
func TestKeySharedSendsEachKeyToOneConsumerInOrder(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "key-shared"
	names := []string{"a", "b", "c"}
	var ds []*drain
	for _, name := range names {
		cs := mustSubscribe(t, n, keySharedSub(topic, name))
		cs.flow(10_000)
		ds = append(ds, startDrain(cs))
	}
	p := mustProducer(t, n, topic, "")
	const keys, rounds = 50, 20
	for r := range rounds {
		p.mustSend(round(uint64(r*keys+1), keys)...)
	}
	by := takeAll(t, keys*rounds, ds...)
	checkKeyOrder(t, by)
	seen := map[uint64]bool{}
	for i, msgs := range by {
		for _, m := range msgs {
			if seen[m.GetSequenceId()] {
				t.Fatalf("seq %d delivered twice", m.GetSequenceId())
			}
			seen[m.GetSequenceId()] = true
			if want := serving.KeyOwner(names, m.GetKey()); want != names[i] {
				t.Fatalf("key %s went to %s, want %s", m.GetKey(), names[i], want)
			}
		}
	}
	if len(by) != len(names) {
		t.Fatalf("messages went to %d of %d consumers", len(by), len(names))
	}
	for _, d := range ds {
		d.c.ack(idsOf(by[slices.Index(ds, d)])...)
	}
	eventually(t, "everything acknowledged", func() error { return backlogIs(t, n, topic, 0) })
}

// A consumer that joins takes over some keys, but receives none of a
// key's messages while the consumer that had the key still holds earlier
// ones unacknowledged: each key's messages are processed in order even
// across the change. A key is released as soon as its own earlier
// messages are acknowledged, without waiting for the others.
func TestKeySharedHoldsAMovedKeyUntilItsEarlierMessagesAreAcked(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "key-shared-join"
	const keys = 50
	ca, a, b, p, first := joinAfterRound(t, n, topic, keys)
	moved := movedToB(keys)
	if len(moved) == 0 || len(moved) == keys {
		t.Fatalf("%d of %d keys moved to the new consumer; the test needs some to move and some to stay", len(moved), keys)
	}
	p.mustSend(round(keys+1, keys)...)
	// a gets the second round of the keys it keeps; the same dispatch left
	// the moved keys' messages waiting, and the server counts them as not
	// delivered.
	kept := a.take(t, keys-len(moved))
	for _, m := range kept {
		if serving.KeyOwner([]string{"a", "b"}, m.GetKey()) != "a" {
			t.Fatalf("a got moved key %s while holding its earlier message", m.GetKey())
		}
	}
	eventually(t, "moved keys wait", func() error { return unackedIs(t, n, topic, uint64(2*keys-len(moved))) })

	// Acknowledging the first moved key's earlier message releases that key
	// alone.
	k0 := moved[0]
	ca.ack(first[k0].GetId())
	got := b.take(t, 1)[0]
	if got.GetSequenceId() != uint64(keys+1+k0) || got.GetRedeliveryCount() != 0 {
		t.Fatalf("b got seq %d (redelivered %d times), want seq %d", got.GetSequenceId(), got.GetRedeliveryCount(), keys+1+k0)
	}
	eventually(t, "other moved keys still wait", func() error { return unackedIs(t, n, topic, uint64(2*keys-len(moved))) })

	ca.ack(idsOf(first)...)
	rest := b.take(t, len(moved)-1)
	for i, m := range rest {
		if want := uint64(keys + 1 + moved[i+1]); m.GetSequenceId() != want {
			t.Fatalf("b's message %d: seq %d, want %d", i, m.GetSequenceId(), want)
		}
	}
	// New messages of moved keys now go straight to b.
	p.mustSend(keyedMsg(1000, moved[0]))
	if m := b.take(t, 1)[0]; m.GetSequenceId() != 1000 {
		t.Fatalf("b got seq %d, want 1000", m.GetSequenceId())
	}
}

// When a consumer leaves, what it held goes to the others, redelivered
// before anything newer of the same keys.
func TestKeySharedGivesALeavingConsumersKeysToTheOthersInOrder(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "key-shared-leave"
	const keys = 50
	ca, cb, a, b, p := twoConsumers(t, n, topic)
	p.mustSend(round(1, keys)...)
	p.mustSend(round(keys+1, keys)...)
	by := takeAll(t, 2*keys, a, b)
	if len(by[1]) == 0 {
		t.Fatal("b got no keys")
	}
	ca.ack(idsOf(by[0])...)
	eventually(t, "a's messages acknowledged", func() error { return unackedIs(t, n, topic, uint64(len(by[1]))) })
	cb.cancel()
	eventually(t, "b detached", func() error {
		s, err := onlySubscription(t, n, topic)
		if err == nil && s.GetConsumers() != 1 {
			err = fmt.Errorf("%d consumers", s.GetConsumers())
		}
		return err
	})
	p.mustSend(round(2*keys+1, keys)...)
	got := a.take(t, len(by[1])+keys)
	checkKeyOrder(t, map[int][]*servingpb.ReceivedMessage{0: got})
	for i, m := range got[:len(by[1])] {
		if m.GetSequenceId() != by[1][i].GetSequenceId() || m.GetRedeliveryCount() != 1 {
			t.Fatalf("message %d: seq %d redelivered %d times, want b's seq %d redelivered once",
				i, m.GetSequenceId(), m.GetRedeliveryCount(), by[1][i].GetSequenceId())
		}
	}
}

// Messages without a key have no order to keep: they spread over the
// consumers as on a shared subscription.
func TestKeySharedSpreadsKeylessMessages(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "key-shared-keyless"
	_, _, a, b, p := twoConsumers(t, n, topic)
	// Until both consumers' permits have arrived, one of them may get
	// everything: send until both got some, or too many went to one.
	seen := map[int]int{}
	for i := uint64(1); len(seen) < 2; i++ {
		if i > 200 {
			t.Fatalf("keyless messages went to one consumer only: %v", seen)
		}
		p.mustSend(&servingpb.Message{SequenceId: i, Payload: payloadOf(i)})
		for j := range takeAll(t, 1, a, b) {
			seen[j]++
		}
	}
}

// A key_shared subscription refuses cumulative acks, as Pulsar does: one
// consumer's position says nothing about another's keys.
func TestKeySharedRefusesCumulativeAck(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "key-shared-cumulative"
	cs := mustSubscribe(t, n, keySharedSub(topic, "a"))
	cs.flow(10)
	p := mustProducer(t, n, topic, "")
	p.mustSend(msg(1))
	m := cs.receive(1)
	_ = cs.stream.Send(&servingpb.ConsumeRequest{Kind: &servingpb.ConsumeRequest_Ack{Ack: &servingpb.Ack{Ids: []*servingpb.MessageId{m[0].GetId()}, Cumulative: true}}})
	if _, err := cs.stream.Recv(); errcode.CodeOf(errcode.FromError(err)) != errcode.InvalidArgument {
		t.Fatalf("cumulative ack on key_shared: got %v, want INVALID_ARGUMENT", err)
	}
}

// A subscription whose consumers all left may change type. What was
// delivered and not acknowledged is delivered again under the new type,
// and what was acknowledged (message by message, inside a batch) is not.
func TestSubscriptionChangesTypeWithoutLosingOrRepeatingMessages(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", nil)
	const topic = "change-type"
	sub := func(typ servingpb.SubscriptionType) *cons {
		cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "s", Type: typ})
		cs.flow(100)
		return cs
	}
	shared := sub(servingpb.SubscriptionType_SHARED)
	p := mustProducer(t, n, topic, "")
	p.mustSend(round(1, 10)...)
	got := shared.receive(10)
	shared.ack(got[0].GetId(), got[5].GetId(), got[9].GetId())
	eventually(t, "acks applied", func() error { return unackedIs(t, n, topic, 7) })
	shared.cancel()
	eventually(t, "shared consumer gone", func() error { return unackedIs(t, n, topic, 0) })

	keyed := sub(servingpb.SubscriptionType_KEY_SHARED)
	again := keyed.receive(7)
	for _, m := range again {
		if s := m.GetSequenceId(); s == 1 || s == 6 || s == 10 || m.GetRedeliveryCount() != 1 {
			t.Fatalf("key_shared got seq %d redelivered %d times; want the 7 unacknowledged, redelivered once", s, m.GetRedeliveryCount())
		}
	}
	keyed.ack(again[0].GetId())
	eventually(t, "ack applied", func() error { return unackedIs(t, n, topic, 6) })
	keyed.cancel()
	eventually(t, "key_shared consumer gone", func() error { return unackedIs(t, n, topic, 0) })

	back := sub(servingpb.SubscriptionType_SHARED)
	if last := back.receive(6); last[0].GetSequenceId() != again[1].GetSequenceId() || last[0].GetRedeliveryCount() != 2 {
		t.Fatalf("shared again got seq %d redelivered %d times, want seq %d redelivered twice",
			last[0].GetSequenceId(), last[0].GetRedeliveryCount(), again[1].GetSequenceId())
	}
}

// Past MaxKeySharedWaitingEntries entries with waiting messages, the
// subscription reads no further (a stuck consumer stalls it instead of
// filling memory), and it resumes once the holder acknowledges.
func TestKeySharedStopsReadingPastTheWaitingLimitAndResumes(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.MaxKeySharedWaitingEntries = 2 })
	const topic = "key-shared-limit"
	const keys = 50
	ca, a, b, p, first := joinAfterRound(t, n, topic, keys)
	moved := len(movedToB(keys))
	const more = 5
	for r := range more {
		p.mustSend(round(uint64(keys*(r+1)+1), keys)...)
	}
	// Two entries are read, each leaving its moved keys waiting; the third
	// is not read, so a gets two rounds of its own keys, not five.
	a.take(t, 2*(keys-moved))
	eventually(t, "two rounds read", func() error { return unackedIs(t, n, topic, uint64(keys+2*(keys-moved))) })
	ca.ack(idsOf(first)...)
	by := takeAll(t, (more-2)*(keys-moved)+more*moved, a, b)
	checkKeyOrder(t, by)
}

// Under random publishing, acking, permits and consumers coming and going
// (some with the same name), a key_shared subscription never lets two
// consumers hold messages of one key at once, never delivers a message of
// a key before every earlier one was acknowledged or is held by the same
// consumer, and in the end delivers every message.
func TestKeySharedKeepsKeyOrderUnderRandomChurn(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { keySharedChurn(t, seed) })
	}
}

type churnConsumer struct {
	name string
	c    *cons
	d    *drain
	held map[uint64]*servingpb.ReceivedMessage // by sequence id
}

func keySharedChurn(t *testing.T, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	c := newCluster(t)
	n := c.start("a", nil)
	topic := fmt.Sprint("key-shared-churn-", seed)
	p := mustProducer(t, n, topic, "")
	var open []*churnConsumer
	attach := func() {
		name := fmt.Sprint("c", rng.IntN(4))
		cs := mustSubscribe(t, n, &servingpb.Subscribe{Topic: topic, Subscription: "ks", Type: servingpb.SubscriptionType_KEY_SHARED,
			ConsumerName: name, InitialPosition: servingpb.InitialPosition_EARLIEST})
		cs.flow(uint32(1 + rng.IntN(30)))
		open = append(open, &churnConsumer{name: name, c: cs, d: startDrain(cs), held: map[uint64]*servingpb.ReceivedMessage{}})
	}
	keyOf := map[uint64]string{} // every message published
	acked := map[uint64]bool{}
	received := func(x *churnConsumer, m *servingpb.ReceivedMessage) {
		seq, key := m.GetSequenceId(), m.GetKey()
		if key != "" {
			for _, y := range open {
				for _, h := range y.held {
					// A message acked already (by a consumer that then
					// closed: the server may take its ack after giving the
					// message to another) holds nothing.
					if y != x && h.GetKey() == key && !acked[h.GetSequenceId()] {
						t.Fatalf("seed %d: seq %d of key %s went to %s while %s holds seq %d", seed, seq, key, x.name, y.name, h.GetSequenceId())
					}
				}
			}
			for e, k := range keyOf {
				if k == key && e < seq && !acked[e] && x.held[e] == nil {
					t.Fatalf("seed %d: seq %d of key %s went to %s before seq %d was acked or given to it", seed, seq, key, x.name, e)
				}
			}
		}
		x.held[seq] = m
	}
	poll := func() {
		for _, x := range open {
			for more := true; more; {
				select {
				case m, ok := <-x.d.ch:
					if !ok {
						t.Fatalf("seed %d: %s's stream ended", seed, x.name)
					}
					received(x, m)
				default:
					more = false
				}
			}
		}
	}
	ack := func(x *churnConsumer, all bool) {
		var ms []*servingpb.ReceivedMessage
		for seq, m := range x.held {
			if all || rng.IntN(2) == 0 {
				ms = append(ms, m)
				acked[seq] = true
				delete(x.held, seq)
			}
		}
		if len(ms) > 0 {
			x.c.ack(idsOf(ms)...)
		}
	}
	attach()
	seq := uint64(0)
	for range 300 {
		switch r := rng.IntN(100); {
		case r < 35:
			batch := make([]*servingpb.Message, 1+rng.IntN(20))
			for i := range batch {
				seq++
				key := fmt.Sprint("k", rng.IntN(10))
				if rng.IntN(10) == 0 {
					key = ""
				}
				keyOf[seq] = key
				batch[i] = &servingpb.Message{SequenceId: seq, Key: key, Payload: payloadOf(seq)}
			}
			p.mustSend(batch...)
		case r < 65:
			ack(open[rng.IntN(len(open))], false)
		case r < 75:
			open[rng.IntN(len(open))].c.flow(uint32(1 + rng.IntN(30)))
		case r < 85 && len(open) > 1:
			i := rng.IntN(len(open))
			open[i].c.cancel() // what it held goes back; what was on its way is dropped with it
			open = slices.Delete(open, i, i+1)
		case r < 95 && len(open) < 4:
			attach()
		}
		poll()
	}
	for _, x := range open {
		x.c.flow(100_000)
	}
	eventually(t, "every message acknowledged", func() error {
		poll()
		for _, x := range open {
			ack(x, true)
		}
		if len(acked) != len(keyOf) {
			return fmt.Errorf("%d of %d acknowledged", len(acked), len(keyOf))
		}
		return nil
	})
	eventually(t, "backlog drained", func() error { return backlogIs(t, n, topic, 0) })
}

// Entries that expire (TTL) while they wait on a key_shared subscription
// stop counting against MaxKeySharedWaitingEntries: a subscription stalled
// at the limit reads again once they expire, without waiting for an ack, a
// flow or a consumer change. Here a's messages wait for permits, a holding
// nothing, so no released hold rescans the list.
func TestKeySharedReadsAgainWhenWaitingEntriesExpire(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) {
		cfg.MaxKeySharedWaitingEntries = 2
		cfg.TrimInterval = 50 * time.Millisecond
	})
	const topic = "public/ttl-ks/t"
	const keys = 50
	moved := movedToB(keys)
	ca := mustSubscribe(t, n, keySharedSub(topic, "a"))
	cb := mustSubscribe(t, n, keySharedSub(topic, "b"))
	ca.flow(uint32(keys - len(moved))) // exactly one round of a's keys
	cb.flow(1000)
	a, b := startDrain(ca), startDrain(cb)
	p := mustProducer(t, n, topic, "")
	for r := range 4 {
		p.mustSend(round(uint64(keys*r+1), keys)...)
	}
	ca.ack(idsOf(a.take(t, keys-len(moved)))...)
	// b gets three rounds: the first, and the two read before the limit.
	cb.ack(idsOf(b.take(t, 3*len(moved)))...)
	policy := func(ttlMs int64) {
		if _, err := n.client.SetNamespacePolicy(ctxT(t), &servingpb.SetNamespacePolicyRequest{Namespace: "public/ttl-ks",
			Policy: &servingpb.NamespacePolicy{TtlMs: ttlMs, RetentionMs: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	policy(1)
	eventually(t, "backlog expired", func() error { return backlogIs(t, n, topic, 0) })
	policy(0) // off: the next message must not expire before it is delivered
	p.mustSend(keyedMsg(10_000, moved[0]))
	if m := b.take(t, 1)[0]; m.GetSequenceId() != 10_000 {
		t.Fatalf("b got seq %d, want 10000", m.GetSequenceId())
	}
}

// A key's messages that wait because their consumer's response queue was
// full are delivered once the queue drains, with no ack or flow to wake the
// subscription: the consumer here reads late, never acknowledges and has
// permits for everything. Its connection has fixed 64 KiB flow-control
// windows, so the node's sends block and its queue fills, while another
// consumer keeps the subscription reading.
func TestKeySharedDeliversWhatWaitedForAFullResponseQueue(t *testing.T) {
	c := newCluster(t)
	n := c.start("a", func(cfg *serving.Config) { cfg.ConsumerQueue = 3 })
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow := &testNode{Node: n.Node, addr: n.addr, client: servingpb.NewBrokerClient(conn)}
	const topic = "key-shared-queue"
	cs := mustSubscribe(t, slow, keySharedSub(topic, "a"))
	cs.flow(10_000)
	// b reads at once, so the subscription keeps reading entries (some
	// consumer has room) while a's queue is full: a's messages then wait.
	cb := mustSubscribe(t, n, keySharedSub(topic, "b"))
	cb.flow(10_000)
	startDrain(cb)
	key := ""
	for k := 0; key == ""; k++ {
		if serving.KeyOwner([]string{"a", "b"}, fmt.Sprint("k", k)) == "a" {
			key = fmt.Sprint("k", k)
		}
	}
	p := mustProducer(t, n, topic, "")
	const count = 100
	big := make([]byte, 16<<10) // 1.6 MB: far past the windows and the queue
	for i := uint64(1); i <= count; i++ {
		p.mustSend(&servingpb.Message{SequenceId: i, Key: key, Payload: big})
	}
	got := cs.receive(count) // a stall ends with the test's context, as an error
	for i, m := range got {
		if m.GetSequenceId() != uint64(i+1) {
			t.Fatalf("message %d: seq %d", i, m.GetSequenceId())
		}
	}
}
