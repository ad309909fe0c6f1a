package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func newClusterCmd() *cobra.Command {
	var url, output string
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "List the serving nodes (with how many topics each owns) and the bookies registered now",
		Long: `List the serving nodes registered now, with the topics each owns (partitions
counted one by one), and the bookies registered now, as Pulsar's brokers list
and bookies list-bookies. A node or bookie missing from the list has lost its
etcd session: it is down, or cut off.`,
		Args: cobra.NoArgs,
		RunE: withAdmin(&url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			nodes, bookies, err := a.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON, err := jsonOutput(output); err != nil || asJSON {
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"nodes": nonNil(nodes), "bookies": nonNil(bookies)})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tGRPC\tHTTP\tUP\tTOPICS")
			for _, n := range nodes {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", n.ID, n.GRPCAddr, n.HTTPAddr, time.Since(n.Started).Round(time.Second), n.OwnedTopics)
			}
			fmt.Fprintln(w, "\nBOOKIE\tADDRESS\t\t\t")
			for _, b := range bookies {
				fmt.Fprintf(w, "%s\t%s\t\t\t\n", b.ID, b.Addr)
			}
			return w.Flush()
		}),
	}
	addURLFlag(cmd.Flags(), &url)
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

// nonNil answers s, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// jsonOutput answers whether --output asks for JSON ("json") rather than
// text ("text"); any other value is an error.
func jsonOutput(output string) (bool, error) {
	switch output {
	case "json":
		return true, nil
	case "text":
		return false, nil
	}
	return false, fmt.Errorf("--output %q: want text or json", output)
}
