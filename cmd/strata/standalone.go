package main

import "github.com/spf13/cobra"

func newStandaloneCmd() *cobra.Command { return notYet("standalone") }
