package bookie

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/bookie/bookiepb"
)

// The untyped grpc.Stream methods of the in-process streams (what generic
// gRPC code and interceptors call) carry the same messages as the typed
// ones, and refuse a message of the wrong type instead of panicking.
func TestLocalStreamUntypedSendAndRecvCarryTheTypedMessages(t *testing.T) {
	c := openBookie(t, testConfig(t.TempDir())).LocalClient()
	st, err := c.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&bookiepb.AddRequest{RequestId: 7, LedgerId: 3, EntryId: 0, Lac: -1, Payload: []byte("x")}); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	var resp bookiepb.AddResponse
	if err := st.RecvMsg(&resp); err != nil {
		t.Fatalf("RecvMsg: %v", err)
	}
	if resp.RequestId != 7 || resp.ErrorCode != 0 {
		t.Fatalf("response %+v, want request 7 acknowledged", &resp)
	}
	if err := st.SendMsg(&bookiepb.AddResponse{}); err == nil {
		t.Fatal("SendMsg took a response message as a request")
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	// A server stream through RecvMsg: the entry reads back.
	rs, err := c.Read(context.Background(), &bookiepb.ReadRequest{LedgerId: 3, FirstEntry: 0, LastEntry: 0})
	if err != nil {
		t.Fatal(err)
	}
	var got bookiepb.ReadResponse
	if err := rs.RecvMsg(&got); err != nil {
		t.Fatalf("RecvMsg on a read: %v", err)
	}
	if len(got.Entries) != 1 || string(got.Entries[0].GetPayload()) != "x" {
		t.Fatalf("read back %v", got.Entries)
	}
}
