package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/client"
)

// TestCompressedProducersStoreFewerBytesAndConsumersGetTheSameMessages:
// on a real standalone, the same generated messages produced with each
// codec take far fewer stored bytes than uncompressed, and a consumer of
// each topic receives every message, in order, byte for byte. A codec the
// command line does not know is refused before anything is sent.
func TestCompressedProducersStoreFewerBytesAndConsumersGetTheSameMessages(t *testing.T) {
	s := newStandalone(t)
	s.start()
	cli := cliAt(t, s.url())
	const n, size = 300, 400
	stored := map[string]uint64{}
	admin := s.client().Admin()
	ctx := testContext(t, time.Minute)
	for _, codec := range []string{"none", "lz4", "zlib", "zstd", "snappy"} {
		topic := "compressed-" + codec
		cli("", "produce", "--topic", topic, "--count", fmt.Sprint(n), "--size", fmt.Sprint(size),
			"--compression", codec, "--linger", "50ms")
		st, err := admin.TopicStats(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		stored[codec] = st.StorageBytes
		got := payloads(cli("", "consume", "--topic", topic, "--subscription", "s", "--position", "earliest",
			"--count", fmt.Sprint(n), "--timeout", "30s"))
		if len(got) != n {
			t.Fatalf("%s: consumed %d messages, want %d", codec, len(got), n)
		}
		for i, p := range got {
			if want := string(generatedPayload(i, size)); p != want {
				t.Fatalf("%s: message %d is %q, want %q", codec, i, p, want)
			}
		}
	}
	t.Logf("stored bytes: %v", stored)
	for codec, b := range stored {
		if codec != "none" && b*4 > stored["none"] {
			t.Errorf("%s stored %d bytes, uncompressed %d: want at most a quarter", codec, b, stored["none"])
		}
	}
	if _, _, err := run(t, "", "produce", "--url", s.url(), "--topic", "x", "--count", "1", "--compression", "gzip"); err == nil {
		t.Fatal("--compression gzip was accepted")
	}
	if _, err := s.client().NewProducer(ctx, "x", client.ProducerCompression(client.Compression(42))); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("an unknown codec: %v, want ErrInvalidArgument", err)
	}
}
