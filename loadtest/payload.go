package loadtest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/strata-mq/strata/internal/errcode"
)

// HeaderSize is the size of the header stamped into every payload; see the
// package documentation for its layout.
const HeaderSize = 28

var magic = [4]byte{'S', 'L', 'T', '1'}

// Header is what a producer stamps into a payload.
type Header struct {
	Producer  uint32
	Partition uint32
	Seq       uint64
	// SendUnixNano is the producer's clock when the message was sent.
	SendUnixNano int64
}

// Encode writes h into the first HeaderSize bytes of buf, which must be at
// least that long. The rest of buf is left as it is (filler).
func (h Header) Encode(buf []byte) {
	_ = buf[HeaderSize-1]
	copy(buf[0:4], magic[:])
	binary.LittleEndian.PutUint32(buf[4:8], h.Producer)
	binary.LittleEndian.PutUint32(buf[8:12], h.Partition)
	binary.LittleEndian.PutUint64(buf[12:20], h.Seq)
	binary.LittleEndian.PutUint64(buf[20:28], uint64(h.SendUnixNano))
}

// ErrBadPayload is returned by DecodeHeader for a payload that was not
// written by a loadtest producer (too short or wrong magic).
var ErrBadPayload = errcode.New(errcode.InvalidArgument, "loadtest: payload has no loadtest header")

// DecodeHeader reads the header at the start of payload.
func DecodeHeader(payload []byte) (Header, error) {
	if len(payload) < HeaderSize || [4]byte(payload[0:4]) != magic {
		return Header{}, ErrBadPayload
	}
	return Header{
		Producer:     binary.LittleEndian.Uint32(payload[4:8]),
		Partition:    binary.LittleEndian.Uint32(payload[8:12]),
		Seq:          binary.LittleEndian.Uint64(payload[12:20]),
		SendUnixNano: int64(binary.LittleEndian.Uint64(payload[20:28])),
	}, nil
}

// fillerSlack is how much longer than a message the filler is: each
// message copies a window of it at a random offset, so that the messages
// of a batch differ (a compressor would otherwise find each one whole in
// the one before it).
const fillerSlack = 64 << 10

// fillerEvents are what the log lines of PayloadText say.
var fillerEvents = []string{"order paid", "order shipped", "cart updated", "payment refused", "session started", "item restocked"}

// makeFiller returns n bytes of kind's filler, drawn from rng: random
// bytes, or structured log lines whose keys repeat and whose values vary.
func makeFiller(kind PayloadKind, n int, rng *rand.Rand) []byte {
	b := make([]byte, 0, n+256)
	if kind != PayloadText {
		for range n {
			b = append(b, byte(rng.Uint32()))
		}
		return b
	}
	levels := []string{"info", "info", "info", "warn", "debug"}
	for len(b) < n {
		b = fmt.Appendf(b, "ts=2026-11-22T10:%02d:%02d.%03dZ level=%s msg=%q customer=c-%d amount=%d.%02d latency_ms=%d\n",
			rng.IntN(60), rng.IntN(60), rng.IntN(1000), levels[rng.IntN(len(levels))], fillerEvents[rng.IntN(len(fillerEvents))],
			rng.IntN(5000), rng.IntN(500), rng.IntN(100), rng.IntN(300))
	}
	return b[:n]
}
