package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/serving/servingpb"
)

// refusingNode answers every CreateTopic with a retriable NOT_ENOUGH_BOOKIES,
// as a live node whose cluster has too few writable bookies.
type refusingNode struct {
	servingpb.UnimplementedBrokerServer
}

const notEnoughBookiesMsg = "creating ledger for public/default/t: 2 writable, ensemble of 3"

func (refusingNode) CreateTopic(context.Context, *servingpb.CreateTopicRequest) (*servingpb.CreateTopicResponse, error) {
	return nil, errcode.New(errcode.NotEnoughBookies, notEnoughBookiesMsg)
}

// startRefusingNode serves a refusingNode on loopback until the test ends.
func startRefusingNode(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(errcode.UnaryServerInterceptor()))
	servingpb.RegisterBrokerServer(srv, refusingNode{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestAllSeedsFailingReportsANodesAnswerOverADeadSeedsDialError(t *testing.T) {
	live, dead := startRefusingNode(t), closedPort(t)
	for _, tc := range []struct {
		name  string
		seeds string
	}{{"dead seed first", dead + "," + live}, {"dead seed last", live + "," + dead}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New("strata://"+tc.seeds, client.OperationTimeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			err = c.Admin().CreateTopic(testCtx(t), "t", 0)
			var e *errcode.Error
			if !errors.As(err, &e) || e.Code != errcode.NotEnoughBookies || e.Message != notEnoughBookiesMsg {
				t.Fatalf("create topic: %v, want the live node's NOT_ENOUGH_BOOKIES: %s", err, notEnoughBookiesMsg)
			}
		})
	}
}
