package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateDocs rewrites the generated reference instead of comparing with it:
//
//	go test ./cmd/gatehouse -run TestCLIReference -update
var updateDocs = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help instead of comparing")

// cliReference is docs/cli.md, relative to this package.
var cliReference = filepath.Join("..", "..", "docs", "cli.md")

// TestCLIReference keeps docs/cli.md equal to what the binary says about
// itself: "gatehouse help" and "gatehouse help <topic>" for every topic. The
// help text is the source; the file is generated from it, so a flag added,
// renamed or re-described without regenerating the file fails here.
func TestCLIReference(t *testing.T) {
	got := renderCLIReference(t)
	if *updateDocs {
		if err := os.WriteFile(cliReference, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", cliReference)
		return
	}
	want, err := os.ReadFile(cliReference)
	if err != nil {
		t.Fatalf("%v\nGenerate it with: go test ./cmd/gatehouse -run TestCLIReference -update (or make docs)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/cli.md is stale: it differs from the CLI's help at line %d:\n  file: %q\n  help: %q\n"+
			"Regenerate it with: go test ./cmd/gatehouse -run TestCLIReference -update (or make docs), and commit it.",
			firstDiffLine(want, got), lineAt(want, firstDiffLine(want, got)), lineAt(got, firstDiffLine(want, got)))
	}
}

// TestCLIReferenceCoversEveryTopic makes sure the generator cannot silently
// drop a command: every topic has its own section, and the sections are in
// helpTopics order.
func TestCLIReferenceCoversEveryTopic(t *testing.T) {
	doc := string(renderCLIReference(t))
	last := 0
	for _, topic := range helpTopics() {
		heading := "\n## gatehouse " + topic + "\n"
		i := strings.Index(doc, heading)
		if i < 0 {
			t.Errorf("no section %q", strings.TrimSpace(heading))
			continue
		}
		if i < last {
			t.Errorf("section for %q is out of order", topic)
		}
		last = i
		if !strings.Contains(doc, "(#"+anchor("gatehouse "+topic)+")") {
			t.Errorf("the contents do not link to %q", topic)
		}
	}
}

// renderCLIReference builds docs/cli.md from the in-process CLI.
func renderCLIReference(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`# CLI reference

<!-- Generated from the CLI's own help by TestCLIReference (cmd/gatehouse/docs_test.go).
     Do not edit: change the help text in cmd/gatehouse/*.go, then run
     go test ./cmd/gatehouse -run TestCLIReference -update   (or: make docs) -->

This is the output of ` + "`gatehouse help`" + ` and ` + "`gatehouse help <command>`" + `, verbatim, except that
the connection and output flags most commands share are printed once, below. Every command but
` + "`serve`" + `, ` + "`version`" + `, ` + "`restore`" + ` and ` + "`store verify`" + ` is a client of the admin gRPC API
([api.md](api.md)); it never opens the bbolt file. Those two work on a stopped server's data file. ` + "`gatehouse <command> --help`" + ` prints the same text as ` + "`gatehouse help <command>`" + `.

For a guided tour see the walkthrough in the [README](../README.md#five-minute-walkthrough).

`)
	// Contents: one line per verb group, in help order.
	topics := helpTopics()
	b.WriteString("- [gatehouse help](#gatehouse-help) · [connection and output flags](#connection-and-output-flags)")
	lastGroup := ""
	for _, topic := range topics {
		words := strings.Fields(topic)
		link := fmt.Sprintf("[%s](#%s)", topic, anchor("gatehouse "+topic))
		switch {
		case len(words) > 1 && words[0] == lastGroup:
			fmt.Fprintf(&b, " · [%s](#%s)", strings.Join(words[1:], " "), anchor("gatehouse "+topic))
		case len(words) > 1:
			fmt.Fprintf(&b, "\n- **%s**: [%s](#%s)", words[0], strings.Join(words[1:], " "), anchor("gatehouse "+topic))
		default:
			fmt.Fprintf(&b, "\n- %s", link)
		}
		lastGroup = words[0]
	}
	b.WriteString("\n")

	// The connection and output flags are the same for every client
	// command (bar a different --timeout default): printed once here, and
	// replaced by a link in each command whose block is exactly this one.
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	(&globals{}).register(fs, 0)
	common := tidy(defaults(fs))
	fmt.Fprintf(&b, "\n## Connection and output flags\n\n"+
		"Every command but `serve`, `help`, `version`, `restore` and `store verify` takes these; `gatehouse help <command>` prints them "+
		"under \"Connection and output flags\". Environment: `GATEHOUSE_SERVER` (the address), "+
		"`GATEHOUSE_ADMIN_KEY` (the key itself, not a file).\n\n```text\n%s```\n", common)
	commonBlock := "\nConnection and output flags:\n" + common
	linked := "\nConnection and output flags: the common ones (see \"Connection and output flags\" above).\n"

	section := func(title string, args ...string) {
		out := runHelp(t, args...)
		out = strings.Replace(out, commonBlock, linked, 1)
		fmt.Fprintf(&b, "\n## %s\n\n```text\n%s```\n", title, out)
	}
	section("gatehouse help", "help")
	for _, topic := range topics {
		section("gatehouse "+topic, append([]string{"help"}, strings.Fields(topic)...)...)
	}
	return b.Bytes()
}

// runHelp runs the CLI in process and returns its stdout, failing the test
// on anything but exit status 0 with an empty stderr.
func runHelp(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	if code != exitOK || stderr.Len() > 0 {
		t.Fatalf("gatehouse %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr.String())
	}
	out := stdout.String()
	if out == "" {
		t.Fatalf("gatehouse %s printed nothing", strings.Join(args, " "))
	}
	if strings.Contains(out, "```") {
		t.Fatalf("gatehouse %s: help contains a code fence, which would break docs/cli.md", strings.Join(args, " "))
	}
	return tidy(out)
}

// tidy makes help text safe for a Markdown code block: the flag package
// indents descriptions with a tab, which renders at the reader's tab width,
// so tabs become four spaces; trailing spaces (which editors strip) go; the
// text ends with a newline.
func tidy(s string) string {
	s = strings.ReplaceAll(s, "\t", "    ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	s = strings.Join(lines, "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// anchor is the fragment GitHub derives from a heading: lower case, spaces
// to hyphens, punctuation other than hyphens and underscores dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// firstDiffLine is the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(la), len(lb)) {
		if i >= len(la) || i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return 0
}

func lineAt(doc []byte, n int) string {
	lines := strings.Split(string(doc), "\n")
	if n < 1 || n > len(lines) {
		return "(end of file)"
	}
	return lines[n-1]
}
