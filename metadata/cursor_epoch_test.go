package metadata

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// TestACursorRecordedBeforeEpochsDecodesAtEpochZero: a cursor stored by a
// node without epochs has no epoch field and decodes with Epoch 0 (the
// serving tier loads it as its first epoch); one stored with an epoch
// reads it back, and a cursor at 0 is stored without the field, as before.
func TestACursorRecordedBeforeEpochsDecodesAtEpochZero(t *testing.T) {
	old := `{"topic":"a/b/c","subscription":"s","type":"shared","mark_delete":{"Ledger":1,"Entry":2},"acked_ranges":"AQI=","updated_at":7}`
	var c Cursor
	if err := decode(&mvccpb.KeyValue{Key: []byte("/k"), Value: []byte(old)}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Epoch != 0 || c.MarkDelete != (ids.Position{Ledger: 1, Entry: 2}) || c.Subscription != "s" {
		t.Fatalf("old record decoded as %+v, want epoch 0 and its fields", c)
	}
	if enc, err := encode(c); err != nil || enc != old {
		t.Fatalf("epoch 0 encodes as %s (%v), want the record as it was: %s", enc, err, old)
	}
	c.Epoch = 1 << 40
	enc, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Cursor
	if err := decode(&mvccpb.KeyValue{Value: []byte(enc)}, &back); err != nil || back.Epoch != 1<<40 {
		t.Fatalf("epoch stored as %s read back as %d (%v)", enc, back.Epoch, err)
	}
}

// TestACursorWithABadEpochIsCorruption: an epoch that is not an unsigned
// 64-bit integer is a Corruption error, as any record that does not parse.
func TestACursorWithABadEpochIsCorruption(t *testing.T) {
	for _, v := range []string{`-1`, `1.5`, `"3"`, `18446744073709551616`, `true`, `{}`} {
		rec := `{"topic":"a/b/c","subscription":"s","epoch":` + v + `}`
		var c Cursor
		err := decode(&mvccpb.KeyValue{Key: []byte("/k"), Value: []byte(rec)}, &c)
		if errcode.CodeOf(err) != errcode.Corruption {
			t.Errorf("epoch %s: %v, want a Corruption error", v, err)
		}
	}
}
