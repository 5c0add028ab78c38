package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	// Cancelled on Ctrl-C / SIGTERM: "serve" shuts down gracefully, a client
	// command abandons its call.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{
		stdin:    stdin,
		stdout:   stdout,
		stderr:   stderr,
		getenv:   os.Getenv,
		now:      time.Now,
		terminal: func() bool { return isCharDevice(stdin) },
	}
	return c.run(ctx, args)
}

// cli is one invocation's environment. Tests build one directly to inject
// the environment variables, the clock and whether stdin is a terminal.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// terminal reports whether stdin is an interactive terminal, in which
	// case deletions ask for confirmation and secrets are read without echo.
	terminal func() bool

	in *bufio.Reader // stdin, buffered on first use
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// command is one leaf of the command tree, e.g. "token create".
type command struct {
	path    string // "token create"
	args    string // positional synopsis: "NAME"
	summary string // one line, for the command list
	help    string // the full description, paragraphs separated by blank lines
	example string // worked examples, one per line
	// minArgs and maxArgs bound the positional arguments; maxArgs < 0: no bound.
	minArgs, maxArgs int
	// local commands (version) take no connection or output flags.
	local bool
	// timeout overrides the default --timeout.
	timeout time.Duration
	// define registers the command's own flags on fs and returns its action,
	// which runs once the flags are parsed.
	define func(fs *flag.FlagSet) action
}

// action runs a parsed command; args are the positional arguments.
type action func(ctx context.Context, s *session, args []string) error

// synopsis is the usage line without the program name.
func (c *command) synopsis() string {
	s := c.path
	if c.args != "" {
		s += " " + c.args
	}
	if !c.local {
		s += " [flags]"
	}
	return s
}

// commands is every client command, in the order help lists them.
var commands = sync.OnceValue(func() []*command {
	var all []*command
	for _, group := range [][]*command{
		tokenCommands(), appCommands(), policyCommands(), checkCommands(),
		keysCommands(), adminKeyCommands(), auditCommands(), storeCommands(),
		backupCommands(),
		{versionCommand()},
	} {
		all = append(all, group...)
	}
	return all
})

// lookup finds the command named by the start of args and returns it with
// the remaining arguments. For a group word ("token") without a known verb it
// returns the group.
func lookup(args []string) (cmd *command, rest []string, group string) {
	if len(args) == 0 {
		return nil, nil, ""
	}
	for _, c := range commands() {
		words := strings.Fields(c.path)
		if len(args) >= len(words) && slicesEqual(args[:len(words)], words) {
			return c, args[len(words):], ""
		}
	}
	for _, g := range groups {
		if args[0] == g.name {
			return nil, args[1:], g.name
		}
	}
	return nil, args, ""
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.writeOverview(c.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return c.help(ctx, args[1:])
	case "--version", "-version":
		return c.exec(ctx, versionCommand(), args[1:])
	case "serve":
		return c.serve(ctx, args[1:])
	}
	cmd, rest, group := lookup(args)
	switch {
	case cmd != nil:
		return c.exec(ctx, cmd, rest)
	case group != "" && (len(rest) == 0 || isHelpFlag(rest[0])):
		w, code := c.stdout, exitOK
		if len(rest) == 0 {
			w, code = c.stderr, exitUsage
		}
		c.writeGroupHelp(w, group)
		return code
	case group != "":
		fmt.Fprintf(c.stderr, "gatehouse: unknown command %q (run \"gatehouse help %s\" for the %s commands)\n", group+" "+rest[0], group, group)
		return exitUsage
	case strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(c.stderr, "gatehouse: flags go after the command, as in \"gatehouse token list %s\" (run \"gatehouse help\" for the list)\n", args[0])
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "gatehouse: unknown command %q (run \"gatehouse help\" for the list)\n", args[0])
		return exitUsage
	}
}

func isHelpFlag(s string) bool {
	return s == "-h" || s == "-help" || s == "--help"
}

// serve hands over to the server.
func (c *cli) serve(ctx context.Context, args []string) int {
	err := runServe(ctx, args, c.stdout, c.stderr)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "gatehouse: serve: %s (run \"gatehouse help serve\")\n", oneLine(err.Error()))
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "gatehouse: %s\n", oneLine(err.Error()))
		return exitError
	}
}

// exec parses the flags of cmd, runs it and reports the outcome.
func (c *cli) exec(ctx context.Context, cmd *command, args []string) int {
	fs := flag.NewFlagSet("gatehouse "+cmd.path, flag.ContinueOnError)
	// The flag package would print the error and the whole usage; we print
	// one line instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var act action
	if cmd.define != nil {
		act = cmd.define(fs)
	}
	g := &globals{}
	if !cmd.local {
		g.register(fs, cmd.timeout)
	}
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.writeHelp(ctx, c.stdout, cmd)
		return exitOK
	}
	if err == nil {
		err = checkArgs(cmd, pos)
	}
	if err == nil && !cmd.local {
		err = g.finish(fs, c.getenv)
	}
	if err != nil {
		return c.report(cmd, nil, usagef("%s", err.Error()))
	}
	s := &session{cli: c, g: g, out: &printer{w: c.stdout, json: g.output == "json", clock: c.now}}
	defer s.close()
	return c.report(cmd, s, act(ctx, s, pos))
}

// parseArgs parses flags anywhere on the command line ("token create NAME
// --duration 1h" as well as "token create --duration 1h NAME"), which the
// flag package alone does not: it stops at the first positional argument.
// Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func checkArgs(cmd *command, pos []string) error {
	switch {
	case len(pos) < cmd.minArgs:
		return fmt.Errorf("missing argument: want %s", cmd.args)
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		if cmd.maxArgs == 0 {
			return fmt.Errorf("unexpected argument %q: %s takes no arguments", pos[0], cmd.path)
		}
		return fmt.Errorf("unexpected argument %q: want %s", pos[cmd.maxArgs], cmd.args)
	}
	return nil
}

// report prints err as one line on stderr and returns the exit status.
// Nothing it prints can contain the admin key: the key is masked out of
// every message, whatever produced it.
func (c *cli) report(cmd *command, s *session, err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(c.stderr, "gatehouse: %s: %s (run \"gatehouse help %s\")\n", cmd.path, oneLine(ue.msg), cmd.path)
		return exitUsage
	}
	msg := describe(err, s)
	if s != nil && s.key != "" {
		msg = strings.ReplaceAll(msg, s.key, "[admin key]")
	}
	fmt.Fprintf(c.stderr, "gatehouse: %s\n", oneLine(msg))
	return exitError
}

// oneLine keeps an error on one line, whatever the server put in it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// isCharDevice reports whether r is a terminal (a character device).
func isCharDevice(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readLine reads one line from stdin, without its line ending and the
// surrounding white space. io.EOF means stdin was empty.
func (c *cli) readLine() (string, error) {
	if c.in == nil {
		c.in = bufio.NewReader(c.stdin)
	}
	line, err := c.in.ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return strings.TrimSpace(line), err
}

// confirm asks for confirmation on stderr and reads the answer from the
// terminal; question builds the question (it may call the server). Without a
// terminal it refuses, before any call, unless yes is set: a script must say
// --yes.
func (c *cli) confirm(yes bool, question func() (string, error)) error {
	if yes {
		return nil
	}
	if !c.terminal() {
		return usagef("stdin is not a terminal, so there is no one to ask for confirmation: pass --yes")
	}
	q, err := question()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "%s [y/N] ", q)
	answer, err := c.readLine()
	if err == io.EOF {
		fmt.Fprintln(c.stderr) // end the prompt's line (Ctrl-D echoes nothing)
	} else if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	switch strings.ToLower(answer) {
	case "y", "yes":
		return nil
	}
	return errAborted
}

// errAborted is returned when the user answers no to a confirmation.
var errAborted = errors.New("aborted: nothing was changed")

// stringList is a repeatable string flag: each use adds one value.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ", ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
