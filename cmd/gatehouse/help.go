package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// group is a verb group ("token") and the section of the overview that
// lists it.
type group struct {
	name  string
	title string
	about string
}

var groups = []group{
	{"token", "Service tokens", `A service token is a client id and client secret pair that a service presents
in the cf-access-client-id and cf-access-client-secret headers, exactly as with
Cloudflare Access. The secret is shown once, when the token is created or
rotated; gatehouse keeps only a digest of it. A token expires after its
duration (8760h, one year, by default; "forever" never expires) unless it is
refreshed. A TOKEN argument is the token's id, its client id or its name.`},
	{"app", "Applications", `An application is a set of hosts and path prefixes ("api.example.com",
"example.com/admin") that gatehouse protects. Requests to it are decided by its
policies; an allowed request gets a session JWT (cf-access-jwt-assertion)
whose audience is the application's aud tag. An APP argument is the
application's id or name.`},
	{"policy", "Policies", `A policy decides requests to one application: its include rules (any one must
match), require rules (all must match) and exclude rules (none may match)
select requests, and its decision says what happens to them: "non_identity"
(service auth: let a service token in), "allow", "deny" or "bypass". Policies
are tried lowest precedence first; the first that matches decides.

Rules use the syntax SELECTOR or SELECTOR=VALUE:
  service_token=TOKEN              a service token (id, client id or name)
  any_valid_service_token          any unexpired, enabled service token
  ip=CIDR                          the client address is in CIDR (or is an address)
  principal=ID                     the mTLS peer principal is exactly ID (e.g. spiffe://...)
  principal-prefix=PREFIX          the mTLS peer principal starts with PREFIX
  certificate                      any client certificate
  common_name=CN                   the client certificate's common name is CN
  everyone                         every request`},
	{"keys", "Session-JWT signing keys", `gatehouse signs session JWTs with the active signing key and publishes the
public keys at /.well-known/jwks.json and /cdn-cgi/access/certs. Rotating
(every six weeks by default, or "keys rotate") publishes a new key at once
and makes it sign ten minutes later; older keys stay published until every
JWT they signed has expired.`},
	{"admin-key", "Admin keys", `Admin keys authenticate the CLI and any other client of the admin API. The
first one is written to DATA_DIR/admin.key when the server starts on an empty
store. A read-only key can list and get but not change anything.`},
	{"audit", "Audit log", `Every change made through the admin API is recorded with the time, the name of
the admin key that made it, the method, the object and the outcome.`},
	{"store", "The data file", `The store is one bbolt file, DATA_DIR/gatehouse.db. These commands work on the
file itself, with no server running, and never contact one.`},
}

// sections of the overview for the commands outside any group.
var sections = map[string]string{
	"check":   "Checking access",
	"backup":  "Maintenance",
	"restore": "Maintenance",
	"version": "Maintenance",
}

// helpTopics lists every command path ("serve", "token create", ...), each of
// which "gatehouse help <topic>" documents; a doc generator iterates it.
func helpTopics() []string {
	topics := []string{"serve"}
	for _, c := range commands() {
		topics = append(topics, c.path)
	}
	return topics
}

// help runs "gatehouse help [TOPIC...]".
func (c *cli) help(ctx context.Context, args []string) int {
	if len(args) == 0 || (len(args) == 1 && args[0] == "help") {
		c.writeOverview(c.stdout)
		return exitOK
	}
	if len(args) == 1 && args[0] == "serve" {
		c.writeServeHelp(ctx, c.stdout)
		return exitOK
	}
	cmd, rest, g := lookup(args)
	switch {
	case cmd != nil && len(rest) == 0:
		c.writeHelp(ctx, c.stdout, cmd)
		return exitOK
	case g != "" && len(rest) == 0:
		c.writeGroupHelp(c.stdout, g)
		return exitOK
	}
	fmt.Fprintf(c.stderr, "gatehouse: no help for %q: run \"gatehouse help\" for the list of commands\n", strings.Join(args, " "))
	return exitUsage
}

// writeOverview lists every command with its synopsis.
func (c *cli) writeOverview(w io.Writer) {
	fmt.Fprint(w, `gatehouse: Cloudflare Access-style service tokens for Envoy ext_authz.

"gatehouse serve" runs the server; the other commands manage it through the
admin gRPC API (never the data file), so they work against a local or a remote
server alike. Only "restore" and "store verify" work on a stopped server's
data file.

Usage:
  gatehouse <command> [arguments] [flags]
  gatehouse help [command]
`)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	section := func(title string) { fmt.Fprintf(tw, "\n%s:\n", title) }
	section("Server")
	fmt.Fprintf(tw, "  serve [flags]\t%s\n", serveSummary)
	last := ""
	for _, cmd := range commands() {
		word := strings.Fields(cmd.path)[0]
		title := sections[word]
		for _, g := range groups {
			if g.name == word {
				title = g.title
			}
		}
		if title != last {
			section(title)
			last = title
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSuffix(cmd.synopsis(), " [flags]"), cmd.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Every command but serve, version, restore and store verify takes the
connection and output flags:
  --server HOST:PORT     the admin API (default 127.0.0.1:9002, or $GATEHOUSE_SERVER)
  --admin-key-file FILE  the admin key (default $GATEHOUSE_ADMIN_KEY, else ./data/admin.key)
  --tls, --ca-file FILE  TLS to the admin API (required unless the server is on loopback)
  --timeout DURATION     how long to wait for each call (default 10s)
  -o table|json          output format (default table)

Exit status: 0 on success, 1 when the command failed, 2 for a usage error.
Run "gatehouse help <command>" for a command's flags and examples.
`)
}

const serveSummary = "run the ext_authz server, the admin API and the JWKS/metrics endpoint"

// writeServeHelp asks serve for its own help; serve's flags live with it.
func (c *cli) writeServeHelp(ctx context.Context, w io.Writer) {
	var buf bytes.Buffer
	_ = runServe(ctx, []string{"-h"}, &buf, &buf)
	if buf.Len() == 0 {
		fmt.Fprintf(&buf, "Usage: gatehouse serve [flags]\n\nThe server: %s.\n", serveSummary)
	}
	w.Write(buf.Bytes())
}

// writeGroupHelp documents a verb group and lists its commands.
func (c *cli) writeGroupHelp(w io.Writer, name string) {
	for _, g := range groups {
		if g.name != name {
			continue
		}
		fmt.Fprintf(w, "Usage: gatehouse %s <command> [arguments] [flags]\n\n%s\n\n%s commands:\n", name, g.about, g.title)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		for _, cmd := range commands() {
			if strings.HasPrefix(cmd.path, name+" ") {
				fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSuffix(cmd.synopsis(), " [flags]"), cmd.summary)
			}
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun \"gatehouse help %s <command>\" for a command's flags and examples.\n", name)
	}
}

// writeHelp prints the full help of cmd: synopsis, description, flags,
// connection flags and examples.
func (c *cli) writeHelp(ctx context.Context, w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: gatehouse %s\n\n%s.\n", cmd.synopsis(), upperFirst(cmd.summary))
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	if cmd.define != nil {
		fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
		cmd.define(fs)
		if flags := defaults(fs); flags != "" {
			fmt.Fprintf(w, "\nFlags:\n%s", flags)
		}
	}
	if !cmd.local {
		fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
		(&globals{}).register(fs, cmd.timeout)
		fmt.Fprintf(w, "\nConnection and output flags:\n%s", defaults(fs))
	}
	if cmd.example != "" {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, line := range strings.Split(strings.TrimSpace(cmd.example), "\n") {
			fmt.Fprintf(w, "  %s\n", strings.TrimSpace(line))
		}
	}
}

var longFlag = regexp.MustCompile(`(?m)^  -([a-zA-Z0-9][a-zA-Z0-9-]+)`)

// defaults is fs.PrintDefaults, with the long flags spelled "--name" as
// people type them (the flag package accepts both).
func defaults(fs *flag.FlagSet) string {
	var b bytes.Buffer
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return longFlag.ReplaceAllString(b.String(), "  --$1")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module version or VCS
// revision recorded by the Go toolchain is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "devel"
	case dirty:
		return "devel-" + rev + "-dirty"
	}
	return "devel-" + rev
}

func versionCommand() *command {
	return &command{
		path:    "version",
		summary: "print the version of this gatehouse binary",
		help:    "Prints the release (or VCS revision) of this binary, the Go version it was\nbuilt with and the platform. It does not contact a server.",
		maxArgs: 0,
		local:   true,
		define: func(fs *flag.FlagSet) action {
			return func(ctx context.Context, s *session, args []string) error {
				_, err := fmt.Fprintf(s.stdout, "gatehouse %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return err
			}
		},
	}
}
