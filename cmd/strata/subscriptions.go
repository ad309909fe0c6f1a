package main

import "github.com/spf13/cobra"

func newSubscriptionsCmd() *cobra.Command { return notYet("subscriptions") }
