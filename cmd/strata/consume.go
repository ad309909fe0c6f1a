package main

import "github.com/spf13/cobra"

func newConsumeCmd() *cobra.Command { return notYet("consume") }
