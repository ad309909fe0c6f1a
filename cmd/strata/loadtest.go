package main

import "github.com/spf13/cobra"

func newLoadtestCmd() *cobra.Command { return notYet("loadtest") }
