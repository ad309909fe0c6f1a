package serving

import (
	"reflect"
	"testing"

	"github.com/strata-mq/strata/internal/errcode"
)

// bitsOf is an entry of n messages with the listed ones acknowledged.
func bitsOf(n int, acked ...int) []bool {
	out := make([]bool, n)
	for _, i := range acked {
		out[i] = true
	}
	return out
}

func TestBatchAcksRoundTripAndTheBoundKeepsTheEntriesNearestTheMarkDelete(t *testing.T) {
	in := []batchAck{ // in log order: ledger 9 comes before ledger 4
		{pos: pos(9, 3), acked: bitsOf(3, 0, 2)},
		{pos: pos(9, 70), acked: bitsOf(8, 7)},
		{pos: pos(4, 0), acked: bitsOf(1000, 1, 500, 999)},
		{pos: pos(4, 1), acked: bitsOf(9, 0, 1, 2, 3, 4, 5, 6, 7, 8)}, // whole: left for the dispatcher
	}
	full := encodeBatchAcks(in, 1<<20)
	got, err := decodeBatchAcks(full)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("decoded %v, want %v", got, in)
	}
	// 3 bytes of position and count and 1 of bits for the first, as many
	// for the second.
	small := encodeBatchAcks(in, 7)
	if len(small) > 7 {
		t.Fatalf("encoding of %d bytes over the bound of 7", len(small))
	}
	part, err := decodeBatchAcks(small)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(part, in[:1]) {
		t.Fatalf("bounded encoding kept %v, want the first entry only", part)
	}
	if got, err := decodeBatchAcks(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty encoding: %v, %v", got, err)
	}
}

func TestCorruptBatchAcksAreACorruptionError(t *testing.T) {
	valid := encodeBatchAcks([]batchAck{{pos: pos(5, 2), acked: bitsOf(10, 3)}}, 1024)
	for name, b := range map[string][]byte{
		"cut in a varint":          {0x80},
		"no count":                 {5, 2},
		"no messages":              {5, 2, 0},
		"bitset cut short":         valid[:len(valid)-1],
		"bit past the last":        {5, 2, 3, 0b1000},
		"no bit set":               {5, 2, 3, 0},
		"entry named twice":        append(append([]byte{}, valid...), valid...),
		"entry not after the last": append(append([]byte{}, valid...), 5, 1, 1, 1),
		"entry id out of range":    {5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1},
		"count past the input":     {5, 2, 0xff, 0xff, 0x03, 1},
	} {
		if _, err := decodeBatchAcks(b); errcode.CodeOf(err) != errcode.Corruption {
			t.Errorf("%s: got %v, want a CORRUPTION error", name, err)
		}
	}
}

func FuzzDecodeBatchAcks(f *testing.F) {
	f.Add(encodeBatchAcks([]batchAck{{pos: pos(1, 3), acked: bitsOf(3, 1)}, {pos: pos(2, 7), acked: bitsOf(17, 0, 16)}}, 1024))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeBatchAcks(b)
		if err != nil {
			return
		}
		// What decodes re-encodes, in the order read, to the same acks.
		again, err := decodeBatchAcks(encodeBatchAcks(got, len(b)+16))
		if err != nil || len(again) != len(got) || (len(got) > 0 && !reflect.DeepEqual(again, got)) {
			t.Fatalf("re-encoding changed the acks: %v %v vs %v", err, again, got)
		}
	})
}
