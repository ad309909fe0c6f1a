package main

import "github.com/spf13/cobra"

func newBookieCmd() *cobra.Command { return notYet("bookie") }
