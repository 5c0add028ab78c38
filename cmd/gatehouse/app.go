package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// printApp prints one application in a detail view.
func (s *session) printApp(a *adminv1.Application) error {
	if s.out.json {
		return s.out.object(a)
	}
	p := s.out
	fields := []field{{"id", a.GetId()}, {"name", a.GetName()}}
	for i, d := range a.GetDomains() {
		key := ""
		if i == 0 {
			key = "domains"
		}
		fields = append(fields, field{key, d})
	}
	fields = append(fields,
		field{"aud", a.GetAud()},
		field{"session duration", a.GetSessionDuration()},
		field{"session cookie", yesNo(a.GetSessionCookie())},
		field{"service token header", orDash(a.GetServiceTokenHeader())},
		field{"dry run", yesNo(a.GetDryRun())},
		field{"sessions revoked", p.exact(a.GetSessionsRevokedAt(), "never")},
		field{"created", p.exact(a.GetCreatedAt(), "-")},
		field{"updated", p.exact(a.GetUpdatedAt(), "-")},
	)
	return p.detail(fields)
}

// appAction is the shape of the commands that take one APP argument and
// return the application.
func appAction(call func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.Application, error)) action {
	return func(ctx context.Context, s *session, args []string) error {
		client, err := s.admin()
		if err != nil {
			return err
		}
		a, err := call(ctx, client, args[0])
		if err != nil {
			return err
		}
		return s.printApp(a)
	}
}

const (
	domainUsage          = "a `host[/path]` the application covers: \"api.example.com\", \"example.com/admin\" or \"*.example.com\" (repeatable)"
	sessionDurationUsage = "lifetime of the session JWTs, a Go `duration`"
	headerUsage          = "also accept the credentials as JSON {\"cf-access-client-id\": ..., \"cf-access-client-secret\": ...} in this request `header`"
)

func appCommands() []*command {
	return []*command{
		{
			path: "app create", args: "NAME", minArgs: 1, maxArgs: 1,
			summary: "protect hosts and paths as an application",
			help: `Creates an application covering the given domains. It denies every request
until a policy lets some in (see "gatehouse help policy create").

A domain is a host ("api.example.com"), a wildcard host ("*.example.com") or a
host and path prefix ("example.com/admin", which covers /admin and /admin/...).
The most specific domain wins when applications overlap.`,
			example: `gatehouse app create internal-api --domain api.internal.example.com
gatehouse app create admin --domain example.com/admin --session-duration 1h --no-session-cookie
gatehouse app create billing --domain billing.example.com --dry-run`,
			define: func(fs *flag.FlagSet) action {
				var domains stringList
				fs.Var(&domains, "domain", domainUsage+"; at least one")
				sessionDuration := fs.String("session-duration", "", sessionDurationUsage+" (default 24h)")
				header := fs.String("service-token-header", "", headerUsage)
				noCookie := fs.Bool("no-session-cookie", false, "strict mode: issue no CF_Authorization cookie, so credentials are needed on every request")
				dryRun := fs.Bool("dry-run", false, "decide and log every request but let it through, to try the policies out")
				return func(ctx context.Context, s *session, args []string) error {
					if len(domains) == 0 {
						return usagef("--domain is required (repeat it for several)")
					}
					req := &adminv1.CreateApplicationRequest{
						Name: args[0], Domains: domains, SessionDuration: *sessionDuration,
						ServiceTokenHeader: *header, DryRun: *dryRun,
					}
					if *noCookie {
						req.SessionCookie = proto.Bool(false)
					}
					return appAction(func(ctx context.Context, c adminv1.AdminServiceClient, _ string) (*adminv1.Application, error) {
						return c.CreateApplication(ctx, req)
					})(ctx, s, args)
				}
			},
		},
		{
			path: "app list", maxArgs: 0,
			summary: "list applications",
			example: `gatehouse app list
gatehouse app list -o json`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.ListApplications(ctx, &adminv1.ListApplicationsRequest{})
					if err != nil {
						return err
					}
					apps := resp.GetApplications()
					if s.out.json {
						return array(s.out, apps)
					}
					rows := make([][]string, len(apps))
					for i, a := range apps {
						rows[i] = []string{a.GetId(), a.GetName(), strings.Join(a.GetDomains(), ", "),
							a.GetSessionDuration(), yesNo(a.GetSessionCookie()), yesNo(a.GetDryRun())}
					}
					return s.out.table([]string{"ID", "NAME", "DOMAINS", "SESSION", "COOKIE", "DRY RUN"}, rows)
				}
			},
		},
		{
			path: "app get", args: "APP", minArgs: 1, maxArgs: 1,
			summary: "show an application",
			help:    `Shows one application, including its aud tag (the audience of its session JWTs). APP is the application's id or name.`,
			example: `gatehouse app get internal-api`,
			define: func(fs *flag.FlagSet) action {
				return appAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.Application, error) {
					return c.GetApplication(ctx, &adminv1.GetApplicationRequest{Id: id})
				})
			},
		},
		{
			path: "app update", args: "APP", minArgs: 1, maxArgs: 1,
			summary: "change an application's name, domains or session settings",
			help: `Changes the given settings of an application and leaves the others alone.
--domain replaces the whole list of domains: repeat it for every domain to
keep.`,
			example: `gatehouse app update internal-api --domain api.internal.example.com --domain api2.internal.example.com
gatehouse app update billing --dry-run=false
gatehouse app update admin --session-cookie=true --session-duration 8h`,
			define: func(fs *flag.FlagSet) action {
				name := fs.String("name", "", "the new `name`")
				var domains stringList
				fs.Var(&domains, "domain", domainUsage+"; replaces the list")
				sessionDuration := fs.String("session-duration", "", sessionDurationUsage)
				header := fs.String("service-token-header", "", headerUsage+"; \"\" for none")
				cookie := fs.Bool("session-cookie", true, "issue a CF_Authorization cookie and accept it back (--session-cookie=false: strict mode)")
				dryRun := fs.Bool("dry-run", false, "--dry-run=true: decide and log but let every request through; --dry-run=false: enforce")
				return func(ctx context.Context, s *session, args []string) error {
					req := &adminv1.UpdateApplicationRequest{Domains: domains}
					if isSet(fs, "name") {
						req.Name = name
					}
					if isSet(fs, "session-duration") {
						req.SessionDuration = sessionDuration
					}
					if isSet(fs, "service-token-header") {
						req.ServiceTokenHeader = header
					}
					if isSet(fs, "session-cookie") {
						req.SessionCookie = cookie
					}
					if isSet(fs, "dry-run") {
						req.DryRun = dryRun
					}
					if proto.Equal(req, &adminv1.UpdateApplicationRequest{}) {
						return usagef("nothing to update: give at least one of --name, --domain, --session-duration, --service-token-header, --session-cookie, --dry-run")
					}
					return appAction(func(ctx context.Context, c adminv1.AdminServiceClient, id string) (*adminv1.Application, error) {
						req.Id = id
						return c.UpdateApplication(ctx, req)
					})(ctx, s, args)
				}
			},
		},
		{
			path: "app delete", args: "APP", minArgs: 1, maxArgs: 1,
			summary: "delete an application and its policies",
			help: `Deletes an application and every policy of it. Requests to its domains then
fall to another application, if one covers them, or are denied. On a terminal
it asks for confirmation; elsewhere --yes is required.`,
			example: `gatehouse app delete billing
gatehouse app delete billing --yes`,
			define: func(fs *flag.FlagSet) action {
				yes := fs.Bool("yes", false, "do not ask for confirmation")
				return func(ctx context.Context, s *session, args []string) error {
					id := args[0]
					err := s.confirm(*yes, func() (string, error) {
						client, err := s.admin()
						if err != nil {
							return "", err
						}
						a, err := client.GetApplication(ctx, &adminv1.GetApplicationRequest{Id: id})
						if err != nil {
							return "", err
						}
						id = a.GetId() // delete what was confirmed, even if names change meanwhile
						ps, err := client.ListPolicies(ctx, &adminv1.ListPoliciesRequest{Application: id})
						if err != nil {
							return "", err
						}
						return fmt.Sprintf("Delete application %s (%s) and its %s?", cell(a.GetName()),
							cell(strings.Join(a.GetDomains(), ", ")), count(len(ps.GetPolicies()), "policy", "policies")), nil
					})
					if err != nil {
						return err
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.DeleteApplication(ctx, &adminv1.DeleteApplicationRequest{Id: id})
					if err != nil {
						return err
					}
					if s.out.json {
						return s.out.object(resp)
					}
					_, err = fmt.Fprintf(s.stdout, "Deleted application %s and %s.\n", cell(args[0]),
						count(len(resp.GetPoliciesDeleted()), "policy", "policies"))
					return err
				}
			},
		},
		{
			path: "app revoke-sessions", args: "APP", minArgs: 1, maxArgs: 1,
			summary: "reject every session JWT issued so far for an application",
			help: `Revokes every session of the application: the session JWTs (and
CF_Authorization cookies) issued until now are rejected. Services that still
hold a valid service token get a new session on their next request, so this
ends sessions without locking anyone out; to lock a service out, disable or
delete its token.`,
			example: `gatehouse app revoke-sessions internal-api`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					a, err := client.RevokeApplicationSessions(ctx, &adminv1.RevokeApplicationSessionsRequest{Id: args[0]})
					if err != nil {
						return err
					}
					if s.out.json {
						return s.out.object(a)
					}
					_, err = fmt.Fprintf(s.stdout, "Revoked the sessions of application %s issued before %s.\n",
						cell(a.GetName()), s.out.exact(a.GetSessionsRevokedAt(), "now"))
					return err
				}
			},
		},
	}
}
