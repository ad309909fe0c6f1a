package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

// permScope is what the permission commands grant on: a namespace or a
// topic, with the admin calls for it.
type permScope struct {
	arg, what string
	grant     func(a *client.Admin, ctx context.Context, on, role string, acts ...client.Action) error
	revoke    func(a *client.Admin, ctx context.Context, on, role string) error
	list      func(a *client.Admin, ctx context.Context, on string) (map[string][]client.Action, error)
}

var (
	nsScope = permScope{arg: "TENANT/NAMESPACE", what: "a namespace's topics",
		grant:  (*client.Admin).GrantPermission,
		revoke: (*client.Admin).RevokePermission,
		list:   (*client.Admin).Permissions}
	topicScope = permScope{arg: "TOPIC", what: "one topic (every partition), in addition to its namespace's grants,",
		grant:  (*client.Admin).GrantTopicPermission,
		revoke: (*client.Admin).RevokeTopicPermission,
		list:   (*client.Admin).TopicPermissions}
)

func grantCmd(url *string, sc permScope) *cobra.Command {
	var role, actions string
	cmd := &cobra.Command{
		Use:   "grant-permission " + sc.arg + " --role ROLE --actions produce,consume",
		Short: "Let a role produce to or consume from " + sc.what + " (superusers and the tenant's admins)",
		Long: `Give a role actions on ` + sc.what + ` replacing what it held there, as Pulsar's
grant-permission. Nodes started with --authorization check them: produce
allows producing; consume allows subscribing, reading, seeking and managing
subscriptions; either allows looking topics up and reading their stats.`,
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			var acts []client.Action
			for _, x := range strings.Split(actions, ",") {
				if x = strings.TrimSpace(x); x != "" {
					acts = append(acts, client.Action(x))
				}
			}
			if err := sc.grant(a, cmd.Context(), args[0], role, acts...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "granted %s to %s on %s\n", actions, role, args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", "", "the role (a token's subject)")
	cmd.Flags().StringVar(&actions, "actions", "", "comma-separated: produce, consume")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("actions")
	return cmd
}

func revokeCmd(url *string, sc permScope) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "revoke-permission " + sc.arg + " --role ROLE",
		Short: "Take every action of a role on " + sc.what + " away",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			if err := sc.revoke(a, cmd.Context(), args[0], role); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "revoked the permissions of %s on %s\n", role, args[0])
			return nil
		}),
	}
	cmd.Flags().StringVar(&role, "role", "", "the role (a token's subject)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func permissionsCmd(url *string, sc permScope) *cobra.Command {
	return &cobra.Command{
		Use:   "permissions " + sc.arg,
		Short: "Print the grants on " + sc.what + " as JSON: the actions of each role",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			p, err := sc.list(a, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), p)
		}),
	}
}
