package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// BenchmarkStandaloneProduce sends b.N messages through the SDK (batching,
// SendAsync) to a `strata standalone` running in this process (embedded
// etcd, one bookie with fsync on, the serving node), so that a CPU profile
// of the benchmark shows client, serving and bookie side by side:
//
//	go test -run '^$' -bench StandaloneProduce -benchtime 2000000x -cpuprofile /tmp/cpu.out ./cmd/strata/
//	go tool pprof -top /tmp/cpu.out
//
// Sub-benchmarks: message size 100 B and 1 KiB, 1 or 4 partitions (one
// producer each way). The producer keeps its defaults but for a 1 ms linger
// and 5000 messages in flight per partition.
func BenchmarkStandaloneProduce(b *testing.B) {
	url := produceBenchStandalone(b)
	for _, size := range []int{100, 1024} {
		for _, parts := range []int{1, 4} {
			b.Run("size="+strconv.Itoa(size)+"/partitions="+strconv.Itoa(parts), func(b *testing.B) {
				produceBenchRun(b, url, parts, [][]byte{make([]byte, size)})
			})
		}
	}
}

// BenchmarkStandaloneProduceCompressed is BenchmarkStandaloneProduce with
// JSON-like messages of about 1 KiB (each different, from a small
// vocabulary, as events and logs are) and each producer codec, reporting
// the bytes stored per message beside the rate:
//
//	go test -run '^$' -bench StandaloneProduceCompressed -benchtime 200000x ./cmd/strata/
func BenchmarkStandaloneProduceCompressed(b *testing.B) {
	url := produceBenchStandalone(b)
	payloads := jsonPayloads(1024, 1024)
	for _, codec := range []client.Compression{client.CompressionNone, client.CompressionLZ4, client.CompressionSnappy, client.CompressionZstd, client.CompressionZlib} {
		b.Run("codec="+codec.String(), func(b *testing.B) {
			topic := produceBenchRun(b, url, 1, payloads, client.ProducerCompression(codec))
			c, err := client.New(url)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			st, err := c.Admin().TopicStats(context.Background(), topic)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.StorageBytes)/float64(b.N), "stored-B/msg")
		})
	}
}

// jsonPayloads returns n different JSON objects of about size bytes, their
// words drawn from a small vocabulary with a fixed seed.
func jsonPayloads(n, size int) [][]byte {
	words := strings.Fields("order paid shipped pending refund customer cart item sku price eur usd warehouse berlin paris lisbon express standard gift coupon")
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		p := fmt.Appendf(nil, `{"id":%d,"ts":"2026-11-22T10:%02d:%02d.%06dZ","amount":%d.%02d,"tags":[`,
			rng.Uint64(), rng.IntN(60), rng.IntN(60), rng.IntN(1e6), rng.IntN(10000), rng.IntN(100))
		for len(p) < size-10 {
			p = fmt.Appendf(p, `"%s-%d",`, words[rng.IntN(len(words))], rng.IntN(100))
		}
		out[i] = append(p[:len(p)-1], "]}"...)
	}
	return out
}

// produceBenchRun sends b.N messages, payloads in turn, to a new topic
// (parts partitions, 1: not partitioned) and returns its name.
func produceBenchRun(b *testing.B, url string, parts int, payloads [][]byte, opts ...client.ProducerOption) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New(url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	topicName := "public/default/bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	n := parts
	if parts == 1 {
		n = 0 // a non-partitioned topic
	}
	if err := c.Admin().CreateTopic(ctx, topicName, n); err != nil {
		b.Fatal(err)
	}
	p, err := c.NewProducer(ctx, topicName, append([]client.ProducerOption{client.ProducerLinger(time.Millisecond),
		client.ProducerMaxPendingMessages(5000)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var failed atomic.Int64
	var firstErr sync.Once
	var errMsg error
	cb := func(_ client.MessageID, _ *client.ProducerMessage, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.Do(func() { errMsg = err })
		}
	}
	b.SetBytes(int64(len(payloads[0])))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		p.SendAsync(ctx, &client.ProducerMessage{Payload: payloads[i%len(payloads)]}, cb)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d sends failed, one: %v", n, errMsg)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	return topicName
}

// produceBenchStandalone runs `strata standalone` in this process on free
// loopback ports and returns its client URL; it stops with the benchmark.
func produceBenchStandalone(b *testing.B) string {
	b.Helper()
	var addrs []string
	var ls []net.Listener
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCmd()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"--log-level", "error", "standalone", "--data-dir", b.TempDir(), "--grpc-addr", addrs[0],
		"--http-addr", addrs[1], "--bookie-addr", addrs[2], "--etcd-addr", addrs[3], "--etcd-peer-addr", addrs[4]})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Logf("standalone: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addrs[1] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "strata://" + addrs[0]
			}
		}
		select {
		case err := <-done:
			b.Fatalf("standalone exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("standalone not ready after 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
