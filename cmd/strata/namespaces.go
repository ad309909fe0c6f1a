package main

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mq/strata/client"
)

func newNamespacesCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "namespaces",
		Short: "List and delete namespaces; get and set their policies (retention, TTL, offload, replication, backlog quota, dispatch rate) and permissions",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(nsListCmd(&url), nsSetPolicyCmd(&url), nsGetPolicyCmd(&url), nsDeleteCmd(&url),
		grantCmd(&url, nsScope), revokeCmd(&url, nsScope), permissionsCmd(&url, nsScope))
	return cmd
}

// policyFlags are the set-policy flags, kept as text to accept units.
type policyFlags struct {
	offloadThreshold, offloadAge, offloadDeletionLag string
	retention, ttl, maxMessageSize                   string
	backlogQuota, backlogQuotaPolicy                 string
	dispatchRateBytes, compactionThreshold           string
	dispatchRateMsgs, publishRateMsgs                int64
	publishRateBytes                                 string
	ensemble, writeQuorum, ackQuorum                 int
	schemaCompatibility                              string
	schemaEnforced, schemaAutoUpdate                 bool
}

func nsSetPolicyCmd(url *string) *cobra.Command {
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "set-policy TENANT/NAMESPACE [flags]",
		Short: "Change a namespace's policy (only the flags given change)",
		Long: `Change a namespace's policy: the flags given replace those fields of the
current policy (of a new namespace: every field 0 except the offload triggers,
which start at -1, never). Sizes take units (512, 64KiB, 1MB, 2GiB: all
powers of 1024); durations take ns, us, ms, s, m, h, d and w (90s, 7d, 1w);
-1 means never (offload) or forever (retention). Prints the new policy.`,
		Example: `  strata namespaces set-policy public/default --offload-threshold 0 --offload-age 0 --retention 7d`,
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			pol, err := a.GetNamespacePolicy(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNamespaceNotFound) {
				pol, err = client.NamespacePolicy{OffloadThresholdBytes: -1, OffloadAge: client.Forever}, nil
			}
			if err != nil {
				return err
			}
			if err := pf.apply(cmd, &pol); err != nil {
				return err
			}
			if err := a.SetNamespacePolicy(cmd.Context(), args[0], pol); err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), policyView(pol))
		}),
	}
	pf.register(cmd.Flags())
	f := cmd.Flags()
	f.IntVar(&pf.ensemble, "ensemble", 0, "bookies a ledger is striped over (0: cluster default)")
	f.IntVar(&pf.writeQuorum, "write-quorum", 0, "copies of each entry (0: cluster default)")
	f.IntVar(&pf.ackQuorum, "ack-quorum", 0, "acknowledgements before an entry is durable (0: cluster default)")
	f.StringVar(&pf.schemaCompatibility, "schema-compatibility", "", "how a topic's new schema version must relate to earlier ones: "+strings.Join(client.SchemaStrategies, ", "))
	f.BoolVar(&pf.schemaEnforced, "schema-validation-enforced", false, "refuse producers without a schema on topics that have one")
	f.BoolVar(&pf.schemaAutoUpdate, "schema-auto-update", true, "let producers add schema versions (false: only strata schemas upload may)")
	return cmd
}

// register adds the flags of the policy fields a topic may override too.
func (pf *policyFlags) register(f *pflag.FlagSet) {
	f.StringVar(&pf.offloadThreshold, "offload-threshold", "", "offload closed ledgers once a topic's bookie bytes exceed this (0: at once, -1: never on size)")
	f.StringVar(&pf.offloadAge, "offload-age", "", "offload closed ledgers this old (0: at once, -1: never on age)")
	f.StringVar(&pf.offloadDeletionLag, "offload-deletion-lag", "", "delete an offloaded ledger from the bookies this long after its offload")
	f.StringVar(&pf.retention, "retention", "", "keep consumed data this long (0: delete once consumed, -1: forever)")
	f.StringVar(&pf.ttl, "ttl", "", "acknowledge messages older than this on every subscription (0: off)")
	f.StringVar(&pf.maxMessageSize, "max-message-size", "", "largest message accepted, in bytes")
	f.StringVar(&pf.backlogQuota, "backlog-quota", "", "most bytes one subscription's backlog may hold (0 or -1: no quota)")
	f.StringVar(&pf.backlogQuotaPolicy, "backlog-quota-policy", "", "past the quota: producer_exception (sends fail) or consumer_backlog_eviction (oldest backlog skipped)")
	f.Int64Var(&pf.dispatchRateMsgs, "dispatch-rate", 0, "most messages per second sent to each subscription of a topic (0 or -1: no bound)")
	f.StringVar(&pf.dispatchRateBytes, "dispatch-rate-bytes", "", "most bytes per second sent to each subscription of a topic, e.g. 10MiB (0 or -1: no bound)")
	f.Int64Var(&pf.publishRateMsgs, "publish-rate", 0, "most messages per second a topic takes from its producers, who wait past it (0 or -1: no bound)")
	f.StringVar(&pf.publishRateBytes, "publish-rate-bytes", "", "most bytes per second a topic takes from its producers, e.g. 10MiB (0 or -1: no bound)")
	f.StringVar(&pf.compactionThreshold, "compaction-threshold", "", "compact a topic once its ledgers after the last compaction hold this much, e.g. 100MiB (0 or -1: only when asked)")
}

// apply sets the fields of p whose flags were given.
func (pf *policyFlags) apply(cmd *cobra.Command, p *client.NamespacePolicy) error {
	set := cmd.Flags().Changed
	var err error
	if set("offload-threshold") {
		if p.OffloadThresholdBytes, err = parseBytes(pf.offloadThreshold); err != nil {
			return fmt.Errorf("--offload-threshold: %w", err)
		}
	}
	durations := []struct {
		flag string
		val  string
		dst  *time.Duration
	}{
		{"offload-age", pf.offloadAge, &p.OffloadAge}, {"offload-deletion-lag", pf.offloadDeletionLag, &p.OffloadDeletionLag},
		{"retention", pf.retention, &p.Retention}, {"ttl", pf.ttl, &p.TTL},
	}
	for _, d := range durations {
		if !set(d.flag) {
			continue
		}
		if *d.dst, err = parsePolicyDuration(d.val); err != nil {
			return fmt.Errorf("--%s: %w", d.flag, err)
		}
	}
	if set("max-message-size") {
		n, err := parseBytes(pf.maxMessageSize)
		if err != nil || n < 0 {
			return fmt.Errorf("--max-message-size %q: want a positive size", pf.maxMessageSize)
		}
		p.MaxMessageBytes = uint64(n)
	}
	if set("backlog-quota") {
		n, err := parseBytes(pf.backlogQuota)
		if err != nil {
			return fmt.Errorf("--backlog-quota: %w", err)
		}
		p.BacklogQuotaBytes = max(0, n)
	}
	if set("backlog-quota-policy") {
		p.BacklogQuotaPolicy = client.BacklogQuotaPolicy(pf.backlogQuotaPolicy)
	}
	if set("dispatch-rate") {
		p.DispatchRateMsgs = max(0, pf.dispatchRateMsgs)
	}
	if set("dispatch-rate-bytes") {
		n, err := parseBytes(pf.dispatchRateBytes)
		if err != nil {
			return fmt.Errorf("--dispatch-rate-bytes: %w", err)
		}
		p.DispatchRateBytes = max(0, n)
	}
	if set("publish-rate") {
		p.PublishRateMsgs = max(0, pf.publishRateMsgs)
	}
	if set("publish-rate-bytes") {
		n, err := parseBytes(pf.publishRateBytes)
		if err != nil {
			return fmt.Errorf("--publish-rate-bytes: %w", err)
		}
		p.PublishRateBytes = max(0, n)
	}
	if set("compaction-threshold") {
		n, err := parseBytes(pf.compactionThreshold)
		if err != nil {
			return fmt.Errorf("--compaction-threshold: %w", err)
		}
		p.CompactionThresholdBytes = max(0, n)
	}
	if set("schema-compatibility") {
		p.SchemaCompatibility = strings.ToUpper(pf.schemaCompatibility)
	}
	if set("schema-validation-enforced") {
		p.SchemaValidationEnforced = pf.schemaEnforced
	}
	if set("schema-auto-update") {
		p.SchemaAutoUpdateDisabled = !pf.schemaAutoUpdate
	}
	if set("ensemble") {
		p.Ensemble = pf.ensemble
	}
	if set("write-quorum") {
		p.WriteQuorum = pf.writeQuorum
	}
	if set("ack-quorum") {
		p.AckQuorum = pf.ackQuorum
	}
	return nil
}

// parsePolicyDuration accepts -1 (or "forever"/"never") and ParseDuration.
func parsePolicyDuration(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "-1", "forever", "never", "infinite":
		return client.Forever, nil
	}
	return client.ParseDuration(strings.TrimSpace(s))
}

// parseBytes parses a size: -1, or digits with an optional unit (B, K/KB/KiB,
// M/MB/MiB, G/GB/GiB, T/TB/TiB; all powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return -1, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (64KiB, 1GB)", s)
	}
	var shift uint
	switch strings.ToLower(s[i:]) {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	case "t", "tb", "tib":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q", s, s[i:])
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n << shift, nil
}

// policyJSON is how policies are printed: durations as text.
type policyJSON struct {
	Ensemble              int    `json:"ensemble"`
	WriteQuorum           int    `json:"write_quorum"`
	AckQuorum             int    `json:"ack_quorum"`
	Retention             string `json:"retention"`
	TTL                   string `json:"ttl"`
	MaxMessageBytes       uint64 `json:"max_message_bytes"`
	OffloadThresholdBytes int64  `json:"offload_threshold_bytes"`
	OffloadAge            string `json:"offload_age"`
	OffloadDeletionLag    string `json:"offload_deletion_lag"`
	BacklogQuotaBytes     int64  `json:"backlog_quota_bytes"`
	BacklogQuotaPolicy    string `json:"backlog_quota_policy"`
	DispatchRateMsgs      int64  `json:"dispatch_rate_msgs"`
	PublishRateMsgs       int64  `json:"publish_rate_msgs"`
	PublishRateBytes      int64  `json:"publish_rate_bytes"`
	DispatchRateBytes     int64  `json:"dispatch_rate_bytes"`
	CompactionThreshold   int64  `json:"compaction_threshold_bytes"`
	SchemaCompatibility   string `json:"schema_compatibility"`
	SchemaEnforced        bool   `json:"schema_validation_enforced"`
	SchemaAutoUpdate      bool   `json:"schema_auto_update"`
}

func policyView(p client.NamespacePolicy) policyJSON {
	return policyJSON{
		Ensemble: p.Ensemble, WriteQuorum: p.WriteQuorum, AckQuorum: p.AckQuorum,
		Retention: formatDuration(p.Retention), TTL: formatDuration(p.TTL), MaxMessageBytes: p.MaxMessageBytes,
		OffloadThresholdBytes: p.OffloadThresholdBytes, OffloadAge: formatDuration(p.OffloadAge),
		OffloadDeletionLag: formatDuration(p.OffloadDeletionLag),
		BacklogQuotaBytes:  p.BacklogQuotaBytes, BacklogQuotaPolicy: string(p.BacklogQuotaPolicy),
		DispatchRateMsgs: p.DispatchRateMsgs, DispatchRateBytes: p.DispatchRateBytes,
		PublishRateMsgs: p.PublishRateMsgs, PublishRateBytes: p.PublishRateBytes,
		CompactionThreshold: p.CompactionThresholdBytes,
		SchemaCompatibility: cmp.Or(p.SchemaCompatibility, "FULL"), SchemaEnforced: p.SchemaValidationEnforced,
		SchemaAutoUpdate: !p.SchemaAutoUpdateDisabled,
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-1"
	case d == 0:
		return "0"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func nsListCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list [TENANT]",
		Short: "List the namespaces that have a policy or a topic (of one tenant, or all)",
		Args:  cobra.MaximumNArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			tenant := ""
			if len(args) == 1 {
				tenant = args[0]
			}
			ns, err := a.ListNamespaces(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			for _, n := range ns {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		}),
	}
}

func nsDeleteCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TENANT/NAMESPACE",
		Short: "Delete a namespace without topics (its policy)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.DeleteNamespace(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "deleted namespace %s\n", args[0])
			return nil
		}),
	}
}

func nsGetPolicyCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "get-policy TENANT/NAMESPACE",
		Short: "Print a namespace's policy as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			pol, err := a.GetNamespacePolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), policyView(pol))
		}),
	}
}
