package main

import "github.com/spf13/cobra"

func newTopicsCmd() *cobra.Command { return notYet("topics") }
