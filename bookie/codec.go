package bookie

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/rpcpool"
)

// addFrame is an AddRequest as the Add handler receives it over gRPC. Its
// payload may be left in the buffer the request arrived in (buf) rather
// than copied out: gRPC's protobuf codec first gathers a request's frames
// into one buffer and then copies every bytes field out of it, so a 64 KiB
// entry was copied twice before the journal copied it a third time, and
// the second copy, into freshly allocated memory, cost as much CPU as the
// journal's own write (docs/bookie.md). free gives the buffer back once
// the add is answered: the bookie reads a payload only until then.
//
// It embeds the request, so it is a protobuf message too: on a server
// built without ServerOptions the default codec fills it, with copies.
type addFrame struct {
	*bookiepb.AddRequest
	buf mem.Buffer
}

// free releases the buffer the payload points into; the payload must not
// be read after it.
func (f *addFrame) free() {
	if f.buf != nil {
		f.buf.Free()
		f.buf = nil
	}
}

// serverCodec is the bookie server's gRPC codec: protobuf, except that an
// addFrame's payload aliases the received bytes.
type serverCodec struct{ proto encoding.CodecV2 }

func newServerCodec() serverCodec { return serverCodec{proto: encoding.GetCodecV2("proto")} }

func (serverCodec) Name() string { return "proto" }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*addFrame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	// One buffer from the pool, or the only one data holds with its count
	// raised: no copy for a request that arrived in one frame.
	buf := data.MaterializeToBuffer(rpcpool.Shared)
	if decodeAdd(buf.ReadOnlyData(), f.AddRequest) {
		if len(f.Payload) > 0 {
			f.buf = buf
		} else {
			buf.Free()
		}
		return nil
	}
	buf.Free()
	// Anything decodeAdd does not take (a field it does not know, a
	// malformed one) goes the standard way, which also words the error.
	return c.proto.Unmarshal(data, f.AddRequest)
}

// decodeAdd decodes an AddRequest from b into m (a zero message), its
// payload pointing into b. It reports false, leaving m to be reset, for
// input that is malformed or holds a field or wire type it does not
// expect. A field seen twice keeps its last value, as protobuf's decoder
// does.
func decodeAdd(b []byte, m *bookiepb.AddRequest) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 5 {
			if typ != protowire.BytesType {
				return false
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			m.Payload = nil // as protobuf leaves an empty bytes field
			if len(v) > 0 {
				m.Payload = v[:len(v):len(v)] // an append must not run into the next field
			}
			b = b[n:]
			continue
		}
		if typ != protowire.VarintType {
			return false
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case 1:
			m.RequestId = v
		case 2:
			m.LedgerId = v
		case 3:
			m.EntryId = int64(v)
		case 4:
			m.Lac = int64(v)
		case 6:
			m.Recovery = protowire.DecodeBool(v)
		default:
			return false
		}
	}
	return true
}
