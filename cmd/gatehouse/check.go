package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// parseHeader parses -H "name: value" as curl does. Envoy hands ext_authz
// lowercase header names, so the name is lowercased.
func parseHeader(s string) (*adminv1.Header, error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return nil, fmt.Errorf("-H %q: want \"name: value\"", s)
	}
	return &adminv1.Header{Name: strings.ToLower(name), Value: strings.TrimSpace(value)}, nil
}

// headerList is the repeatable -H flag.
type headerList []*adminv1.Header

func (l *headerList) String() string { return "" }

func (l *headerList) Set(v string) error {
	h, err := parseHeader(v)
	if err != nil {
		return err
	}
	*l = append(*l, h)
	return nil
}

// printCheck prints what the authorizer would decide.
func (s *session) printCheck(r *adminv1.CheckAccessResponse) error {
	if s.out.json {
		return s.out.object(r)
	}
	named := func(name, id string) string {
		switch {
		case id == "" && name == "":
			return "-"
		case id == "":
			return name
		case name == "":
			return id
		}
		return name + " (" + id + ")"
	}
	policy := named(r.GetPolicyName(), r.GetPolicyId())
	if r.GetPolicyDecision() != "" {
		policy += ", decision " + r.GetPolicyDecision()
	}
	fields := []field{
		{"decision", r.GetDecision()},
		{"http status", fmt.Sprint(r.GetHttpStatus())},
		{"reason", orDash(r.GetReason())},
		{"application", named(r.GetApplicationName(), r.GetApplicationId())},
		{"policy", policy},
		{"rule", orDash(r.GetRule())},
		{"token", named(r.GetTokenName(), r.GetTokenId())},
	}
	if r.GetDryRun() {
		fields = append(fields, field{"dry run", "yes: Envoy is told to allow the request whatever the decision"})
	}
	return s.out.detail(fields)
}

func checkCommands() []*command {
	return []*command{{
		path: "check", maxArgs: 0,
		summary: "ask what gatehouse would decide for a request, and why",
		help: `Asks the server what its authorizer would decide for a request described by
the flags, and why: the decision (allow or deny), the HTTP status Envoy would
return, the reason, and the application, policy (and its include rule that
matched) and service token involved.
Nothing is recorded: no last-seen time, no session JWT.

The exit status is 0 whatever the decision, since this is a question; read
the decision from the output (-o json for scripts).

To test with a service token without putting its secret in your shell
history, pass --client-id and pipe the secret into --client-secret-stdin.`,
		example: `gatehouse check --host api.internal.example.com --path /v1/orders
gatehouse check --host api.internal.example.com --client-id 88bf3b6d86161464f6509f7219099e57.access --client-secret-stdin < secret.txt
gatehouse check --host example.com --path /admin --source-ip 10.1.2.3 --principal spiffe://cluster.local/ns/prod/sa/web
gatehouse check --host api.internal.example.com -H 'cookie: CF_Authorization=...' -o json | jq -r .decision`,
		define: func(fs *flag.FlagSet) action {
			host := fs.String("host", "", "the request's `host` (:authority; required)")
			path := fs.String("path", "/", "the request's `path`, with any query string")
			method := fs.String("method", "GET", "the request's HTTP `method`")
			var headers headerList
			fs.Var(&headers, "H", "a request header, `\"name: value\"` (repeatable)")
			sourceIP := fs.String("source-ip", "", "the client's `address`, as Envoy would see it")
			principal := fs.String("principal", "", "the client's mTLS peer `principal` (e.g. a SPIFFE ID)")
			app := fs.String("app", "", "decide for this application (`name` or id), as a route's context_extensions can, instead of matching the host and path")
			clientID := fs.String("client-id", "", "add a cf-access-client-id: `id` header")
			secretStdin := fs.Bool("client-secret-stdin", false, "add a cf-access-client-secret header with the secret read from stdin")
			return func(ctx context.Context, s *session, args []string) error {
				if *host == "" {
					return usagef("--host is required")
				}
				req := &adminv1.CheckAccessRequest{
					Host: *host, Path: *path, Method: *method, Headers: headers,
					SourceIp: *sourceIP, Principal: *principal, Application: *app,
				}
				if *clientID != "" {
					req.Headers = append(req.Headers, &adminv1.Header{Name: "cf-access-client-id", Value: *clientID})
				}
				if *secretStdin {
					secret, err := s.readSecret()
					if err != nil {
						return err
					}
					req.Headers = append(req.Headers, &adminv1.Header{Name: "cf-access-client-secret", Value: secret})
				}
				client, err := s.admin()
				if err != nil {
					return err
				}
				resp, err := client.CheckAccess(ctx, req)
				if err != nil {
					return err
				}
				return s.printCheck(resp)
			}
		},
	}}
}
