package metadata

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/strata-mq/strata/internal/errcode"
)

// FuzzDecode feeds arbitrary etcd values to the record decoder: it never
// panics, a value that does not parse is a Corruption error, and a value
// that parses re-encodes to a stable form.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":1,"ensemble":3,"write_quorum":2,"ack_quorum":2,"state":"open","fragments":[{"first_entry":0,"bookies":["a:1","b:1","c:1"]}],"last_entry":-1}`))
	f.Add([]byte(`{"topic":"a/b/c","ledgers":[{"id":4,"entries":10}],"producers":{"p":7}}`))
	f.Add([]byte(`{"topic":"a/b/c","subscription":"s","mark_delete":{"ledger":1,"entry":2},"acked_ranges":"AQI="}`))
	f.Add([]byte(`{"topic":"a/b/c","subscription":"s","mark_delete":{"ledger":1,"entry":2},"epoch":3,"updated_at":4}`))
	f.Add([]byte(`{"subscription":"s","epoch":-1}`))
	f.Add([]byte(`{"offload":{"state":"complete","segments":[{"key":"k","batches":[{"rows":1}]}]}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kv := &mvccpb.KeyValue{Key: []byte("/k"), Value: b}
		checkDecode[Ledger](t, kv)
		checkDecode[ManagedLedger](t, kv)
		checkDecode[Cursor](t, kv)
		checkDecode[NamespacePolicy](t, kv)
	})
}

func checkDecode[T any](t *testing.T, kv *mvccpb.KeyValue) {
	var v T
	if err := decode(kv, &v); err != nil {
		if errcode.CodeOf(err) != errcode.Corruption {
			t.Fatalf("decode error %v is not Corruption", err)
		}
		return
	}
	first, err := encode(v)
	if err != nil {
		return // over MaxRecordBytes after re-encoding: refused, fine
	}
	var w T
	if err := decode(&mvccpb.KeyValue{Value: []byte(first)}, &w); err != nil {
		t.Fatalf("re-decode of %q: %v", first, err)
	}
	if second, _ := encode(w); second != first {
		t.Fatalf("encoding not stable:\n%s\n%s", first, second)
	}
}
