package main

import "github.com/spf13/cobra"

func newNamespacesCmd() *cobra.Command { return notYet("namespaces") }
