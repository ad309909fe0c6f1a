package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-mq/strata/client"
)

func newTenantsCmd() *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "Get and set a tenant's admin roles, who may do within it what superusers may (with --authorization)",
	}
	addURLFlag(cmd.PersistentFlags(), &url)
	cmd.AddCommand(tenantsSetAdminsCmd(&url), tenantsGetCmd(&url))
	return cmd
}

func tenantsSetAdminsCmd(url *string) *cobra.Command {
	var roles string
	cmd := &cobra.Command{
		Use:   "set-admins TENANT --roles R1,R2",
		Short: "Replace a tenant's admin roles (--roles \"\" removes them; superusers only)",
		Long: `Replace a tenant's admin roles, as Pulsar's tenant admin roles. On nodes started
with --authorization they may, within the tenant, create and delete topics,
set namespace and topic policies, grant and revoke permissions, produce and
consume: everything superusers may but what spans tenants (the cluster's
nodes and bookies, other tenants).`,
		Example: `  strata tenants set-admins acme --roles acme-ops`,
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			var rs []string
			for _, r := range strings.Split(roles, ",") {
				if r = strings.TrimSpace(r); r != "" {
					rs = append(rs, r)
				}
			}
			if err := a.SetTenantAdmins(cmd.Context(), args[0], rs...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "tenant %s: admins %v\n", args[0], rs)
			return nil
		}),
	}
	cmd.Flags().StringVar(&roles, "roles", "", "comma-separated admin roles")
	_ = cmd.MarkFlagRequired("roles")
	return cmd
}

func tenantsGetCmd(url *string) *cobra.Command {
	return &cobra.Command{
		Use:   "get TENANT",
		Short: "Print a tenant's admin roles as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(url, func(cmd *cobra.Command, a *client.Admin, args []string) error {
			roles, err := a.TenantAdmins(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), map[string]any{"tenant": args[0], "admin_roles": nonNil(roles)})
		}),
	}
}
