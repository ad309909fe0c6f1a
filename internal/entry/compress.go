package entry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is the codec of an entry's messages: the low three bits of
// the flags byte. The values are also the wire values of the serving
// protocol's Compression enum.
type Compression uint8

// The codecs Pulsar producers offer, with the same names.
const (
	CompressionNone Compression = iota
	// CompressionLZ4 is the LZ4 block format (no frame).
	CompressionLZ4
	// CompressionZlib is a zlib stream (RFC 1950) at the default level.
	CompressionZlib
	// CompressionZstd is one Zstandard frame at the default level.
	CompressionZstd
	// CompressionSnappy is the Snappy block format.
	CompressionSnappy

	compressionMask = 0x07
)

// MaxUncompressedBytes bounds the messages of one entry once decompressed,
// so that a small hostile entry cannot make a reader allocate without
// bound (a zstd frame of a few KiB can claim gigabytes).
const MaxUncompressedBytes = 64 << 20

var compressionNames = [...]string{"none", "lz4", "zlib", "zstd", "snappy"}

func (c Compression) String() string {
	if int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Valid reports whether c is a known codec.
func (c Compression) Valid() bool { return int(c) < len(compressionNames) }

// ParseCompression parses a codec's name as String writes it (any case).
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if strings.EqualFold(s, n) {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q: want one of %s", s, strings.Join(compressionNames[:], ", "))
}

var (
	lz4Compressors = sync.Pool{New: func() any { return new(lz4.Compressor) }}
	// EncodeAll and DecodeAll may be called concurrently on one of each.
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxUncompressedBytes))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// Compress returns src compressed with c, or nil when c is
// CompressionNone or the result would not be smaller than src (the caller
// then sends src as it is, which spares every reader a decompression).
func Compress(c Compression, src []byte) ([]byte, error) {
	switch c {
	case CompressionNone:
		return nil, nil
	case CompressionLZ4:
		dst := make([]byte, lz4.CompressBlockBound(len(src)))
		lc := lz4Compressors.Get().(*lz4.Compressor)
		n, err := lc.CompressBlock(src, dst)
		lz4Compressors.Put(lc)
		if err != nil {
			return nil, err
		}
		return smaller(dst[:n], src), nil
	case CompressionZlib:
		var buf bytes.Buffer
		buf.Grow(len(src) / 2)
		w := zlib.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return smaller(buf.Bytes(), src), nil
	case CompressionZstd:
		return smaller(zstdEncoder().EncodeAll(src, make([]byte, 0, len(src)/2)), src), nil
	case CompressionSnappy:
		return smaller(s2.EncodeSnappy(nil, src), src), nil
	}
	return nil, fmt.Errorf("entry: unknown compression %d", c)
}

// smaller returns dst if it is shorter than src and non-empty, else nil.
func smaller(dst, src []byte) []byte {
	if len(dst) == 0 || len(dst) >= len(src) {
		return nil
	}
	return dst
}

// Decompress returns src decompressed with c, which must give exactly size
// bytes (at most MaxUncompressedBytes). Any other outcome is ErrCorrupt.
func Decompress(c Compression, src []byte, size int) ([]byte, error) {
	if size < 0 || size > MaxUncompressedBytes {
		return nil, corrupt("uncompressed size %d out of range", size)
	}
	var (
		out []byte
		err error
	)
	switch c {
	case CompressionLZ4:
		out = make([]byte, size)
		var n int
		if n, err = lz4.UncompressBlock(src, out); err == nil && n != size {
			err = fmt.Errorf("%d bytes, not %d", n, size)
		}
	case CompressionZlib:
		out, err = inflate(src, size)
	case CompressionZstd:
		out, err = zstdDecoder().DecodeAll(src, make([]byte, 0, size))
		if err == nil && len(out) != size {
			err = fmt.Errorf("%d bytes, not %d", len(out), size)
		}
	case CompressionSnappy:
		var n int
		if n, err = s2.DecodedLen(src); err == nil {
			if n != size {
				err = fmt.Errorf("%d bytes, not %d", n, size)
			} else {
				out, err = s2.Decode(make([]byte, size), src)
			}
		}
	default:
		return nil, corrupt("unknown compression %d", c)
	}
	if err != nil {
		return nil, corrupt("%s: %v", c, err)
	}
	return out, nil
}

// inflate reads exactly size bytes of a zlib stream and its end, which is
// where zlib checks its Adler-32.
func inflate(src []byte, size int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); err {
	case nil:
		return nil, errors.New("more than the stated size")
	case io.EOF:
		return out, nil
	default:
		return nil, err
	}
}
