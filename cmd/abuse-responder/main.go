// Command abuse-responder answers AWS abuse reports: it watches a mailbox
// for notices, analyses them, blocks the reported traffic, asks an admin to
// confirm and replies to AWS. This file maps subcommands onto packages; the
// logic lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of DESIGN.md: 2 stops systemd's restart loop
// (RestartPreventExitStatus=2) on a usage or config error.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is what a subcommand may touch, so that tests run it in process.
type env struct {
	ctx    context.Context
	stdin  io.Reader // collect --query - reads it
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

type command struct {
	name, summary string
	run           func(*env, []string) int
}

func commands() []command {
	return []command{
		{"demo", "run the pipeline on a built-in notice, no accounts needed", cmdDemo},
		{"run", "run the daemon (the systemd service)", cmdRun},
		{"parse", "print what the parser sees in notice mails", cmdParse},
		{"analyze", "analyse a notice: resources, evidence, verdict and cause", cmdAnalyze},
		{"collect", "collect host evidence for a notice on this machine (read only)", cmdCollect},
		{"plan", "print what would be blocked for a notice; changes nothing", cmdPlan},
		{"apply", "apply and verify the block for a notice by hand, recorded", cmdApply},
		{"unblock", "undo the blocks of a case", cmdUnblock},
		{"blocks", "list the blocks in place", cmdBlocks},
		{"check-config", "validate the config file and list every problem", cmdCheckConfig},
		{"cases", "list cases, or show one with its history", cmdCases},
		{"approve", "confirm a case from the shell", cmdDecide("approve", "confirm")},
		{"reject", "reject a case from the shell", cmdDecide("reject", "reject")},
		{"version", "print the version", cmdVersion},
		{"nft", "apply, verify or undo one nftables block here (used through SSM by the daemon)", cmdNft},
		{"probe", "connect to targets from here, sending nothing (used through SSM by the daemon)", cmdProbe},
	}
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{ctx: ctx, stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "abuse-responder: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: abuse-responder COMMAND [FLAGS] [ARGS]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'abuse-responder COMMAND --help' for a command's flags.")
}

// newFlagSet makes a flag set whose --help prints the command's synopsis.
func newFlagSet(e *env, name, synopsis, doc string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: abuse-responder %s %s\n\n%s\n", name, synopsis, doc)
		if hasFlags(fs) {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args; when it returns ok false the command exits with
// code: 0 after --help (printed on stdout), 2 on a flag error.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK, false
	}
	return exitUsage, false
}

// parseOneArg parses args for a command that takes exactly one argument
// after its flags; a missing or extra one prints the usage and exits 2.
func parseOneArg(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return code, false
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

func cmdVersion(e *env, args []string) int {
	fs := newFlagSet(e, "version", "", "Print the version of this build.")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "abuse-responder %s\n", version)
	return exitOK
}
