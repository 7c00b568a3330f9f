// Command bildrum runs the national federated data space for diagnostic
// imaging: `bildrum demo` starts a hub and three regional nodes with
// synthetic data in one process; `bildrum synth` writes a synthetic
// screening population. Run `bildrum help` for every subcommand.
package main

import (
	"log/slog"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/bildrum/bildrum"
)

// Exit codes: 0 success, 1 a failure at run time, 2 bad usage.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `bildrum — national federated data space for diagnostic imaging

Usage:
  bildrum demo  [-data DIR] [-addr HOST:PORT]   hub + nodes 01, 12, 14 with synthetic data and a web page
  bildrum demo  -write-config DIR               write the demo federation's CA, certificates and configs
  bildrum hub   -config FILE                    run the national hub
  bildrum node  -config FILE                    run a region's node
  bildrum ca    init|request|sign|issue|list|revoke   the federation's certificate authority
  bildrum synth [-out DIR | -db DSN] [flags]     write a synthetic screening population
  bildrum import -db DSN -region RR [-format csv|fhir] FILE   import a register file into a node's database
  bildrum log   verify|show -url HUB/log ...     audit the transparency log (docs/transparency.md)
  bildrum version                                print the version

Run 'bildrum COMMAND -h' for a command's flags.
`

func main() {
	// tessera logs through klog; keep its chatter out of the terminal and
	// pass on only its warnings and errors, in our format.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "synth":
		err = runSynth(ctx, args[1:], stdout, stderr)
	case "import":
		err = runImport(ctx, args[1:], stdout, stderr)
	case "hub":
		err = runHub(ctx, args[1:], stdout, stderr)
	case "node":
		err = runNode(ctx, args[1:], stdout, stderr)
	case "ca":
		err = runCA(ctx, args[1:], stdout, stderr)
	case "log":
		err = runLog(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "bildrum", bildrum.Version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "bildrum: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return exitCode(stderr, err)
}

// usageError is a command line that cannot be run as written.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode reports err to the person at the terminal and maps it to an exit code.
func exitCode(stderr io.Writer, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "bildrum:", ue.msg)
		return exitUsage
	case bildrum.ErrorCode(err) == bildrum.EINTERNAL:
		fmt.Fprintln(stderr, "bildrum:", err)
		return exitError
	default:
		fmt.Fprintln(stderr, "bildrum:", bildrum.ErrorMessage(err))
		return exitError
	}
}

// parseFlags parses a command's flags, turning flag errors and stray
// arguments into one usage error; -h prints the flags to stdout.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage of bildrum %s:\n", fs.Name())
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return usageError{fmt.Sprintf("%s: %v (see 'bildrum %s -h')", fs.Name(), err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q (see 'bildrum %s -h')", fs.Name(), fs.Arg(0), fs.Name())}
	}
	return nil
}
