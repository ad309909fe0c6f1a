package ledger

import (
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-mq/strata/bookie/bookiepb"
	"github.com/strata-mq/strata/internal/ids"
)

// ClientConfig configures a Client. Zero fields take the documented default.
type ClientConfig struct {
	// AddTimeout: an add a bookie has not answered for this long fails that
	// bookie (and starts an ensemble change). Default 5s.
	AddTimeout time.Duration
	// RequestTimeout bounds one read, fence, ReadLAC or delete call to a
	// bookie, and a recovery add. Default 5s.
	RequestTimeout time.Duration
	// MetaTimeout bounds one metadata operation. Default 5s.
	MetaTimeout time.Duration
	// RetryInterval: pause before retrying an ensemble change that found no
	// replacement bookie, or a metadata operation that failed. Default 500ms.
	RetryInterval time.Duration
	// TickInterval: how often the writer and recovery see the clock (their
	// timeouts are checked this often). Default 50ms.
	TickInterval time.Duration
	// MaxInFlight: appends per writer not completed yet; Append blocks
	// beyond it. Default 10000.
	MaxInFlight int
	// MaxEntryBytes: the largest payload an Append takes. Default 5 MiB +
	// 64 KiB (a maximum message plus its batch framing).
	MaxEntryBytes int
	// MaxReadEntries: the most entries one Read returns. Default 10000.
	MaxReadEntries int
	// MaxReadBytes: a Read stops after this many payload bytes (at least one
	// entry is returned). Default 64 MiB.
	MaxReadBytes int
	// RecoveryWindow: entries a recovery reads ahead in parallel. Default 64.
	RecoveryWindow int
	// TLS, when set, dials the bookies over TLS with it (bookies started
	// with --tls-cert-file); ignored with DialOptions.
	TLS *tls.Config
	// DialOptions are used to dial bookies. Default: insecure transport (TLS
	// with TLS set) and message limits that fit MaxReadBytes and
	// MaxEntryBytes.
	DialOptions []grpc.DialOption
	// Local maps the addresses of bookies in this process to clients that
	// call them directly (bookie.LocalClient), bypassing gRPC.
	Local map[string]bookiepb.BookieClient
}

// Defaults of ClientConfig.
const (
	DefaultAddTimeout     = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultMetaTimeout    = 5 * time.Second
	DefaultRetryInterval  = 500 * time.Millisecond
	DefaultTickInterval   = 50 * time.Millisecond
	DefaultMaxInFlight    = 10000
	DefaultMaxEntryBytes  = 5<<20 + 64<<10
	DefaultMaxReadEntries = 10000
	DefaultMaxReadBytes   = 64 << 20
	DefaultRecoveryWindow = 64
)

// withDefaults returns c with zero fields set to their defaults.
func (c ClientConfig) withDefaults() ClientConfig {
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur(&c.AddTimeout, DefaultAddTimeout)
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	setDur(&c.MetaTimeout, DefaultMetaTimeout)
	setDur(&c.RetryInterval, DefaultRetryInterval)
	setDur(&c.TickInterval, DefaultTickInterval)
	setInt(&c.MaxInFlight, DefaultMaxInFlight)
	setInt(&c.MaxEntryBytes, DefaultMaxEntryBytes)
	setInt(&c.MaxReadEntries, DefaultMaxReadEntries)
	setInt(&c.MaxReadBytes, DefaultMaxReadBytes)
	setInt(&c.RecoveryWindow, DefaultRecoveryWindow)
	return c
}

// Validate reports a negative duration or limit (zero means the default).
func (c ClientConfig) Validate() error {
	for name, d := range map[string]time.Duration{
		"AddTimeout": c.AddTimeout, "RequestTimeout": c.RequestTimeout, "MetaTimeout": c.MetaTimeout,
		"RetryInterval": c.RetryInterval, "TickInterval": c.TickInterval,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidArgument, name, d)
		}
	}
	for name, n := range map[string]int{
		"MaxInFlight": c.MaxInFlight, "MaxEntryBytes": c.MaxEntryBytes,
		"MaxReadEntries": c.MaxReadEntries, "MaxReadBytes": c.MaxReadBytes, "RecoveryWindow": c.RecoveryWindow,
	} {
		if n < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalidArgument, name, n)
		}
	}
	return nil
}

// CreateOptions are the quorums and labels of a new ledger. Zero quorums
// take ClusterOptions' values.
type CreateOptions struct {
	Ensemble    int // E: bookies the ledger is striped over
	WriteQuorum int // Qw: copies of each entry
	AckQuorum   int // Qa: acks before an add succeeds
	// Topic is recorded in the metadata for operators.
	Topic      string
	Properties map[string]string
	// After, when set, is the topic's newest ledger: the new ledger's id
	// is greater, so that message ids (ledger, entry) grow along a topic
	// whose owner changed, as Pulsar's do.
	After ids.LedgerID
}

// StandaloneOptions are the quorums of a one-bookie deployment: E=Qw=Qa=1.
func StandaloneOptions() CreateOptions {
	return CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1}
}

// ClusterOptions are the default quorums of a cluster: E=3, Qw=3, Qa=2.
func ClusterOptions() CreateOptions { return CreateOptions{Ensemble: 3, WriteQuorum: 3, AckQuorum: 2} }

// withDefaults fills zero quorums from ClusterOptions.
func (o CreateOptions) withDefaults() CreateOptions {
	if o.Ensemble == 0 && o.WriteQuorum == 0 && o.AckQuorum == 0 {
		d := ClusterOptions()
		o.Ensemble, o.WriteQuorum, o.AckQuorum = d.Ensemble, d.WriteQuorum, d.AckQuorum
	}
	return o
}

// Validate checks E ≥ Qw ≥ Qa ≥ 1 (and E ≤ 64).
func (o CreateOptions) Validate() error {
	if o.AckQuorum < 1 || o.WriteQuorum < o.AckQuorum || o.Ensemble < o.WriteQuorum || o.Ensemble > 64 {
		return fmt.Errorf("%w: quorums E=%d Qw=%d Qa=%d (need 64 ≥ E ≥ Qw ≥ Qa ≥ 1)",
			ErrInvalidArgument, o.Ensemble, o.WriteQuorum, o.AckQuorum)
	}
	return nil
}
