package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func topicsSetPolicyCmd(url *string) *cobra.Command {
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "set-policy TOPIC [flags]",
		Short: "Override part of the namespace's policy for one topic (only the flags given change)",
		Long: `Override part of the namespace's policy for one topic (a partitioned topic's
applies to every partition), as Pulsar's topic policies and Kafka's topic
configs: the flags given replace those fields of the topic's own policy, and
the fields it does not set keep the namespace's values. Values as for
namespaces set-policy. The node serving the topic applies it within a moment.
Prints the topic's own policy and the one it runs with.`,
		Example: `  strata topics set-policy orders --retention 7d --max-message-size 1MiB`,
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			own, _, err := a.GetTopicPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var given client.NamespacePolicy
			if err := pf.apply(cmd, &given); err != nil {
				return err
			}
			pf.override(cmd, given, &own)
			if err := a.SetTopicPolicy(cmd.Context(), args[0], own); err != nil {
				return err
			}
			return printTopicPolicy(cmd, a, args[0])
		}),
	}
	pf.register(cmd.Flags())
	return cmd
}

func topicsGetPolicyCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "get-policy TOPIC",
		Short: "Print a topic's own policy and the one it runs with, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			return printTopicPolicy(cmd, a, args[0])
		}),
	}
}

func topicsRemovePolicyCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-policy TOPIC",
		Short: "Remove a topic's own policy: its namespace's applies again",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.RemoveTopicPolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			return printTopicPolicy(cmd, a, args[0])
		}),
	}
}

// override copies into own the fields of given whose flags were set.
func (pf *policyFlags) override(cmd *cobra.Command, given client.NamespacePolicy, own *client.TopicPolicy) {
	set := cmd.Flags().Changed
	dur := func(flag string, v time.Duration, dst **time.Duration) {
		if set(flag) {
			*dst = &v
		}
	}
	i64 := func(flag string, v int64, dst **int64) {
		if set(flag) {
			*dst = &v
		}
	}
	dur("retention", given.Retention, &own.Retention)
	dur("ttl", given.TTL, &own.TTL)
	dur("offload-age", given.OffloadAge, &own.OffloadAge)
	dur("offload-deletion-lag", given.OffloadDeletionLag, &own.OffloadDeletionLag)
	i64("offload-threshold", given.OffloadThresholdBytes, &own.OffloadThresholdBytes)
	i64("backlog-quota", given.BacklogQuotaBytes, &own.BacklogQuotaBytes)
	i64("dispatch-rate", given.DispatchRateMsgs, &own.DispatchRateMsgs)
	i64("dispatch-rate-bytes", given.DispatchRateBytes, &own.DispatchRateBytes)
	i64("publish-rate", given.PublishRateMsgs, &own.PublishRateMsgs)
	i64("publish-rate-bytes", given.PublishRateBytes, &own.PublishRateBytes)
	i64("compaction-threshold", given.CompactionThresholdBytes, &own.CompactionThresholdBytes)
	if set("max-message-size") {
		v := given.MaxMessageBytes
		own.MaxMessageBytes = &v
	}
	if set("backlog-quota-policy") {
		v := given.BacklogQuotaPolicy
		own.BacklogQuotaPolicy = &v
	}
}

// printTopicPolicy prints topic's own policy (only the fields it sets)
// and the policy it runs with.
func printTopicPolicy(cmd *cobra.Command, a *client.Admin, topicName string) error {
	own, eff, err := a.GetTopicPolicy(cmd.Context(), topicName)
	if err != nil {
		return err
	}
	view := map[string]any{}
	durs := map[string]*time.Duration{"retention": own.Retention, "ttl": own.TTL, "offload_age": own.OffloadAge,
		"offload_deletion_lag": own.OffloadDeletionLag}
	for k, d := range durs {
		if d != nil {
			view[k] = formatDuration(*d)
		}
	}
	ints := map[string]*int64{"offload_threshold_bytes": own.OffloadThresholdBytes, "backlog_quota_bytes": own.BacklogQuotaBytes,
		"dispatch_rate_msgs": own.DispatchRateMsgs, "dispatch_rate_bytes": own.DispatchRateBytes,
		"publish_rate_msgs": own.PublishRateMsgs, "publish_rate_bytes": own.PublishRateBytes,
		"compaction_threshold_bytes": own.CompactionThresholdBytes}
	for k, v := range ints {
		if v != nil {
			view[k] = *v
		}
	}
	if own.MaxMessageBytes != nil {
		view["max_message_bytes"] = *own.MaxMessageBytes
	}
	if own.BacklogQuotaPolicy != nil {
		view["backlog_quota_policy"] = string(*own.BacklogQuotaPolicy)
	}
	return writeJSON(cmd.OutOrStdout(), map[string]any{"policy": view, "effective": policyView(eff)})
}
