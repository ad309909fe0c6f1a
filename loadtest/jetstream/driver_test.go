package jetstream

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/loadtest"
)

// serverBinary finds nats-server ($STRATA_NATS_BIN, PATH, or the
// repository's .cache/bin where `make tools` installs it). It skips the
// test when there is none, unless CI=true, where that is a failure.
func serverBinary(t *testing.T) string {
	t.Helper()
	if p, err := FindServerBinary(); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		p := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), ".cache", "bin", "nats-server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nats-server not found and CI=true (run make tools)")
	}
	t.Skip("nats-server not found; set " + BinEnv)
	return ""
}

func TestServerConfigSetsSyncIntervalOnlyForSync(t *testing.T) {
	if c := serverConfig(4222, "/s", false); strings.Contains(c, "sync_interval") {
		t.Fatalf("default config sets sync_interval:\n%s", c)
	}
	if c := serverConfig(4222, "/s", true); !strings.Contains(c, "sync_interval: always") || !strings.Contains(c, "127.0.0.1:4222") {
		t.Fatalf("sync config:\n%s", c)
	}
}

func TestSanitizedNamesAreValidSubjectTokens(t *testing.T) {
	if got := partitionSubject("public/default/lt.x-0", 3); got != "lt.public_default_lt_x-0.3" {
		t.Fatalf("got %q", got)
	}
}

// TestLoadtestAgainstRealJetStreamLosesNothing runs a short, slow workload
// against a real nats-server per driver flavour and checks every
// acknowledged message arrived once and in order.
func TestLoadtestAgainstRealJetStreamLosesNothing(t *testing.T) {
	bin := serverBinary(t)
	for _, sync := range []bool{false, true} {
		d := New(Config{ServerBin: bin, SyncAlways: sync})
		t.Run(d.Name(), func(t *testing.T) {
			t.Cleanup(func() {
				if err := d.Close(); err != nil {
					t.Error(err)
				}
			})
			w := loadtest.DefaultWorkload()
			w.Partitions = 2
			w.SubscriptionsPerTopic = 2
			w.KeyDistribution = loadtest.KeyRoundRobin
			w.MessageSize = 256
			w.Rate = 200
			w.Duration = 2 * time.Second
			w.MaxMessagesPerProducer = 1000
			w.DrainTimeout = 5 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := loadtest.Run(ctx, d, w, loadtest.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verification
			if v.Published == 0 || v.Acked != v.Published || v.Received != 2*v.Acked {
				t.Fatalf("not everything acknowledged and received twice: %+v", v)
			}
			if res.Failed || v.Duplicates != 0 {
				t.Fatalf("faults against a healthy server: %+v", v)
			}
			if res.PublishLatencyMs.P50 <= 0 || res.E2ELatencyMs.P50 <= 0 {
				t.Fatalf("no latencies measured: %+v %+v", res.PublishLatencyMs, res.E2ELatencyMs)
			}
		})
	}
}
