package main

import (
	"bufio"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func newSubscriptionsCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "Reset or delete subscriptions",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(subsResetCmd(&url), subsPeekCmd(&url), subsDeleteCmd(&url))
	return cmd
}

func subsResetCmd(url *string) *cobra.Command {
	var topicName, sub, at, id string
	var execute bool
	cmd := &cobra.Command{
		Use:   "reset --topic T --subscription S (--time TIME | --message-id L:E:B) [--execute]",
		Short: "Move a subscription to a time or message id (prints the plan; applies it with --execute)",
		Long: `Resolve, for every partition, the position of the first message published at
or after --time (RFC 3339 like 2026-01-02T15:04:05Z, or relative like -2h,
-30m, -1d), or of --message-id, and print it. Only with --execute is the
subscription moved there. Stop the subscription's consumers first.`,
		Args: cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			var target client.CursorTarget
			switch {
			case (at == "") == (id == ""):
				return fmt.Errorf("give exactly one of --time and --message-id")
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
				target.ID = &mid
			}
			res, err := a.ResetCursor(cmd.Context(), topicName, sub, target, execute)
			if err != nil {
				return err
			}
			return printReset(cmd, target, res, execute)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&topicName, "topic", "", "topic: tenant/namespace/name, or a bare name in public/default")
	f.StringVar(&sub, "subscription", "", "subscription name")
	f.StringVar(&at, "time", "", "RFC 3339 time, or relative to now: -2h, -30m, -1d")
	f.StringVar(&id, "message-id", "", "message id ledger:entry:batch (partition 0 of a partitioned topic)")
	f.BoolVar(&execute, "execute", false, "apply the reset (without it, only print the resolved positions)")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("subscription")
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
	cmd.Flags().StringVar(&topicName, "topic", "", "topic")
	cmd.Flags().StringVar(&sub, "subscription", "", "subscription name")
	cmd.Flags().IntVar(&count, "count", 10, "at most this many messages")
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or jsonl")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("subscription")
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
	cmd.Flags().StringVar(&topicName, "topic", "", "topic")
	cmd.Flags().StringVar(&sub, "subscription", "", "subscription name")
	_ = cmd.MarkFlagRequired("topic")
	_ = cmd.MarkFlagRequired("subscription")
	return cmd
}
