package admin_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestApplicationLifecycle(t *testing.T) {
	e := newEnv(t)
	a, err := e.client.CreateApplication(e.ctx(), &adminv1.CreateApplicationRequest{
		Name:               "billing",
		Domains:            []string{"Billing.Example.COM.", "api.example.com/v1/", "*.internal.example.com"},
		ServiceTokenHeader: "X-Service-Token",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDomains := []string{"billing.example.com", "api.example.com/v1", "*.internal.example.com"}
	if !slices.Equal(a.Domains, wantDomains) || a.SessionDuration != "24h" || !a.SessionCookie ||
		!hex64.MatchString(a.Aud) || a.ServiceTokenHeader != "x-service-token" || a.DryRun || a.SessionsRevokedAt != nil {
		t.Fatalf("CreateApplication = %v", a)
	}

	strict, err := e.client.CreateApplication(e.ctx(), &adminv1.CreateApplicationRequest{
		Name: "strict", Domains: []string{"strict.example.com"}, SessionCookie: ptr(false), SessionDuration: "15m", DryRun: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if strict.SessionCookie || strict.SessionDuration != "15m" || !strict.DryRun || strict.Aud == a.Aud {
		t.Fatalf("strict app = %v", strict)
	}

	for _, ref := range []string{a.Id, "billing"} {
		got, err := e.client.GetApplication(e.ctx(), &adminv1.GetApplicationRequest{Id: ref})
		if err != nil || got.Id != a.Id {
			t.Fatalf("GetApplication(%s) = %v, %v", ref, got, err)
		}
	}
	list, err := e.client.ListApplications(e.ctx(), &adminv1.ListApplicationsRequest{})
	if err != nil || len(list.Applications) != 2 || list.Applications[0].Name != "billing" || list.Applications[1].Name != "strict" {
		t.Fatalf("ListApplications = %v, %v", list, err)
	}

	e.clk.Add(time.Minute)
	upd, err := e.client.UpdateApplication(e.ctx(), &adminv1.UpdateApplicationRequest{
		Id: "billing", Name: ptr("billing-v2"), Domains: []string{"billing.example.com/v2"},
		SessionDuration: ptr("1h"), SessionCookie: ptr(false), DryRun: ptr(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "billing-v2" || !slices.Equal(upd.Domains, []string{"billing.example.com/v2"}) || upd.SessionDuration != "1h" ||
		upd.SessionCookie || !upd.DryRun || upd.Aud != a.Aud || upd.ServiceTokenHeader != "x-service-token" ||
		!upd.UpdatedAt.AsTime().Equal(t0.Add(time.Minute)) || !upd.CreatedAt.AsTime().Equal(t0) {
		t.Fatalf("UpdateApplication = %v", upd)
	}
	// Empty domains keep the list; an explicit "" header clears it.
	upd, err = e.client.UpdateApplication(e.ctx(), &adminv1.UpdateApplicationRequest{Id: a.Id, ServiceTokenHeader: ptr("")})
	if err != nil || len(upd.Domains) != 1 || upd.ServiceTokenHeader != "" {
		t.Fatalf("UpdateApplication header = %v, %v", upd, err)
	}

	e.clk.Add(time.Minute)
	rev, err := e.client.RevokeApplicationSessions(e.ctx(), &adminv1.RevokeApplicationSessionsRequest{Id: a.Id})
	if err != nil || !rev.SessionsRevokedAt.AsTime().Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("RevokeApplicationSessions = %v, %v", rev, err)
	}

	tok := e.createToken("t", "")
	p1, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{Application: a.Id, Name: "p1", Decision: "non_identity", Include: []*adminv1.Rule{tokenRule(tok.Id)}})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{Application: a.Id, Name: "p2", Decision: "deny", Include: []*adminv1.Rule{everyone()}})
	if err != nil {
		t.Fatal(err)
	}
	pStrict, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{Application: "strict", Name: "p", Decision: "bypass", Include: []*adminv1.Rule{everyone()}})
	if err != nil {
		t.Fatal(err)
	}
	del, err := e.client.DeleteApplication(e.ctx(), &adminv1.DeleteApplicationRequest{Id: "billing-v2"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(del.PoliciesDeleted)
	want := []string{p1.Id, p2.Id}
	slices.Sort(want)
	if del.Id != a.Id || !slices.Equal(del.PoliciesDeleted, want) {
		t.Fatalf("DeleteApplication = %v, want policies %v", del, want)
	}
	pl, err := e.client.ListPolicies(e.ctx(), &adminv1.ListPoliciesRequest{})
	if err != nil || len(pl.Policies) != 1 || pl.Policies[0].Id != pStrict.Id {
		t.Fatalf("policies after cascade = %v, %v", pl, err)
	}
	_, err = e.client.GetApplication(e.ctx(), &adminv1.GetApplicationRequest{Id: a.Id})
	wantStatus(t, err, codes.NotFound, a.Id)
	// The token no longer counts as used.
	got, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
	if err != nil || len(got.Applications) != 0 {
		t.Fatalf("token applications after app delete = %v, %v", got, err)
	}
	// The domain is free again.
	e.createApp("billing-again", "billing.example.com/v2")
}

func TestApplicationBadInput(t *testing.T) {
	e := newEnv(t)
	e.createApp("taken", "taken.example.com", "example.com/api")
	tests := []struct {
		name string
		req  *adminv1.CreateApplicationRequest
		code codes.Code
		msgs []string
	}{
		{"no name", &adminv1.CreateApplicationRequest{Domains: []string{"a.example.com"}}, codes.InvalidArgument, []string{"name: "}},
		{"256-char name", &adminv1.CreateApplicationRequest{Name: strings.Repeat("n", 256), Domains: []string{"a.example.com"}}, codes.InvalidArgument, []string{"name: "}},
		{"duplicate name", &adminv1.CreateApplicationRequest{Name: "taken", Domains: []string{"a.example.com"}}, codes.AlreadyExists, []string{"name: "}},
		{"no domains", &adminv1.CreateApplicationRequest{Name: "a"}, codes.InvalidArgument, []string{"domains: "}},
		{"scheme", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"https://a.example.com"}}, codes.InvalidArgument, []string{"domains[0]: "}},
		{"port", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"ok.example.com", "a.example.com:8443"}}, codes.InvalidArgument, []string{"domains[1]: "}},
		{"bad wildcard", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.*.example.com"}}, codes.InvalidArgument, []string{"domains[0]: "}},
		{"duplicate after normalising", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com", "A.EXAMPLE.COM/"}}, codes.InvalidArgument, []string{"domains[1]: ", "domains[0]"}},
		{"domain of another app", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com", "Example.com/api/"}}, codes.AlreadyExists, []string{"domains[1]: ", `"taken"`}},
		{"bad session", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com"}, SessionDuration: "abc"}, codes.InvalidArgument, []string{"session_duration: "}},
		{"zero session", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com"}, SessionDuration: "0s"}, codes.InvalidArgument, []string{"session_duration: "}},
		{"session over a month", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com"}, SessionDuration: "731h"}, codes.InvalidArgument, []string{"session_duration: "}},
		{"reserved header", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com"}, ServiceTokenHeader: "Cookie"}, codes.InvalidArgument, []string{"service_token_header: "}},
		{"header with space", &adminv1.CreateApplicationRequest{Name: "a", Domains: []string{"a.example.com"}, ServiceTokenHeader: "x token"}, codes.InvalidArgument, []string{"service_token_header: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.CreateApplication(e.ctx(), tt.req)
			wantStatus(t, err, tt.code, tt.msgs...)
		})
	}
	list, err := e.client.ListApplications(e.ctx(), &adminv1.ListApplicationsRequest{})
	if err != nil || len(list.Applications) != 1 {
		t.Fatalf("failed creates left applications behind: %v, %v", list, err)
	}

	other := e.createApp("other", "other.example.com")
	upd := []struct {
		name string
		req  *adminv1.UpdateApplicationRequest
		code codes.Code
		msg  string
	}{
		{"no id", &adminv1.UpdateApplicationRequest{Name: ptr("x")}, codes.InvalidArgument, "id: "},
		{"unknown", &adminv1.UpdateApplicationRequest{Id: "nope", Name: ptr("x")}, codes.NotFound, `"nope"`},
		{"rename to taken", &adminv1.UpdateApplicationRequest{Id: other.Id, Name: ptr("taken")}, codes.AlreadyExists, "name: "},
		{"steal domain", &adminv1.UpdateApplicationRequest{Id: other.Id, Domains: []string{"taken.example.com"}}, codes.AlreadyExists, "domains[0]: "},
		{"bad session", &adminv1.UpdateApplicationRequest{Id: other.Id, SessionDuration: ptr("")}, codes.InvalidArgument, "session_duration: "},
	}
	for _, tt := range upd {
		t.Run("update/"+tt.name, func(t *testing.T) {
			_, err := e.client.UpdateApplication(e.ctx(), tt.req)
			wantStatus(t, err, tt.code, tt.msg)
		})
	}
	for _, call := range []func() error{
		func() error {
			_, err := e.client.GetApplication(e.ctx(), &adminv1.GetApplicationRequest{})
			return err
		},
		func() error {
			_, err := e.client.DeleteApplication(e.ctx(), &adminv1.DeleteApplicationRequest{})
			return err
		},
		func() error {
			_, err := e.client.RevokeApplicationSessions(e.ctx(), &adminv1.RevokeApplicationSessionsRequest{})
			return err
		},
	} {
		wantStatus(t, call(), codes.InvalidArgument, "id: ")
	}
	_, err = e.client.DeleteApplication(e.ctx(), &adminv1.DeleteApplicationRequest{Id: "missing"})
	wantStatus(t, err, codes.NotFound, `"missing"`)
}
