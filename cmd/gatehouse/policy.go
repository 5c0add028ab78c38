package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// Errors of parseRule.
var (
	// errUnknownSelector: the part before "=" names no selector.
	errUnknownSelector = errors.New("unknown selector")
	// errSelectorValue: a selector that takes a value has none, or one that
	// takes none has one.
	errSelectorValue = errors.New("bad selector value")
)

const selectorList = "service_token=TOKEN, any_valid_service_token, ip=CIDR, principal=ID, principal-prefix=PREFIX, certificate, common_name=CN or everyone"

// parseRule parses a rule in the CLI syntax, SELECTOR or SELECTOR=VALUE (see
// the "policy" group help). Selector names may use "-" or "_". A
// service_token value is kept as typed; resolveRules turns it into a token id.
func parseRule(s string) (*adminv1.Rule, error) {
	name, value, hasValue := strings.Cut(s, "=")
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	var takesValue bool
	switch key {
	case "service_token", "ip", "principal", "principal_prefix", "common_name":
		takesValue = true
	case "any_valid_service_token", "certificate", "everyone":
	default:
		return nil, fmt.Errorf("%w %q: want %s", errUnknownSelector, name, selectorList)
	}
	switch {
	case takesValue && value == "":
		return nil, fmt.Errorf("%w: %s needs a value, as in %s", errSelectorValue, key, example(key))
	case !takesValue && hasValue:
		return nil, fmt.Errorf("%w: %s takes no value", errSelectorValue, key)
	}
	var r adminv1.Rule
	switch key {
	case "service_token":
		r.Selector = &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: value}}
	case "any_valid_service_token":
		r.Selector = &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}
	case "ip":
		if _, err := netip.ParsePrefix(value); err != nil {
			if _, err := netip.ParseAddr(value); err != nil {
				return nil, fmt.Errorf("%w: ip=%s is neither a CIDR nor an IP address", errSelectorValue, value)
			}
		}
		r.Selector = &adminv1.Rule_Ip{Ip: &adminv1.IPRule{Ip: value}}
	case "principal":
		r.Selector = &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Exact: value}}
	case "principal_prefix":
		r.Selector = &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: value}}
	case "certificate":
		r.Selector = &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}
	case "common_name":
		r.Selector = &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: value}}
	case "everyone":
		r.Selector = &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}
	}
	return &r, nil
}

func example(key string) string {
	switch key {
	case "service_token":
		return "service_token=ci-deploy"
	case "ip":
		return "ip=10.0.0.0/8"
	case "principal":
		return "principal=spiffe://cluster.local/ns/default/sa/web"
	case "principal_prefix":
		return "principal-prefix=spiffe://cluster.local/ns/default/"
	}
	return "common_name=client.example.com"
}

// formatRule is the inverse of parseRule.
func formatRule(r *adminv1.Rule) string {
	switch sel := r.GetSelector().(type) {
	case *adminv1.Rule_ServiceToken:
		return "service_token=" + sel.ServiceToken.GetTokenId()
	case *adminv1.Rule_AnyValidServiceToken:
		return "any_valid_service_token"
	case *adminv1.Rule_Ip:
		return "ip=" + sel.Ip.GetIp()
	case *adminv1.Rule_Principal:
		if sel.Principal.GetExact() != "" {
			return "principal=" + sel.Principal.GetExact()
		}
		return "principal-prefix=" + sel.Principal.GetPrefix()
	case *adminv1.Rule_Certificate:
		return "certificate"
	case *adminv1.Rule_CommonName:
		return "common_name=" + sel.CommonName.GetCommonName()
	case *adminv1.Rule_Everyone:
		return "everyone"
	}
	return "(unknown selector)"
}

func formatRules(rs []*adminv1.Rule) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = formatRule(r)
	}
	return strings.Join(parts, ", ")
}

// ruleList is a repeatable --include/--require/--exclude flag; a rule with a
// bad syntax is a usage error naming the flag and the rule.
type ruleList []*adminv1.Rule

func (l *ruleList) String() string { return formatRules(*l) }

func (l *ruleList) Set(v string) error {
	r, err := parseRule(v)
	if err != nil {
		return err
	}
	*l = append(*l, r)
	return nil
}

// resolveRules replaces each service_token value given as a client id or a
// name by the token's id, which is what a rule holds.
func (s *session) resolveRules(ctx context.Context, lists ...ruleList) error {
	for _, l := range lists {
		for _, r := range l {
			st := r.GetServiceToken()
			if st == nil || uuidRE.MatchString(st.GetTokenId()) {
				continue
			}
			id, err := s.resolveToken(ctx, st.GetTokenId())
			if err != nil {
				return fmt.Errorf("service_token=%s: %w", st.GetTokenId(), err)
			}
			if !uuidRE.MatchString(id) { // a client id: ask for the token's id
				client, err := s.admin()
				if err != nil {
					return err
				}
				t, err := client.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: id})
				if err != nil {
					return err
				}
				id = t.GetId()
			}
			st.TokenId = id
		}
	}
	return nil
}

// appNames maps application ids to names, for tables; on error it is empty
// and tables show ids.
func (s *session) appNames(ctx context.Context) map[string]string {
	names := map[string]string{}
	client, err := s.admin()
	if err != nil {
		return names
	}
	resp, err := client.ListApplications(ctx, &adminv1.ListApplicationsRequest{})
	if err != nil {
		return names
	}
	for _, a := range resp.GetApplications() {
		names[a.GetId()] = a.GetName()
	}
	return names
}

// printPolicy prints one policy in a detail view.
func (s *session) printPolicy(ctx context.Context, p *adminv1.Policy) error {
	if s.out.json {
		return s.out.object(p)
	}
	app := p.GetApplicationId()
	if name, ok := s.appNames(ctx)[app]; ok {
		app = name + " (" + app + ")"
	}
	fields := []field{
		{"id", p.GetId()},
		{"name", p.GetName()},
		{"application", app},
		{"decision", p.GetDecision()},
		{"precedence", fmt.Sprint(p.GetPrecedence())},
	}
	for _, list := range []struct {
		key   string
		rules []*adminv1.Rule
	}{{"include", p.GetInclude()}, {"require", p.GetRequire()}, {"exclude", p.GetExclude()}} {
		if len(list.rules) == 0 {
			fields = append(fields, field{list.key, "-"})
		}
		for i, r := range list.rules {
			key := ""
			if i == 0 {
				key = list.key
			}
			fields = append(fields, field{key, formatRule(r)})
		}
	}
	sd := p.GetSessionDuration()
	if sd == "" {
		sd = "the application's"
	}
	fields = append(fields,
		field{"session duration", sd},
		field{"created", s.out.exact(p.GetCreatedAt(), "-")},
		field{"updated", s.out.exact(p.GetUpdatedAt(), "-")},
	)
	return s.out.detail(fields)
}

func rulesSummary(p *adminv1.Policy) string {
	var parts []string
	if len(p.GetInclude()) > 0 {
		parts = append(parts, "include: "+formatRules(p.GetInclude()))
	}
	if len(p.GetRequire()) > 0 {
		parts = append(parts, "require: "+formatRules(p.GetRequire()))
	}
	if len(p.GetExclude()) > 0 {
		parts = append(parts, "exclude: "+formatRules(p.GetExclude()))
	}
	return strings.Join(parts, "; ")
}

const (
	decisionUsage = "the `decision` for matching requests: non_identity (service auth), allow, deny or bypass"
	includeUsage  = "a `rule` of which at least one must match (repeatable)"
	requireUsage  = "a `rule` that must match (repeatable)"
	excludeUsage  = "a `rule` that must not match (repeatable)"
	rulesHelp     = `Rules (for --include, --require and --exclude, each repeatable):
  service_token=TOKEN       a service token, by id, client id or name
  any_valid_service_token   any enabled, unexpired service token
  ip=CIDR                   the client address is in CIDR (or equals an address)
  principal=ID              the mTLS peer principal is exactly ID (a SPIFFE ID)
  principal-prefix=PREFIX   the mTLS peer principal starts with PREFIX
  certificate               the client presented any certificate
  common_name=CN            the client certificate's common name is CN
  everyone                  every request`
)

func policyCommands() []*command {
	return []*command{
		{
			path: "policy create", args: "APP NAME", minArgs: 2, maxArgs: 2,
			summary: "add a policy to an application",
			help: `Adds a policy to the application APP (id or name). A request matches the policy
when at least one --include rule, every --require rule and no --exclude rule
match it; the policy's --decision then applies. "non_identity" is Cloudflare's
Service Auth: it admits service tokens (and other non-identity rules) and
issues a session JWT. Without --precedence the policy goes after the
application's existing ones.

` + rulesHelp,
			example: `gatehouse policy create internal-api ci --decision non_identity --include service_token=ci-deploy
gatehouse policy create internal-api mesh --decision non_identity --include principal-prefix=spiffe://cluster.local/ns/prod/ --require ip=10.0.0.0/8
gatehouse policy create internal-api health --decision bypass --include everyone --precedence 1`,
			define: func(fs *flag.FlagSet) action {
				decision := fs.String("decision", "", decisionUsage+" (required)")
				precedence := fs.Int("precedence", 0, "the policy's place `n` among the application's policies, lowest first (default: after the last)")
				var include, require, exclude ruleList
				fs.Var(&include, "include", includeUsage+"; at least one is required")
				fs.Var(&require, "require", requireUsage)
				fs.Var(&exclude, "exclude", excludeUsage)
				sessionDuration := fs.String("session-duration", "", "lifetime of the session JWTs issued through this policy, a Go `duration` (default: the application's)")
				return func(ctx context.Context, s *session, args []string) error {
					if *decision == "" {
						return usagef("--decision is required: non_identity, allow, deny or bypass")
					}
					if len(include) == 0 {
						return usagef("at least one --include rule is required, e.g. --include service_token=TOKEN")
					}
					req := &adminv1.CreatePolicyRequest{
						Application: args[0], Name: args[1], Decision: *decision,
						Include: include, Require: require, Exclude: exclude, SessionDuration: *sessionDuration,
					}
					if isSet(fs, "precedence") {
						if int(int32(*precedence)) != *precedence {
							return usagef("--precedence %d is out of range", *precedence)
						}
						req.Precedence = proto.Int32(int32(*precedence))
					}
					if err := s.resolveRules(ctx, include, require, exclude); err != nil {
						return err
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					p, err := client.CreatePolicy(ctx, req)
					if err != nil {
						return err
					}
					return s.printPolicy(ctx, p)
				}
			},
		},
		{
			path: "policy list", args: "[APP]", maxArgs: 1,
			summary: "list the policies of one application, or of all",
			help:    `Lists policies by application and precedence, the order in which they are tried.`,
			example: `gatehouse policy list
gatehouse policy list internal-api -o json`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					req := &adminv1.ListPoliciesRequest{}
					if len(args) == 1 {
						req.Application = args[0]
					}
					resp, err := client.ListPolicies(ctx, req)
					if err != nil {
						return err
					}
					ps := resp.GetPolicies()
					if s.out.json {
						return array(s.out, ps)
					}
					names := s.appNames(ctx)
					rows := make([][]string, len(ps))
					for i, p := range ps {
						app := p.GetApplicationId()
						if n, ok := names[app]; ok {
							app = n
						}
						rows[i] = []string{p.GetId(), app, fmt.Sprint(p.GetPrecedence()), p.GetName(), p.GetDecision(), rulesSummary(p)}
					}
					return s.out.table([]string{"ID", "APPLICATION", "PRECEDENCE", "NAME", "DECISION", "RULES"}, rows)
				}
			},
		},
		{
			path: "policy get", args: "POLICY", minArgs: 1, maxArgs: 1,
			summary: "show a policy and its rules",
			help:    `Shows one policy, by id, with its rules in the syntax that --include takes.`,
			example: `gatehouse policy get 3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					p, err := client.GetPolicy(ctx, &adminv1.GetPolicyRequest{Id: args[0]})
					if err != nil {
						return err
					}
					return s.printPolicy(ctx, p)
				}
			},
		},
		{
			path: "policy update", args: "POLICY", minArgs: 1, maxArgs: 1,
			summary: "change a policy's name, decision, precedence or rules",
			help: `Changes the given settings of a policy (by id) and leaves the others alone.
Each of --include, --require and --exclude, when given, replaces that whole
list (repeat it for every rule to keep); the lists not given are kept as they
are. --no-require and --no-exclude empty those lists.

` + rulesHelp,
			example: `gatehouse policy update 3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b --precedence 1
gatehouse policy update 3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b --include service_token=ci-deploy --include service_token=ci-staging
gatehouse policy update 3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b --no-exclude`,
			define: func(fs *flag.FlagSet) action {
				name := fs.String("name", "", "the new `name`")
				decision := fs.String("decision", "", decisionUsage)
				precedence := fs.Int("precedence", 0, "the new precedence `n` (lowest first)")
				var include, require, exclude ruleList
				fs.Var(&include, "include", includeUsage+"; replaces the include list")
				fs.Var(&require, "require", requireUsage+"; replaces the require list")
				fs.Var(&exclude, "exclude", excludeUsage+"; replaces the exclude list")
				noRequire := fs.Bool("no-require", false, "remove every require rule")
				noExclude := fs.Bool("no-exclude", false, "remove every exclude rule")
				sessionDuration := fs.String("session-duration", "", "lifetime of the session JWTs issued through this policy, a Go `duration`; \"\" for the application's")
				return func(ctx context.Context, s *session, args []string) error {
					if *noRequire && len(require) > 0 {
						return usagef("--no-require and --require contradict each other")
					}
					if *noExclude && len(exclude) > 0 {
						return usagef("--no-exclude and --exclude contradict each other")
					}
					req := &adminv1.UpdatePolicyRequest{Id: args[0]}
					if isSet(fs, "name") {
						req.Name = name
					}
					if isSet(fs, "decision") {
						req.Decision = decision
					}
					if isSet(fs, "precedence") {
						if int(int32(*precedence)) != *precedence {
							return usagef("--precedence %d is out of range", *precedence)
						}
						req.Precedence = proto.Int32(int32(*precedence))
					}
					if isSet(fs, "session-duration") {
						req.SessionDuration = sessionDuration
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					if len(include) > 0 || len(require) > 0 || len(exclude) > 0 || *noRequire || *noExclude {
						// The API replaces the three lists together: start
						// from the current ones so that only those given change.
						cur, err := client.GetPolicy(ctx, &adminv1.GetPolicyRequest{Id: args[0]})
						if err != nil {
							return err
						}
						if err := s.resolveRules(ctx, include, require, exclude); err != nil {
							return err
						}
						req.ReplaceRules = true
						req.Include, req.Require, req.Exclude = cur.GetInclude(), cur.GetRequire(), cur.GetExclude()
						if len(include) > 0 {
							req.Include = include
						}
						if len(require) > 0 || *noRequire {
							req.Require = require
						}
						if len(exclude) > 0 || *noExclude {
							req.Exclude = exclude
						}
					}
					if proto.Equal(req, &adminv1.UpdatePolicyRequest{Id: args[0]}) {
						return usagef("nothing to update: give at least one of --name, --decision, --precedence, --include, --require, --exclude, --no-require, --no-exclude, --session-duration")
					}
					p, err := client.UpdatePolicy(ctx, req)
					if err != nil {
						return err
					}
					return s.printPolicy(ctx, p)
				}
			},
		},
		{
			path: "policy delete", args: "POLICY", minArgs: 1, maxArgs: 1,
			summary: "delete a policy",
			help: `Deletes a policy (by id). Requests it admitted fall to the application's next
policies, or are denied. On a terminal it asks for confirmation; elsewhere
--yes is required.`,
			example: `gatehouse policy delete 3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b --yes`,
			define: func(fs *flag.FlagSet) action {
				yes := fs.Bool("yes", false, "do not ask for confirmation")
				return func(ctx context.Context, s *session, args []string) error {
					err := s.confirm(*yes, func() (string, error) {
						client, err := s.admin()
						if err != nil {
							return "", err
						}
						p, err := client.GetPolicy(ctx, &adminv1.GetPolicyRequest{Id: args[0]})
						if err != nil {
							return "", err
						}
						app := p.GetApplicationId()
						if n, ok := s.appNames(ctx)[app]; ok {
							app = n
						}
						return fmt.Sprintf("Delete policy %s (%s) of application %s?", cell(p.GetName()), p.GetDecision(), cell(app)), nil
					})
					if err != nil {
						return err
					}
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.DeletePolicy(ctx, &adminv1.DeletePolicyRequest{Id: args[0]})
					if err != nil {
						return err
					}
					if s.out.json {
						return s.out.object(resp)
					}
					_, err = fmt.Fprintf(s.stdout, "Deleted policy %s.\n", resp.GetId())
					return err
				}
			},
		},
	}
}
