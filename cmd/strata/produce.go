package main

import "github.com/spf13/cobra"

func newProduceCmd() *cobra.Command { return notYet("produce") }
