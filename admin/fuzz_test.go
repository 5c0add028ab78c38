package admin_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/policy"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// FuzzAdminInputs drives CreateServiceToken, CreateApplication,
// CreatePolicy and UpdateServiceToken with fuzzed strings through the real
// admin server (gRPC over bufconn, interceptors included) on a real bbolt
// store, then deletes whatever was created.
//
// Properties: no call panics (the server does not recover: a panic would
// crash the fuzz worker) or answers Internal/Unknown; a refused call writes
// nothing and an accepted one leaves a store that loads and compiles
// (policy.Compile of every application and policy); after the clean-up the
// store is as empty as it started.
//
// Strings are made valid UTF-8 first: proto3 refuses invalid UTF-8 in a
// string field before any gatehouse code runs (grpc-go's codec, on either
// side).
func FuzzAdminInputs(f *testing.F) {
	type seed struct {
		name, duration                         string
		appName, domain, session, header       string
		policyName, decision, rule, ruleValue  string
		precedence                             int64
		newName, newDuration                   string
		usePrecedence, setName, setDur, cookie bool
	}
	for _, s := range []seed{
		// Everything valid: created, updated, cleaned up.
		{"ci-deploy", "8760h", "api", "api.example.com", "24h", "x-creds", "ci", "non_identity", "service_token", "", 1, "ci-deploy-2", "forever", true, true, true, true},
		// Wildcard domain with a path, bypass by CIDR, default duration.
		{"t", "", "wild", "*.example.com/api", "", "", "health", "bypass", "ip", "10.0.0.0/8", 0, "", "1h", false, false, true, false},
		// Names at and over the limits, control characters, RTL marks.
		{strings.Repeat("é", 255), "forever", strings.Repeat("a", 256), "a.example.com", "730h", "", "p\x00", "allow", "everyone", "", 0, "\u202egnp.exe", "", false, true, false, true},
		// Durations that overflow, are negative, zero or nonsense.
		{"d", "9999999999h", "a", "b.example.com", "731h", "", "p", "deny", "common_name", "cn", 2147483647, "d", "-1h", true, false, true, false},
		{"d", "0s", "a", "b.example.com", "59s", "", "p", "deny", "principal", "spiffe://x", -5, "d", "1e9h", true, false, true, false},
		// Domains: ports, IP literals, encoded paths, empty labels, Unicode.
		{"x", "1h", "x", "[::1]:443/%2f..", "", "Cookie", "p", "bypass", "ip", "::/0", 0, "", "", false, false, false, true},
		{"x", "1h", "x", "exa mple.com", "", "cf-access-client-secret", "p", "non_identity", "any_valid_service_token", "", 0, "", "", false, false, false, false},
		{"x", "1h", "x", "bücher.example", "", "x\r\ny", "p", "NON_IDENTITY", "service_token", "not-a-uuid", 0, "", "", false, false, false, false},
		{"x", "1h", "x", "..", "", "", "p", "", "certificate", "", 0, "", "", false, false, false, false},
		// The application named by a fuzzed reference; rules with huge values.
		{"x", "1h", "", "*.", "", "", "p", "allow", "principal_prefix", strings.Repeat("/", 5000), 1, "", "", true, false, false, false},
	} {
		f.Add(s.name, s.duration, s.appName, s.domain, s.session, s.header, s.policyName, s.decision, s.rule, s.ruleValue,
			s.precedence, s.newName, s.newDuration, s.usePrecedence, s.setName, s.setDur, s.cookie)
	}

	e := newEnv(f)
	ctx := e.ctx()
	baseline := storeCounts(f, e.db)

	f.Fuzz(func(t *testing.T, name, duration, appName, domain, session, header, policyName, decision, rule, ruleValue string,
		precedence int64, newName, newDuration string, usePrecedence, setName, setDur, cookie bool) {
		v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		var created struct{ token, app string }
		before := storeCounts(t, e.db)
		// call checks one admin call's outcome: no Internal, and a
		// refusal writes nothing.
		call := func(method string, err error) bool {
			t.Helper()
			after := storeCounts(t, e.db)
			if err != nil {
				switch c := status.Code(err); c {
				case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition:
				default:
					t.Fatalf("%s: %v (code %s): want a precise refusal", method, err, c)
				}
				if after != before {
					t.Fatalf("%s refused (%v) but the store changed: %+v -> %+v", method, err, before, after)
				}
				return false
			}
			loadable(t, e.db)
			before = after
			return true
		}
		defer func() {
			// Clean up (DeleteApplication removes the policies too).
			if created.app != "" {
				if _, err := e.client.DeleteApplication(ctx, &adminv1.DeleteApplicationRequest{Id: created.app}); err != nil {
					t.Fatalf("clean-up DeleteApplication: %v", err)
				}
			}
			if created.token != "" {
				if _, err := e.client.DeleteServiceToken(ctx, &adminv1.DeleteServiceTokenRequest{Id: created.token, Force: true}); err != nil {
					t.Fatalf("clean-up DeleteServiceToken: %v", err)
				}
			}
			if got := storeCounts(t, e.db); got != baseline {
				t.Fatalf("store after clean-up = %+v, want %+v: something was half-written", got, baseline)
			}
		}()

		tok, err := e.client.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: v(name), Duration: v(duration)})
		if call("CreateServiceToken", err) {
			created.token = tok.GetId()
			if !tokens.ValidID(tok.GetId()) || !tokens.ValidClientID(tok.GetClientId()) || tok.GetClientSecret() == "" {
				t.Fatalf("created token %v", tok)
			}
		}

		appReq := &adminv1.CreateApplicationRequest{Name: v(appName), Domains: []string{v(domain)},
			SessionDuration: v(session), ServiceTokenHeader: v(header), DryRun: !cookie}
		if cookie {
			appReq.SessionCookie = &cookie
		}
		app, err := e.client.CreateApplication(ctx, appReq)
		if call("CreateApplication", err) {
			created.app = app.GetId()
		}

		ref := created.app
		if ref == "" {
			ref = v(appName) // a reference to something that may not exist
		}
		pr := &adminv1.CreatePolicyRequest{Application: ref, Name: v(policyName), Decision: v(decision),
			SessionDuration: v(session), Include: []*adminv1.Rule{fuzzRule(rule, v(ruleValue), created.token)}}
		if usePrecedence {
			p := int32(precedence)
			pr.Precedence = &p
		}
		if precedence%3 == 2 {
			pr.Exclude = []*adminv1.Rule{fuzzRule(ruleValue, v(rule), "")}
		}
		_, err = e.client.CreatePolicy(ctx, pr)
		call("CreatePolicy", err)

		id := created.token
		if id == "" {
			id = v(name)
		}
		ur := &adminv1.UpdateServiceTokenRequest{Id: id}
		if setName {
			s := v(newName)
			ur.Name = &s
		}
		if setDur {
			s := v(newDuration)
			ur.Duration = &s
		}
		_, err = e.client.UpdateServiceToken(ctx, ur)
		call("UpdateServiceToken", err)
	})
}

// fuzzRule builds a rule of the named kind; a service_token rule names the
// token created in this run when there is one.
func fuzzRule(kind, value, tokenID string) *adminv1.Rule {
	switch kind {
	case "service_token":
		if tokenID != "" && value == "" {
			value = tokenID
		}
		return &adminv1.Rule{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: value}}}
	case "ip":
		return &adminv1.Rule{Selector: &adminv1.Rule_Ip{Ip: &adminv1.IPRule{Ip: value}}}
	case "principal":
		return &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Exact: value}}}
	case "principal_prefix":
		return &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: value}}}
	case "common_name":
		return &adminv1.Rule{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: value}}}
	case "any_valid_service_token":
		return &adminv1.Rule{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}}
	case "certificate":
		return &adminv1.Rule{Selector: &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}}
	case "everyone":
		return &adminv1.Rule{Selector: &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}}
	}
	return &adminv1.Rule{} // no selector at all
}

type counts struct{ tokens, apps, policies int }

func storeCounts(tb testing.TB, db *store.DB) counts {
	tb.Helper()
	var c counts
	err := db.View(func(tx *store.Tx) error {
		if err := tx.ForEachToken(func(*tokens.ServiceToken) error { c.tokens++; return nil }); err != nil {
			return err
		}
		if err := tx.ForEachApp(func(*policy.Application) error { c.apps++; return nil }); err != nil {
			return err
		}
		return tx.ForEachPolicy("", func(*policy.Policy) error { c.policies++; return nil })
	})
	if err != nil {
		tb.Fatalf("reading the store: %v", err)
	}
	return c
}

// loadable checks that the store's applications and policies compile, as
// the server does on every change (a record it cannot compile would stop
// every later publish).
func loadable(tb testing.TB, db *store.DB) {
	tb.Helper()
	var apps []*policy.Application
	var pols []*policy.Policy
	err := db.View(func(tx *store.Tx) error {
		if err := tx.ForEachApp(func(a *policy.Application) error { apps = append(apps, a); return nil }); err != nil {
			return err
		}
		return tx.ForEachPolicy("", func(p *policy.Policy) error { pols = append(pols, p); return nil })
	})
	if err != nil {
		tb.Fatalf("loading the store: %v", err)
	}
	if _, err := policy.Compile(apps, pols); err != nil {
		tb.Fatalf("the store no longer compiles: %v", err)
	}
}
