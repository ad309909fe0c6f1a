package bookie

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/ids"
)

// childDirEnv makes the test binary run a bookie server instead of tests
// (TestMain), so a test can SIGKILL a real bookie process.
const childDirEnv = "STRATA_BOOKIE_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// childConfig uses small segments and frequent checkpoints so that a kill
// lands amid rotations and checkpoint writes.
func childConfig(dir string) Config {
	return Config{DataDir: dir, JournalFileBytes: 2 << 20, GroupMaxBytes: 256 << 10, MaxEntryBytes: 256 << 10, CheckpointInterval: 20 * time.Millisecond}
}

func runChild(dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := Open(childConfig(dir), log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	s := grpc.NewServer(b.ServerOptions()...)
	b.Register(s)
	fmt.Printf("LISTEN %s\n", lis.Addr())
	s.Serve(lis)
	return 0
}

// startChild starts a bookie process on dir and returns its address.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("child bookie did not start")
		return nil, ""
	}
}

// crashWriter streams adds to one ledger like a ledger writer: entry ids in
// order, each carrying the writer's LAC (the highest entry with every entry
// at or below it acknowledged).
type crashWriter struct {
	seed   uint64
	ledger ids.LedgerID
	mu     sync.Mutex
	acked  map[ids.EntryID]bool
	lac    ids.EntryID
}

func (w *crashWriter) payload(e ids.EntryID) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], w.seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(e))
	r := rand.NewChaCha8(seed)
	p := make([]byte, 1+r.Uint64()%(64<<10))
	r.Read(p)
	return p
}

func (w *crashWriter) ack(e ids.EntryID) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked[e] = true
	for w.acked[w.lac+1] {
		w.lac++
	}
	return len(w.acked)
}

func (w *crashWriter) currentLAC() ids.EntryID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lac
}

// run streams adds until the stream breaks; it calls kill once killAfter
// adds were acknowledged.
func (w *crashWriter) run(t *testing.T, c bookiepb.BookieClient, killAfter int, kill func()) {
	st, err := c.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for e := ids.EntryID(0); ; e++ {
			req := &bookiepb.AddRequest{RequestId: uint64(e), LedgerId: uint64(w.ledger), EntryId: int64(e), Lac: int64(w.currentLAC()), Payload: w.payload(e)}
			if st.Send(req) != nil {
				return
			}
		}
	}()
	killed := false
	for {
		resp, err := st.Recv()
		if err != nil {
			if !killed {
				t.Fatalf("stream broke before the kill: %v", err)
			}
			return
		}
		if resp.ErrorCode != 0 {
			if killed {
				continue
			}
			t.Fatalf("add failed: %+v", resp)
		}
		if n := w.ack(ids.EntryID(resp.EntryId)); n >= killAfter && !killed {
			killed = true
			kill()
		}
	}
}

func TestAcknowledgedAddsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			dir := t.TempDir()
			if seed >= 3 {
				// The child then writes into recycled segments, full of
				// a forgotten ledger's records.
				fillFreeSegments(t, childConfig(dir))
			}
			cmd, addr := startChild(t, dir)
			c, _ := dial(t, addr)
			w := &crashWriter{seed: seed, ledger: ids.LedgerID(seed), acked: map[ids.EntryID]bool{}, lac: ids.NoEntry}
			killAfter := 100 + rand.New(rand.NewPCG(seed, 0)).IntN(400)
			// With even seeds the ledger is fenced while adds still stream,
			// and the bookie killed right after Fence returns.
			fence := seed%2 == 0
			var fenceLast ids.EntryID
			w.run(t, c, killAfter, func() {
				if fence {
					fr, err := c.Fence(context.Background(), &bookiepb.FenceRequest{LedgerId: uint64(w.ledger)})
					if err != nil {
						t.Errorf("fence: %v", err)
					}
					fenceLast = ids.EntryID(fr.GetLastEntry())
				}
				cmd.Process.Signal(syscall.SIGKILL)
			})
			cmd.Wait()
			if free, _ := journal.ListFree(filepath.Join(dir, "journal")); seed >= 3 && len(free) == DefaultJournalRecycleSegments {
				t.Fatal("the child wrote into no recycled segment")
			}

			_, addr = startChild(t, dir)
			c, _ = dial(t, addr)
			w.verify(t, c)
			if fence {
				w.verifyFenced(t, c, fenceLast)
			}
		})
	}
}

// verify checks that every acknowledged add reads back byte-identical and
// that the bookie's LAC does not exceed the writer's.
func (w *crashWriter) verify(t *testing.T, c bookiepb.BookieClient) {
	w.mu.Lock()
	defer w.mu.Unlock()
	maxAcked := ids.NoEntry
	for e := range w.acked {
		maxAcked = max(maxAcked, e)
	}
	for e := range w.acked {
		got, err := readAll(t, c, &bookiepb.ReadRequest{LedgerId: uint64(w.ledger), FirstEntry: int64(e), LastEntry: int64(e)})
		if err != nil || len(got) != 1 {
			t.Fatalf("acknowledged entry %d lost after SIGKILL: %v", e, err)
		}
		if string(got[0].Payload) != string(w.payload(e)) {
			t.Fatalf("acknowledged entry %d differs after SIGKILL", e)
		}
	}
	lac, err := c.ReadLAC(context.Background(), &bookiepb.ReadLACRequest{LedgerId: uint64(w.ledger)})
	if err != nil {
		t.Fatal(err)
	}
	if ids.EntryID(lac.Lac) > w.lac {
		t.Fatalf("bookie LAC %d exceeds the writer's LAC %d: an unacknowledged add is reported confirmed", lac.Lac, w.lac)
	}
	if ids.EntryID(lac.LastEntry) < maxAcked {
		t.Fatalf("bookie last entry %d below the highest acknowledged %d", lac.LastEntry, maxAcked)
	}
	t.Logf("acked %d entries (max %d), writer LAC %d, bookie LAC %d last %d", len(w.acked), maxAcked, w.lac, lac.Lac, lac.LastEntry)
}

// verifyFenced checks that the fence survived the kill and that no add past
// the entry Fence returned was acknowledged.
func (w *crashWriter) verifyFenced(t *testing.T, c bookiepb.BookieClient, fenceLast ids.EntryID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for e := range w.acked {
		if e > fenceLast {
			t.Fatalf("entry %d acknowledged but Fence returned last entry %d", e, fenceLast)
		}
	}
	lac, err := c.ReadLAC(context.Background(), &bookiepb.ReadLACRequest{LedgerId: uint64(w.ledger)})
	if err != nil || !lac.Fenced {
		t.Fatalf("fence lost by SIGKILL: %+v %v", lac, err)
	}
	st, err := c.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&bookiepb.AddRequest{LedgerId: uint64(w.ledger), EntryId: int64(fenceLast) + 1, Lac: -1, Payload: []byte("late")})
	if r, err := st.Recv(); err != nil || r.ErrorCode != uint32(errcode.Fenced) {
		t.Fatalf("add after fence and restart: %+v %v", r, err)
	}
}
