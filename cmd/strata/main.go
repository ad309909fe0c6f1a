// Command strata is Strata's single binary: every server mode and every
// client tool is a subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/strata-mq/strata/internal/rpcpool"
)

// gRPC's default buffer pool clears each buffer and rounds sizes up to 1 MiB;
// every server and client in this binary shares the non-clearing one.
func init() { rpcpool.InstallDefault() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "strata: ") {
			msg = "strata: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata: a message broker with storage and compute separated",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().Duration("sched-slice", 0, "Linux 6.12+: run this process's threads, and the processes it starts, with this scheduling slice (100us..100ms; 0: the kernel's), so that they wait less for a busy CPU when they wake")
	root.PersistentPreRunE = applySchedSlice
	root.AddCommand(
		newBookieCmd(),
		newStandaloneCmd(),
		newServeCmd(),
		newProduceCmd(),
		newConsumeCmd(),
		newReadCmd(),
		newTopicsCmd(),
		newNamespacesCmd(),
		newSubscriptionsCmd(),
		newReplayCmd(),
		newLoadtestCmd(),
		newTokensCmd(),
		newClusterCmd(),
		newBookiesCmd(),
		newTenantsCmd(),
		newSchemasCmd(),
	)
	return root
}

// newLogger builds the process logger from the --log-level flag.
func newLogger(cmd *cobra.Command) *slog.Logger {
	lvl := new(slog.LevelVar)
	s, _ := cmd.Flags().GetString("log-level")
	if err := lvl.UnmarshalText([]byte(s)); err != nil {
		lvl.Set(slog.LevelInfo)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// daemon wraps the run function of a long-running server command: SIGTERM
// or an interrupt is its normal way to stop, so a signal that arrives while
// it is still starting (and cancels a start-up step, such as registering
// in etcd) is a clean exit, not a failure to start.
func daemon(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if err != nil && cmd.Context().Err() != nil && errors.Is(err, context.Canceled) {
			newLogger(cmd).Info("stopped by signal while starting", "err", err)
			return nil
		}
		return err
	}
}

// exitError carries a specific process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
