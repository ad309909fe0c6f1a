package entry

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
)

var codecs = []Compression{CompressionLZ4, CompressionZlib, CompressionZstd, CompressionSnappy}

// compressible is a batch of JSON-like messages, as most topics carry.
func compressible(n int) *Batch {
	b := &Batch{ProducerName: "p", PublishTime: 1_700_000_000_000_000_000}
	for i := range n {
		b.Messages = append(b.Messages, Message{
			SequenceID: uint64(i), Key: fmt.Sprintf("order-%d", i%7),
			Properties: map[string]string{"type": "order"},
			Payload:    fmt.Appendf(nil, `{"order_id":%d,"customer":"c-%d","status":"paid","amount":%d.99}`, i, i%13, i%100),
		})
	}
	return b
}

// compressedEntry is what a node writes for b sent compressed with c.
func compressedEntry(t testing.TB, c Compression, b *Batch) []byte {
	t.Helper()
	msgs := encodeMessages(b)
	z, err := Compress(c, msgs)
	if err != nil || z == nil {
		t.Fatalf("Compress(%s) = %d bytes, %v; want fewer than %d", c, len(z), err, len(msgs))
	}
	p := AppendCompressedEntry(nil, b.ProducerName, b.PublishTime, len(b.Messages), c, len(msgs), z)
	if n := CompressedEntrySize(b.ProducerName, b.PublishTime, len(b.Messages), len(msgs), len(z)); n != len(p) {
		t.Fatalf("CompressedEntrySize %d, entry has %d bytes", n, len(p))
	}
	return p
}

func TestCompressedEntryDecodesToTheBatchItWasMadeOf(t *testing.T) {
	want := compressible(200)
	plain := Encode(want)
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			p := compressedEntry(t, c, want)
			if len(p) >= len(plain) {
				t.Errorf("compressed entry %d bytes, uncompressed %d", len(p), len(plain))
			}
			got, err := Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			// Same messages: the uncompressed entry of the decoded batch
			// is byte for byte the one of the batch sent.
			if !bytes.Equal(Encode(got), plain) {
				t.Fatal("decoded batch differs from the one compressed")
			}
		})
	}
}

func TestCompressGivesNothingWhenItWouldNotShrink(t *testing.T) {
	random := make([]byte, 4096)
	rand.Read(random)
	for _, c := range append(codecs, CompressionNone) {
		if z, err := Compress(c, random); err != nil || z != nil {
			t.Errorf("%s of random bytes: %d bytes, %v; want nil, nil", c, len(z), err)
		}
	}
	if _, err := Compress(Compression(6), []byte("x")); err == nil {
		t.Error("an unknown codec compressed")
	}
}

// reseal replaces the checksum of p, so that what Decode checks past it is
// the content, not the CRC.
func reseal(p []byte) []byte {
	body := p[:len(p)-crcLen]
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

func TestDecodeRejectsCompressedEntriesThatLie(t *testing.T) {
	b := compressible(50)
	msgs := encodeMessages(b)
	for _, c := range codecs {
		z, _ := Compress(c, msgs)
		build := func(codec Compression, size int, data []byte) []byte {
			return AppendCompressedEntry(nil, b.ProducerName, b.PublishTime, len(b.Messages), codec, size, data)
		}
		garbage := bytes.Clone(z)
		for i := len(garbage) / 3; i < len(garbage); i += 7 {
			garbage[i] ^= 0x5a
		}
		cases := map[string][]byte{
			"size one short":    build(c, len(msgs)-1, z),
			"size one over":     build(c, len(msgs)+1, z),
			"size over limit":   build(c, MaxUncompressedBytes+1, z),
			"garbage data":      build(c, len(msgs), garbage),
			"truncated data":    build(c, len(msgs), z[:len(z)/2]),
			"other codec":       build(codecs[(int(c))%len(codecs)], len(msgs), z),
			"unknown codec":     build(Compression(5), len(msgs), z),
			"unknown flag bits": reseal(func() []byte { p := build(c, len(msgs), z); p[3] |= 0x10; return p }()),
		}
		for name, p := range cases {
			if _, err := Decode(p); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s, %s: err = %v, want ErrCorrupt", c, name, err)
			}
		}
	}
}

func TestDecodeOfACompressedEntryRejectsEveryFlippedByte(t *testing.T) {
	checkEveryFlipRejected(t, compressedEntry(t, CompressionZstd, compressible(20)))
}

func TestParseCompressionAcceptsEveryNameAndRejectsOthers(t *testing.T) {
	for _, c := range append(codecs, CompressionNone) {
		if got, err := ParseCompression(c.String()); err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v", c.String(), got, err)
		}
	}
	if got, err := ParseCompression("ZSTD"); err != nil || got != CompressionZstd {
		t.Errorf("ParseCompression(ZSTD) = %v, %v", got, err)
	}
	if _, err := ParseCompression("gzip"); err == nil {
		t.Error("gzip parsed")
	}
}

// BenchmarkCodecs measures each codec on a batch of 1,000 JSON-like
// messages: compress (with the ratio) and decompress.
func BenchmarkCodecs(b *testing.B) {
	msgs := encodeMessages(compressible(1000))
	for _, c := range codecs {
		z, _ := Compress(c, msgs)
		ops := map[string]func() error{
			"compress":   func() error { _, err := Compress(c, msgs); return err },
			"decompress": func() error { _, err := Decompress(c, z, len(msgs)); return err },
		}
		for _, op := range []string{"compress", "decompress"} {
			b.Run(c.String()+"/"+op, func(b *testing.B) {
				b.SetBytes(int64(len(msgs)))
				for b.Loop() {
					if err := ops[op](); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(msgs))/float64(len(z)), "ratio")
			})
		}
	}
}
