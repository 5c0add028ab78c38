package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

var (
	uuidRE     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	clientIDRE = regexp.MustCompile(`^[0-9a-f]{32}\.access$`)
)

// resolveToken turns a TOKEN argument into something GetServiceToken and
// friends accept: an id or a client id as is, otherwise the id of the one
// token with exactly that name.
func (s *session) resolveToken(ctx context.Context, arg string) (string, error) {
	if uuidRE.MatchString(arg) || clientIDRE.MatchString(arg) {
		return arg, nil
	}
	client, err := s.admin()
	if err != nil {
		return "", err
	}
	resp, err := client.ListServiceTokens(ctx, &adminv1.ListServiceTokensRequest{NameContains: arg})
	if err != nil {
		return "", err
	}
	var found []*adminv1.ServiceToken
	for _, t := range resp.GetServiceTokens() {
		if t.GetName() == arg {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no service token has the id, client id or name %q", arg)
	case 1:
		return found[0].GetId(), nil
	}
	ids := make([]string, len(found))
	for i, t := range found {
		ids[i] = t.GetId()
	}
	return "", fmt.Errorf("%d service tokens are named %q: use an id (%s)", len(found), arg, strings.Join(ids, ", "))
}

func tokenStatus(t *adminv1.ServiceToken, now time.Time) string {
	switch {
	case !t.GetEnabled():
		return "disabled"
	case t.GetExpiresAt() != nil && !t.GetExpiresAt().AsTime().After(now):
		return "expired"
	}
	return "active"
}

// printToken prints one token in a detail view.
func (s *session) printToken(t *adminv1.ServiceToken) error {
	if s.out.json {
		return s.out.object(t)
	}
	p := s.out
	fields := []field{
		{"id", t.GetId()},
		{"name", t.GetName()},
		{"client id", t.GetClientId()},
		{"status", tokenStatus(t, p.clock())},
		{"duration", t.GetDuration()},
		{"expires", p.exact(t.GetExpiresAt(), "never")},
		{"last seen", p.exact(t.GetLastSeenAt(), "never")},
		{"created", p.exact(t.GetCreatedAt(), "-")},
		{"updated", p.exact(t.GetUpdatedAt(), "-")},
		{"secret version", fmt.Sprint(t.GetClientSecretVersion())},
	}
	if prev := t.GetPreviousClientSecretExpiresAt(); prev != nil && prev.AsTime().After(p.clock()) {
		fields = append(fields, field{"previous secret valid until", p.exact(prev, "")})
	}
	for i, a := range t.GetApplications() {
		key := ""
		if i == 0 {
			key = "applications"
		}
		fields = append(fields, field{key, a.GetName() + " (" + a.GetId() + ")"})
	}
	return p.detail(fields)
}

// printSecret prints a token that carries its client secret (create,
// rotate): the only time anyone sees it.
func (s *session) printSecret(t *adminv1.ServiceToken) error {
	if s.out.json {
		return s.out.object(t)
	}
	secret := t.GetClientSecret()
	shown := proto.Clone(t).(*adminv1.ServiceToken)
	shown.ClientSecret = ""
	if err := s.printToken(shown); err != nil {
		return err
	}
	if secret == "" {
		return nil
	}
	_, err := fmt.Fprintf(s.stdout, `
Client secret: %s
This is the only time the client secret is shown. Store it now.

cf-access-client-id: %s
cf-access-client-secret: %s
`, secret, t.GetClientId(), secret)
	return err
}

// readSecret reads a client secret from stdin: without echo from a terminal,
// else the first line of what is piped in. A secret never goes on the command
// line, where ps and shell history would see it.
func (s *session) readSecret() (string, error) {
	if s.terminal() {
		fmt.Fprint(s.stderr, "Client secret: ")
		if f, ok := s.stdin.(*os.File); ok {
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(s.stderr)
			if err == nil {
				return nonEmptySecret(strings.TrimSpace(string(b)))
			}
			// Not a real terminal (a character device like /dev/null):
			// read it as a plain line below.
		}
	}
	line, err := s.readLine()
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the client secret from stdin: %w", err)
	}
	return nonEmptySecret(line)
}

func nonEmptySecret(s string) (string, error) {
	if s == "" {
		return "", usagef("no client secret on stdin: pipe it in, e.g. < secret.txt")
	}
	return s, nil
}

// tokenAction is the shape of the commands that take one TOKEN argument and
// return the token.
func tokenAction(call func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error)) action {
	return func(ctx context.Context, s *session, args []string) error {
		id, err := s.resolveToken(ctx, args[0])
		if err != nil {
			return err
		}
		client, err := s.admin()
		if err != nil {
			return err
		}
		t, err := call(ctx, client, id)
		if err != nil {
			return err
		}
		return s.printToken(t)
	}
}

const durationUsage = "how long the token is valid: a Go `duration` such as 8760h, 720h or 90m, or \"forever\""

func tokenCommands() []*command {
	return []*command{
		{
			path: "token create", args: "NAME", minArgs: 1, maxArgs: 1,
			summary: "create a service token and print its client secret, once",
			help: `Creates a service token with a new client id and client secret. The secret is
printed once, with the two headers a service sends, ready to paste; gatehouse
keeps only a digest of it, so store it now. If it is lost, rotate the token.

A policy must name the token (--include service_token=NAME) or accept any
token (--include any_valid_service_token) for it to open anything.`,
			example: `gatehouse token create ci-deploy
gatehouse token create backup-job --duration forever
gatehouse token create ci-deploy -o json | jq -r .client_secret`,
			define: func(fs *flag.FlagSet) action {
				duration := fs.String("duration", "", durationUsage+" (default 8760h, one year)")
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					t, err := client.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: args[0], Duration: *duration})
					if err != nil {
						return err
					}
					return s.printSecret(t)
				}
			},
		},
		{
			path: "token list", maxArgs: 0,
			summary: "list service tokens, without their secrets",
			help: `Lists service tokens ordered by name. The filters combine: a token is listed
when it passes all of them.`,
			example: `gatehouse token list
gatehouse token list --expiring-within 168h
gatehouse token list --name ci -o json`,
			define: func(fs *flag.FlagSet) action {
				name := fs.String("name", "", "only tokens whose name contains `text` (case-insensitive)")
				within := fs.String("expiring-within", "", "only tokens that expire within `duration` from now (e.g. 168h), not those already expired")
				expired := fs.Bool("expired", false, "only expired tokens")
				disabled := fs.Bool("disabled", false, "only disabled tokens")
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.ListServiceTokens(ctx, &adminv1.ListServiceTokensRequest{
						NameContains: *name, ExpiringWithin: *within, Expired: *expired, Disabled: *disabled,
					})
					if err != nil {
						return err
					}
					ts := resp.GetServiceTokens()
					if s.out.json {
						return array(s.out, ts)
					}
					rows := make([][]string, len(ts))
					for i, t := range ts {
						rows[i] = []string{t.GetId(), t.GetName(), t.GetClientId(), tokenStatus(t, s.now()),
							s.out.ago(t.GetExpiresAt(), "never"), s.out.ago(t.GetLastSeenAt(), "never")}
					}
					return s.out.table([]string{"ID", "NAME", "CLIENT ID", "STATUS", "EXPIRES", "LAST SEEN"}, rows)
				}
			},
		},
		{
			path: "token get", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "show a service token and the applications that use it",
			help: `Shows one service token (never its secret) with its exact times and the
applications whose policies name it. TOKEN is the token's id, client id or
name.`,
			example: `gatehouse token get ci-deploy
gatehouse token get 88bf3b6d86161464f6509f7219099e57.access -o json`,
			define: func(fs *flag.FlagSet) action {
				return tokenAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error) {
					return c.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: id})
				})
			},
		},
		{
			path: "token update", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "rename a service token or change its duration",
			help: `Changes the name and/or the duration of a service token. A new duration also
moves the expiry to now + duration, as Cloudflare Access does. The client id
and secret do not change.`,
			example: `gatehouse token update ci-deploy --name ci-deploy-prod
gatehouse token update ci-deploy --duration 2160h`,
			define: func(fs *flag.FlagSet) action {
				name := fs.String("name", "", "the new `name`")
				duration := fs.String("duration", "", durationUsage+"; the token then expires that long from now")
				return func(ctx context.Context, s *session, args []string) error {
					req := &adminv1.UpdateServiceTokenRequest{}
					if isSet(fs, "name") {
						req.Name = name
					}
					if isSet(fs, "duration") {
						req.Duration = duration
					}
					if req.Name == nil && req.Duration == nil {
						return usagef("nothing to update: give --name and/or --duration")
					}
					return tokenAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error) {
						req.Id = id
						return c.UpdateServiceToken(ctx, req)
					})(ctx, s, args)
				}
			},
		},
		{
			path: "token refresh", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "extend a service token's expiry by its duration, keeping the secret",
			help: `Sets the token's expiry to now + its duration (one year by default), as
Cloudflare Access's refresh does. The client secret does not change, so the
services using the token need nothing new.`,
			example: `gatehouse token refresh ci-deploy`,
			define: func(fs *flag.FlagSet) action {
				return tokenAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error) {
					return c.RefreshServiceToken(ctx, &adminv1.RefreshServiceTokenRequest{Id: id})
				})
			},
		},
		{
			path: "token rotate", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "issue a new client secret for the same client id, printed once",
			help: `Issues a new client secret for the token; the client id stays the same. Without
--grace the previous secret stops working at once; with --grace it keeps
working for that long (1h to 720h), so that services can be moved to the new
secret without downtime. Disabling the token ends the grace period at once.`,
			example: `gatehouse token rotate ci-deploy
gatehouse token rotate ci-deploy --grace 24h`,
			define: func(fs *flag.FlagSet) action {
				grace := fs.String("grace", "", "keep the previous secret valid for this `duration` (1h to 720h; default: revoke it at once)")
				return func(ctx context.Context, s *session, args []string) error {
					id, err := s.resolveToken(ctx, args[0])
					if err != nil {
						return err
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					t, err := client.RotateServiceToken(ctx, &adminv1.RotateServiceTokenRequest{Id: id, Grace: *grace})
					if err != nil {
						return err
					}
					return s.printSecret(t)
				}
			},
		},
		{
			path: "token disable", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "stop a service token from authenticating (reversible)",
			help: `Disables a service token: requests presenting it are denied until it is
enabled again. A rotation grace period ends at once. The token and its
policies are kept.`,
			example: `gatehouse token disable ci-deploy`,
			define: func(fs *flag.FlagSet) action {
				return tokenAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error) {
					return c.SetServiceTokenEnabled(ctx, &adminv1.SetServiceTokenEnabledRequest{Id: id, Enabled: false})
				})
			},
		},
		{
			path: "token enable", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "let a disabled service token authenticate again",
			help:    `Re-enables a disabled service token. Its expiry is unchanged.`,
			example: `gatehouse token enable ci-deploy`,
			define: func(fs *flag.FlagSet) action {
				return tokenAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.ServiceToken, error) {
					return c.SetServiceTokenEnabled(ctx, &adminv1.SetServiceTokenEnabledRequest{Id: id, Enabled: true})
				})
			},
		},
		{
			path: "token import", args: "NAME", minArgs: 1, maxArgs: 1,
			summary: "register an existing client id and secret (e.g. from Cloudflare Access)",
			help: `Registers a service token whose client id and secret already exist, for
example a Cloudflare Access service token, so that the services using it keep
their credentials. The client secret is read from stdin (the first line,
trimmed), never from the command line; on a terminal it is asked for without
echo. gatehouse stores only a digest of it.`,
			example: `gatehouse token import legacy-ci --client-id 88bf3b6d86161464f6509f7219099e57.access < secret.txt
pass show cf/legacy-ci | gatehouse token import legacy-ci --client-id 88bf3b6d86161464f6509f7219099e57.access`,
			define: func(fs *flag.FlagSet) action {
				clientID := fs.String("client-id", "", "the existing client `id` (32 hex characters + \".access\"; required)")
				duration := fs.String("duration", "", durationUsage+" (default 8760h, one year)")
				return func(ctx context.Context, s *session, args []string) error {
					if *clientID == "" {
						return usagef("--client-id is required")
					}
					secret, err := s.readSecret()
					if err != nil {
						return err
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					t, err := client.ImportServiceToken(ctx, &adminv1.ImportServiceTokenRequest{
						Name: args[0], ClientId: *clientID, ClientSecret: secret, Duration: *duration,
					})
					if err != nil {
						return err
					}
					return s.printToken(t)
				}
			},
		},
		{
			path: "token delete", args: "TOKEN", minArgs: 1, maxArgs: 1,
			summary: "delete a service token for good",
			help: `Deletes a service token; requests presenting it are denied from then on. While
a policy names the token the deletion fails; --force removes the token from
those policies in the same transaction. On a terminal it asks for
confirmation; elsewhere --yes is required.`,
			example: `gatehouse token delete ci-deploy
gatehouse token delete 88bf3b6d86161464f6509f7219099e57.access --yes --force`,
			define: func(fs *flag.FlagSet) action {
				yes := fs.Bool("yes", false, "do not ask for confirmation")
				force := fs.Bool("force", false, "also remove the token from the policies that name it")
				return func(ctx context.Context, s *session, args []string) error {
					id := ""
					err := s.confirm(*yes, func() (string, error) {
						var err error
						if id, err = s.resolveToken(ctx, args[0]); err != nil {
							return "", err
						}
						client, err := s.admin()
						if err != nil {
							return "", err
						}
						t, err := client.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: id})
						if err != nil {
							return "", err
						}
						return fmt.Sprintf("Delete service token %s (%s)?", cell(t.GetName()), t.GetClientId()), nil
					})
					if err != nil {
						return err
					}
					if id == "" {
						if id, err = s.resolveToken(ctx, args[0]); err != nil {
							return err
						}
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.DeleteServiceToken(ctx, &adminv1.DeleteServiceTokenRequest{Id: id, Force: *force})
					if status.Code(err) == codes.FailedPrecondition && !*force {
						return &hintError{err: err, hint: "pass --force to remove it from those policies as well"}
					}
					if err != nil {
						return err
					}
					if s.out.json {
						return s.out.object(resp)
					}
					fmt.Fprintf(s.stdout, "Deleted service token %s.\n", cell(args[0]))
					if p := resp.GetPoliciesUpdated(); len(p) > 0 {
						fmt.Fprintf(s.stdout, "Removed it from %s: %s.\n", count(len(p), "policy", "policies"), cell(strings.Join(p, ", ")))
					}
					return nil
				}
			},
		},
	}
}
