package main

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func newBookiesCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "bookies",
		Short: "List bookies with the ledgers that name them; decommission one (copy its ledgers elsewhere before it is stopped)",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(bookiesListCmd(&url), bookiesDecommissionCmd(&url), bookiesRecommissionCmd(&url))
	return cmd
}

func bookiesListCmd(url *string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every bookie registered, draining, or named by a ledger, with how many ledgers name it",
		Long: `List every bookie that is registered (live), draining (being decommissioned), or
named by a ledger, with the ledgers that name it. A bookie named by ledgers
and not registered is down or lost: its closed ledgers are copied elsewhere
after --lost-bookie-recovery-delay. Reads every ledger's metadata.`,
		Args: cobra.NoArgs,
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, _ []string) error {
			bs, err := a.Bookies(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON, err := jsonOutput(output); err != nil || asJSON {
				if err != nil {
					return err
				}
				return writeJSON(cmd.OutOrStdout(), nonNil(bs))
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BOOKIE\tSTATE\tLEDGERS\tOPEN")
			for _, b := range bs {
				state := "registered"
				switch {
				case b.Draining && b.Registered:
					state = "draining"
				case b.Draining:
					state = "draining, down"
				case !b.Registered:
					state = "down or lost"
				case b.ReadOnly:
					state = "read-only (disk nearly full)"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", b.ID, state, b.Ledgers, b.OpenLedgers)
			}
			return w.Flush()
		}),
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

func bookiesDecommissionCmd(url *string) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "decommission BOOKIE [--wait 30m]",
		Short: "Drain a bookie: no new ledgers go to it, and its closed ledgers are copied to other bookies",
		Long: `Drain a bookie before removing it, as BookKeeper's decommissionbookie: new ledgers
and ensemble changes stop picking it, and the auditing serving node copies
every closed ledger off it while it still serves reads (a spare bookie is
needed: one outside each ledger's ensemble). Ledgers still open name it until
they roll or close (unload their topics to close them now). With --wait,
waits until no ledger names it, printing the count as it falls; then stop it.
BOOKIE is its id, its advertised address (strata bookies list).`,
		Example: `  strata bookies decommission 10.0.0.7:3181 --wait 30m && ssh 10.0.0.7 systemctl stop strata-bookie`,
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			ctx := cmd.Context()
			if err := a.DrainBookie(ctx, args[0], false); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "bookie %s is draining\n", args[0])
			if wait <= 0 {
				return nil
			}
			deadline := time.Now().Add(wait)
			last := -1
			for {
				bs, err := a.Bookies(ctx)
				if err != nil {
					return err
				}
				n := 0
				if i := slices.IndexFunc(bs, func(b client.BookieStatus) bool { return b.ID == args[0] }); i >= 0 {
					n = bs[i].Ledgers
				}
				if n == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "no ledger names bookie %s: it can be stopped\n", args[0])
					return nil
				}
				if n != last {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d ledgers still name bookie %s\n", n, args[0])
					last = n
				}
				if time.Now().After(deadline) {
					return &exitError{code: 1, err: fmt.Errorf("after %v, %d ledgers still name bookie %s", wait, n, args[0])}
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		}),
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until no ledger names the bookie (0: return at once)")
	return cmd
}

func bookiesRecommissionCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "recommission BOOKIE",
		Short: "Undo a decommission: the bookie takes new ledgers again",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := a.DrainBookie(cmd.Context(), args[0], true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "bookie %s takes new ledgers again\n", args[0])
			return nil
		}),
	}
}
