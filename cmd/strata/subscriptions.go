package main

import (
	"bufio"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
	"github.com/strata-mq/strata/internal/errcode"
)

func newSubscriptionsCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "Create, list, reset, peek at and delete subscriptions",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(subsCreateCmd(&url), subsListCmd(&url), subsResetCmd(&url), subsClearBacklogCmd(&url), subsPeekCmd(&url), subsDeleteCmd(&url))
	return cmd
}

// subFlags adds the required --topic and --subscription flags.
func subFlags(cmd *cobra.Command, topicName, sub *string) {
	cmd.Flags().StringVar(topicName, "topic", "", "topic: tenant/namespace/name, or a bare name in public/default")
	cmd.Flags().StringVar(sub, "subscription", "", "subscription name")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("subscription")
}

func subsCreateCmd(url *string) *cobra.Command {
	var topicName, sub, position string
	cmd := &cobra.Command{
		Use:   "create --topic T --subscription S [--position latest|earliest]",
		Short: "Create a durable subscription without a consumer, so that the topic keeps its messages for it",
		Long: `Create a durable subscription (on every partition) that starts after the last
message (--position latest, the default) or at the oldest one retained
(earliest). From then on every message it has not acknowledged is kept,
whether or not a consumer is attached: create the subscriptions of a
pipeline before its producers start. The first consumer to attach chooses
the subscription's type. An existing subscription is left as it is (exit 1).`,
		Args: cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			pos, err := parsePosition(position)
			if err != nil {
				return err
			}
			if err := a.CreateSubscription(cmd.Context(), topicName, sub, pos); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created subscription %s on %s at %s\n", sub, topicName, pos)
			return nil
		}),
	}
	subFlags(cmd, &topicName, &sub)
	cmd.Flags().StringVar(&position, "position", "latest", "where the subscription starts: latest or earliest")
	return cmd
}

func subsListCmd(url *string) *cobra.Command {
	var topicName string
	cmd := &cobra.Command{
		Use:   "list --topic T",
		Short: "List a topic's subscriptions with their type, consumers and backlog (summed over partitions; the age of the oldest unacknowledged message)",
		Args:  cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			parts, err := a.PartitionNames(cmd.Context(), topicName)
			if err != nil {
				return err
			}
			var order []string
			subs := map[string]*client.SubscriptionStats{}
			for _, p := range parts {
				st, err := a.TopicStats(cmd.Context(), p)
				if err != nil {
					return err
				}
				for _, s := range st.Subscriptions {
					sum := subs[s.Name]
					if sum == nil {
						sum = &client.SubscriptionStats{Name: s.Name, Type: s.Type}
						subs[s.Name] = sum
						order = append(order, s.Name)
					}
					sum.Consumers += s.Consumers
					sum.Backlog += s.Backlog
					sum.BacklogBytes += s.BacklogBytes
					sum.Unacked += s.Unacked
					sum.Delayed += s.Delayed
					if !s.OldestUnacked.IsZero() && (sum.OldestUnacked.IsZero() || s.OldestUnacked.Before(sum.OldestUnacked)) {
						sum.OldestUnacked = s.OldestUnacked
					}
				}
			}
			slices.Sort(order)
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SUBSCRIPTION\tTYPE\tCONSUMERS\tBACKLOG\tBACKLOG BYTES\tBACKLOG AGE\tUNACKED\tDELAYED")
			for _, name := range order {
				s := subs[name]
				age := "-"
				if !s.OldestUnacked.IsZero() {
					age = max(0, time.Since(s.OldestUnacked)).Round(time.Second).String()
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\n", s.Name, s.Type, s.Consumers, s.Backlog, s.BacklogBytes, age, s.Unacked, s.Delayed)
			}
			return w.Flush()
		}),
	}
	cmd.Flags().StringVar(&topicName, "topic", "", "topic")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func subsClearBacklogCmd(url *string) *cobra.Command {
	var topicName, sub string
	cmd := &cobra.Command{
		Use:   "clear-backlog --topic T --subscription S",
		Short: "Acknowledge every message of a subscription's backlog: move it after the last message (on every partition)",
		Long: `Move the subscription, on every partition, after the last message written:
its whole backlog is acknowledged and dropped for it (Pulsar's
clear-backlog), and its consumers receive only what is published from then
on. Unlike reset, this applies at once. To look first, use
"reset --to latest" without --execute, or "peek".`,
		Args: cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			target := client.CursorTarget{Latest: true}
			res, err := a.ResetCursor(cmd.Context(), topicName, sub, target, true)
			if err != nil {
				return err
			}
			return printReset(cmd, target, res, true)
		}),
	}
	subFlags(cmd, &topicName, &sub)
	return cmd
}

func subsResetCmd(url *string) *cobra.Command {
	var topicName, sub, at, id, to string
	var execute bool
	partition := -1
	cmd := &cobra.Command{
		Use:   "reset --topic T --subscription S (--time TIME | --message-id L:E:B [--partition N] | --to earliest|latest) [--execute]",
		Short: "Move a subscription to a time, a message id, the earliest or the latest message (prints the plan; applies it with --execute)",
		Long: `Resolve, for every partition, the position of the first message published at
or after --time (RFC 3339 like 2026-01-02T15:04:05Z, or relative like -2h,
-30m, -1d), of --message-id, of the oldest message retained (--to
earliest) or after the last one (--to latest: the backlog is acknowledged),
and print it. Only with --execute is the subscription moved there; its
consumers are then disconnected, drop what they had buffered, and subscribe
again at the new position. A message id of a partitioned topic moves only
its own partition, named with --partition. An id whose ledger is not the
topic's is refused (INVALID_ARGUMENT); one older than every retained
ledger means the oldest message retained.`,
		Args: cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			var target client.CursorTarget
			given := 0
			for _, v := range []string{at, id, to} {
				if v != "" {
					given++
				}
			}
			switch {
			case given != 1:
				return fmt.Errorf("give exactly one of --time, --message-id and --to")
			case to == "earliest":
				target.Earliest = true
			case to == "latest":
				target.Latest = true
			case to != "":
				return fmt.Errorf("--to %q: want earliest or latest", to)
			case at != "":
				t, err := client.ParseTime(at, time.Now())
				if err != nil {
					return err
				}
				target.Time = t
			default:
				mid, err := client.ParseMessageID(id)
				if err != nil {
					return err
				}
				parts, err := a.PartitionNames(cmd.Context(), topicName)
				if err != nil {
					return err
				}
				switch {
				case partition < 0 && len(parts) > 1:
					return errcode.New(errcode.InvalidArgument, "topic %s has %d partitions: say with --partition which one message id %s is of", topicName, len(parts), id)
				case partition >= len(parts):
					return errcode.New(errcode.InvalidArgument, "--partition %d: topic %s has %d", partition, topicName, len(parts))
				case partition > 0:
					mid.Partition = int32(partition)
				}
				target.ID = &mid
			}
			if partition >= 0 && target.ID == nil {
				return errcode.New(errcode.InvalidArgument, "--partition goes with --message-id (a time or an edge moves every partition)")
			}
			res, err := a.ResetCursor(cmd.Context(), topicName, sub, target, execute)
			if err != nil {
				return err
			}
			return printReset(cmd, target, res, execute)
		}),
	}
	subFlags(cmd, &topicName, &sub)
	f := cmd.Flags()
	f.StringVar(&at, "time", "", "RFC 3339 time, or relative to now: -2h, -30m, -1d")
	f.StringVar(&id, "message-id", "", "message id ledger:entry:batch")
	f.IntVar(&partition, "partition", -1, "the partition --message-id is of (required on a partitioned topic)")
	f.StringVar(&to, "to", "", "earliest (the oldest message retained) or latest (after the last message)")
	f.BoolVar(&execute, "execute", false, "apply the reset (without it, only print the resolved positions)")
	return cmd
}

func printReset(cmd *cobra.Command, target client.CursorTarget, res []client.ResetResult, execute bool) error {
	out := cmd.OutOrStdout()
	if !target.Time.IsZero() {
		fmt.Fprintf(out, "time %s\n", target.Time.UTC().Format(client.JSONTimeFormat))
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPOSITION")
	for _, r := range res {
		pos := r.Position.String()
		if r.EndOfTopic {
			pos = "end of topic"
		}
		fmt.Fprintf(w, "%s\t%s\n", r.Topic, pos)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if execute {
		fmt.Fprintln(out, "subscription reset")
	} else {
		fmt.Fprintln(out, "dry run: nothing changed (add --execute to apply)")
	}
	return nil
}

func subsPeekCmd(url *string) *cobra.Command {
	var topicName, sub, output string
	var count int
	cmd := &cobra.Command{
		Use:   "peek --topic T --subscription S [--count N] [--output text|jsonl]",
		Short: "Print the first messages of a subscription's backlog without consuming them",
		Args:  cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			out := bufio.NewWriter(cmd.OutOrStdout())
			emit, err := newPrinter(out, output)
			if err != nil {
				return err
			}
			msgs, err := a.Peek(cmd.Context(), topicName, sub, count)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if err := emit(m); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d messages from the backlog of %s on %s\n", len(msgs), sub, topicName)
			return nil
		}),
	}
	subFlags(cmd, &topicName, &sub)
	cmd.Flags().IntVar(&count, "count", 10, "at most this many messages")
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or jsonl")
	return cmd
}

func subsDeleteCmd(url *string) *cobra.Command {
	var topicName, sub string
	cmd := &cobra.Command{
		Use:   "delete --topic T --subscription S",
		Short: "Delete a subscription (on every partition)",
		Args:  cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			if err := a.DeleteSubscription(cmd.Context(), topicName, sub); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted subscription %s on %s\n", sub, topicName)
			return nil
		}),
	}
	subFlags(cmd, &topicName, &sub)
	return cmd
}
