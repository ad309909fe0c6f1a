package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mq/strata/bookie"
	"github.com/strata-mq/strata/bookie/bookiepb"
)

// TestBookieCommandServesAndShutsDownCleanly runs `strata bookie` in process,
// adds an entry over gRPC, cancels the command's context (what SIGTERM does)
// and checks that the command returns and the entry is in the journal.
func TestBookieCommandServesAndShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	root := newRootCmd()
	root.SetOut(pw)
	root.SetArgs([]string{"bookie", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if _, a, ok := strings.Cut(sc.Text(), " listening on "); ok {
				addr <- strings.Fields(a)[0]
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("command ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no listening line")
	}
	cc, err := grpc.NewClient("passthrough:///"+a, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	st, err := bookiepb.NewBookieClient(cc).Add(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&bookiepb.AddRequest{LedgerId: 1, EntryId: 0, Lac: -1, Payload: []byte("kept")})
	if r, err := st.Recv(); err != nil || r.ErrorCode != 0 {
		t.Fatalf("add: %+v %v", r, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("command did not stop")
	}
	b, err := bookie.Open(bookie.Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if e, err := b.Read(1, 0); err != nil || string(e.Payload) != "kept" {
		t.Fatalf("entry after shutdown: %+v %v", e, err)
	}
}

// TestScrubFlagsOfZeroOrLessTurnTheScrubberOff: --scrub-interval and
// --scrub-bytes-per-second give bookie.Config its scrubber settings, both
// in strata bookie and in strata standalone; their defaults are the
// bookie's, and 0 turns the scrubber (or its bound) off where
// bookie.Config would take 0 for the default.
func TestScrubFlagsOfZeroOrLessTurnTheScrubberOff(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		interval time.Duration
		rate     int64
	}{
		{nil, bookie.DefaultScrubInterval, bookie.DefaultScrubBytesPerSecond},
		{[]string{"--scrub-interval", "1h", "--scrub-bytes-per-second", "1048576"}, time.Hour, 1 << 20},
		{[]string{"--scrub-interval", "0", "--scrub-bytes-per-second", "0"}, -1, -1},
		{[]string{"--scrub-interval", "-5s", "--scrub-bytes-per-second", "-1"}, -1, -1},
	} {
		for _, cmd := range []*cobra.Command{newBookieCmd(), newStandaloneCmd()} {
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatalf("%s %v: %v", cmd.Name(), tc.args, err)
			}
			interval, rate := scrubFlags(cmd.Flags())
			if interval != tc.interval || rate != tc.rate {
				t.Fatalf("%s %v: interval %v, rate %d; want %v, %d", cmd.Name(), tc.args, interval, rate, tc.interval, tc.rate)
			}
		}
		cmd := newBookieCmd()
		_ = cmd.ParseFlags(append([]string{"--data-dir", "d"}, tc.args...))
		if c := bookieConfig(cmd); c.ScrubInterval != tc.interval || c.ScrubBytesPerSecond != tc.rate {
			t.Fatalf("bookie %v: config %v %d", tc.args, c.ScrubInterval, c.ScrubBytesPerSecond)
		}
	}
}
