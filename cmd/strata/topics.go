package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func newTopicsCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Create, list, delete and inspect topics",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(topicsCreateCmd(&url), topicsUpdateCmd(&url), topicsListCmd(&url), topicsDeleteCmd(&url), topicsStatsCmd(&url), topicsOffloadCmd(&url),
		topicsSetPolicyCmd(&url), topicsGetPolicyCmd(&url), topicsRemovePolicyCmd(&url), topicsCompactCmd(&url), topicsUnloadCmd(&url), topicsTerminateCmd(&url),
		grantCmd(&url, topicScope), revokeCmd(&url, topicScope), permissionsCmd(&url, topicScope))
	return cmd
}

// withAdmin is the RunE of a command that talks to the admin API of the
// cluster at *url: run gets a client's Admin, closed when it returns.
func withAdmin(url *string, run func(cmd *cobra.Command, a *client.Admin, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newClient(cmd, *url)
		if err != nil {
			return err
		}
		defer c.Close()
		return run(cmd, c.Admin(), args)
	}
}

func topicsCreateCmd(url *string) *cobra.Command {
	var partitions int
	cmd := &cobra.Command{
		Use:   "create TOPIC",
		Short: "Create a topic (--partitions N for a partitioned topic)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.CreateTopic(cmd.Context(), args[0], partitions); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s (%d partitions)\n", args[0], partitions)
			return nil
		}),
	}
	cmd.Flags().IntVar(&partitions, "partitions", 0, "number of partitions (0: not partitioned)")
	return cmd
}

func topicsUpdateCmd(url *string) *cobra.Command {
	var partitions int
	cmd := &cobra.Command{
		Use:   "update TOPIC --partitions N",
		Short: "Add partitions to a partitioned topic (only increases; subscriptions follow)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.AddPartitions(cmd.Context(), args[0], partitions); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s now has %d partitions\n", args[0], partitions)
			return nil
		}),
	}
	cmd.Flags().IntVar(&partitions, "partitions", 0, "the new number of partitions, above the current one")
	_ = cmd.MarkFlagRequired("partitions")
	return cmd
}

func topicsListCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list [TENANT/NAMESPACE]",
		Short: "List topics (of one namespace, or all)",
		Args:  cobra.MaximumNArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			ns := ""
			if len(args) == 1 {
				ns = args[0]
			}
			topics, err := a.ListTopics(cmd.Context(), ns)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tPARTITIONS")
			for _, t := range topics {
				fmt.Fprintf(w, "%s\t%d\n", t.Topic, t.Partitions)
			}
			return w.Flush()
		}),
	}
}

func topicsDeleteCmd(url *string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Delete a topic and all its partitions",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.DeleteTopic(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even when subscriptions have a backlog")
	return cmd
}

func topicsStatsCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "stats TOPIC",
		Short: "Print a topic's statistics as JSON (one object per partition)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			names, err := a.PartitionNames(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var all []*client.TopicStats
			for _, n := range names {
				st, err := a.TopicStats(cmd.Context(), n)
				if err != nil {
					return err
				}
				all = append(all, st)
			}
			if len(all) == 1 {
				return writeJSON(cmd.OutOrStdout(), all[0])
			}
			return writeJSON(cmd.OutOrStdout(), all)
		}),
	}
}

func topicsOffloadCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "offload TOPIC",
		Short: "Offload every closed ledger of a topic to the object store now",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			names, err := a.PartitionNames(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, name := range names {
				n, err := a.TriggerOffload(cmd.Context(), name)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "offloaded %d ledgers of %s\n", n, name)
			}
			return nil
		}),
	}
}

func topicsCompactCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "compact TOPIC",
		Short: "Compact a topic now: keep the latest message of each key (tombstones remove keys)",
		Long: `Compact a topic now (every partition), as Pulsar's compact and Kafka's log
compaction: the owner keeps the latest message of each key up to the last one
published, in a ledger that outlives the ledgers retention deletes. A message
with an empty payload removes its key; keyless messages are left out. Readers
that ask for it (client.ReaderReadCompacted, table views) read it first.`,
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			cs, err := a.CompactTopic(cmd.Context(), args[0])
			for _, c := range cs {
				horizon := "none"
				if c.Horizon != nil {
					horizon = c.Horizon.String()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "partition %d: %d messages kept, up to %s\n", c.Partition, c.Messages, horizon)
			}
			return err
		}),
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func topicsUnloadCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "unload TOPIC",
		Short: "Unload a topic from its owner gracefully; its clients reconnect to the node the placement picks",
		Long: `Unload a topic (every partition) from its owner, as Pulsar's topics unload:
cursors are flushed, the ledger closed and ownership released; producers and
consumers reconnect on their own, resending what was not acknowledged, to the
node the placement picks (which may be the same one). Nodes also unload, a
few at a time, the topics that belong on a node that joined or came back
(--rebalance-interval).`,
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.UnloadTopic(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "unloaded %s\n", args[0])
			return nil
		}),
	}
}

func topicsTerminateCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "terminate TOPIC",
		Short: "Terminate a topic: it takes no more messages, and consumers are told when they have had them all",
		Long: `Terminate a topic (every partition), as Pulsar's terminate: sends and new
producers fail with TOPIC_TERMINATED, and each consumer, once it has been sent
every message, is told the topic ended (strata consume then exits). It cannot
be undone. Prints each partition's last message id.`,
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			last, err := a.TerminateTopic(cmd.Context(), args[0])
			for i, id := range last {
				at := id.String()
				if id.Entry < 0 {
					at = "none"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "partition %d: terminated, last message %s\n", i, at)
			}
			return err
		}),
	}
}
