package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestEveryTopicHasHelp(t *testing.T) {
	overview := invocation{}.exec(t, "help").ok(t).stdout
	topics := helpTopics()
	if len(topics) < 30 {
		t.Fatalf("only %d topics: %v", len(topics), topics)
	}
	seen := map[string]bool{}
	for _, topic := range topics {
		if seen[topic] {
			t.Errorf("topic %q listed twice", topic)
		}
		seen[topic] = true
		if !strings.Contains(overview, "  "+topic) {
			t.Errorf("gatehouse help does not list %q", topic)
		}
		args := append([]string{"help"}, strings.Fields(topic)...)
		r := invocation{}.exec(t, args...).ok(t)
		if topic == "serve" {
			// serve writes its own help (its flags live with it).
			if !strings.Contains(r.stdout, "serve") {
				t.Errorf("gatehouse help serve:\n%s", r.stdout)
			}
			continue
		}
		if !strings.HasPrefix(r.stdout, "Usage: gatehouse "+topic) || len(r.stdout) < 60 {
			t.Errorf("gatehouse help %s:\n%s", topic, r.stdout)
		}
		cmd, _, _ := lookup(strings.Fields(topic))
		if cmd.help == "" && cmd.summary == "" {
			t.Errorf("%s has no description", topic)
		}
		// "COMMAND --help" is the same text, on stdout, exit 0.
		for _, flag := range []string{"--help", "-h"} {
			h := invocation{}.exec(t, append(strings.Fields(topic), flag)...).ok(t)
			if h.stdout != r.stdout {
				t.Errorf("%s %s differs from help %s", topic, flag, topic)
			}
		}
		if !cmd.local && !strings.Contains(r.stdout, "--server address") {
			t.Errorf("help %s does not list the connection flags:\n%s", topic, r.stdout)
		}
	}
}

func TestHelpListsFlags(t *testing.T) {
	for topic, flags := range map[string][]string{
		"token create":  {"--duration"},
		"token list":    {"--name", "--expiring-within", "--expired", "--disabled"},
		"token delete":  {"--yes", "--force"},
		"token import":  {"--client-id", "--duration"},
		"app create":    {"--domain", "--session-duration", "--service-token-header", "--no-session-cookie", "--dry-run"},
		"policy create": {"--decision", "--precedence", "--include", "--require", "--exclude", "--session-duration", "principal-prefix=PREFIX"},
		"check":         {"--host", "--path", "--method", "-H", "--source-ip", "--principal", "--app"},
		"keys rotate":   {"--alg"},
		"audit list":    {"--since", "--limit"},
		"backup":        {"--out", "(default 10m0s)"},
	} {
		out := invocation{}.exec(t, append([]string{"help"}, strings.Fields(topic)...)...).ok(t).stdout
		for _, f := range flags {
			if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, f) {
				t.Errorf("help %s does not mention %s", topic, f)
			}
		}
	}
}

func TestGroupHelp(t *testing.T) {
	for _, g := range groups {
		r := invocation{}.exec(t, "help", g.name).ok(t)
		if !strings.Contains(r.stdout, g.title+" commands:") {
			t.Errorf("help %s:\n%s", g.name, r.stdout)
		}
		h := invocation{}.exec(t, g.name, "--help").ok(t)
		if h.stdout != r.stdout {
			t.Errorf("%s --help differs from help %s", g.name, g.name)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := invocation{}.exec(t, args...).ok(t)
		if !strings.HasPrefix(r.stdout, "gatehouse ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("%v: %q", args, r.stdout)
		}
	}
	invocation{}.exec(t, "version", "extra").fails(t, exitUsage, "takes no arguments")
	invocation{}.exec(t, "version", "--server", "x:1").fails(t, exitUsage, "-server")
}
