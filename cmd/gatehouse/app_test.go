package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

const appID = "a1b2c3d4-0000-4000-8000-000000000001"

func sampleApp() *adminv1.Application {
	return &adminv1.Application{
		Id: appID, Name: "internal-api", Domains: []string{"api.internal.example.com", "example.com/admin"},
		Aud: strings.Repeat("ab", 32), SessionDuration: "24h", SessionCookie: true,
		CreatedAt: ts(testNow.Add(-72 * time.Hour)), UpdatedAt: ts(testNow.Add(-time.Hour)),
	}
}

func appFake(t *testing.T) *fakeAdmin {
	f := startFake(t)
	app := func(proto.Message) (*adminv1.Application, error) { return sampleApp(), nil }
	for _, m := range []string{"GetApplication", "UpdateApplication", "CreateApplication"} {
		on(f, m, app)
	}
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{Applications: []*adminv1.Application{sampleApp()}}, nil
	})
	on(f, "ListPolicies", func(*adminv1.ListPoliciesRequest) (*adminv1.ListPoliciesResponse, error) {
		return &adminv1.ListPoliciesResponse{Policies: []*adminv1.Policy{samplePolicy(), samplePolicy()}}, nil
	})
	return f
}

func TestAppCreate(t *testing.T) {
	f := appFake(t)
	r := f.run(t, "", "app", "create", "internal-api",
		"--domain", "api.internal.example.com", "--domain", "example.com/admin",
		"--session-duration", "1h", "--service-token-header", "x-service-auth", "--no-session-cookie", "--dry-run").ok(t)
	want := &adminv1.CreateApplicationRequest{
		Name: "internal-api", Domains: []string{"api.internal.example.com", "example.com/admin"},
		SessionDuration: "1h", ServiceTokenHeader: "x-service-auth", SessionCookie: proto.Bool(false), DryRun: true,
	}
	if req := lastReq[*adminv1.CreateApplicationRequest](t, f, "CreateApplication"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	for _, w := range []string{"domains:", "api.internal.example.com\n", "example.com/admin\n", "aud:", strings.Repeat("ab", 32),
		"session cookie:", "service token header:", "created:", "(3 days ago)"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
		}
	}
	// Defaults: the server's (session_cookie unset, not false).
	f.run(t, "", "app", "create", "x", "--domain", "x.example.com").ok(t)
	want = &adminv1.CreateApplicationRequest{Name: "x", Domains: []string{"x.example.com"}}
	if req := lastReq[*adminv1.CreateApplicationRequest](t, f, "CreateApplication"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	f.run(t, "", "app", "create", "x").fails(t, exitUsage, "--domain is required")
}

func TestAppUpdateSendsOnlyWhatIsGiven(t *testing.T) {
	f := appFake(t)
	for _, tc := range []struct {
		args []string
		want *adminv1.UpdateApplicationRequest
	}{
		{[]string{"--name", "renamed"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", Name: proto.String("renamed")}},
		{[]string{"--domain", "a.example.com", "--domain", "b.example.com/x"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", Domains: []string{"a.example.com", "b.example.com/x"}}},
		{[]string{"--session-cookie=false"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", SessionCookie: proto.Bool(false)}},
		{[]string{"--session-cookie"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", SessionCookie: proto.Bool(true)}},
		{[]string{"--dry-run=true", "--session-duration", "8h"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", DryRun: proto.Bool(true), SessionDuration: proto.String("8h")}},
		{[]string{"--dry-run=false"}, &adminv1.UpdateApplicationRequest{Id: "internal-api", DryRun: proto.Bool(false)}},
		{[]string{"--service-token-header", ""}, &adminv1.UpdateApplicationRequest{Id: "internal-api", ServiceTokenHeader: proto.String("")}},
	} {
		f.run(t, "", append([]string{"app", "update", "internal-api"}, tc.args...)...).ok(t)
		if req := lastReq[*adminv1.UpdateApplicationRequest](t, f, "UpdateApplication"); !proto.Equal(req, tc.want) {
			t.Errorf("%q: request = %v, want %v", tc.args, req, tc.want)
		}
	}
	f.run(t, "", "app", "update", "internal-api").fails(t, exitUsage, "nothing to update")
	f.run(t, "", "app", "update", "internal-api", "--dry-run=maybe").fails(t, exitUsage, "dry-run")
}

func TestAppListAndGet(t *testing.T) {
	f := appFake(t)
	r := f.run(t, "", "app", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "DOMAINS") ||
		!strings.Contains(lines[1], "api.internal.example.com, example.com/admin") || !strings.Contains(lines[1], appID) {
		t.Fatalf("table:\n%s", r.stdout)
	}
	r = f.run(t, "", "app", "list", "-o", "json").ok(t)
	got := jsonArray(t, r.stdout, func() *adminv1.Application { return new(adminv1.Application) })
	if len(got) != 1 || !proto.Equal(got[0], sampleApp()) {
		t.Fatalf("json = %s", r.stdout)
	}
	r = f.run(t, "", "app", "get", "internal-api", "-o", "json").ok(t)
	var app adminv1.Application
	jsonObject(t, r.stdout, &app)
	if !proto.Equal(&app, sampleApp()) {
		t.Fatalf("json = %s", r.stdout)
	}
	if req := lastReq[*adminv1.GetApplicationRequest](t, f, "GetApplication"); req.Id != "internal-api" {
		t.Fatalf("request = %v", req)
	}
}

func TestAppDelete(t *testing.T) {
	f := appFake(t)
	on(f, "DeleteApplication", func(r *adminv1.DeleteApplicationRequest) (*adminv1.DeleteApplicationResponse, error) {
		return &adminv1.DeleteApplicationResponse{Id: r.Id, PoliciesDeleted: []string{"p1", "p2"}}, nil
	})
	f.run(t, "", "app", "delete", "internal-api").fails(t, exitUsage, "--yes")
	if ms := f.methods(); len(ms) != 0 {
		t.Fatalf("calls without confirmation: %v", ms)
	}
	r := invocation{env: f.env(), stdin: "yes\n", terminal: true}.exec(t, "app", "delete", "internal-api")
	if r.code != 0 || r.stderr != "Delete application internal-api (api.internal.example.com, example.com/admin) and its 2 policies? [y/N] " {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	// What was confirmed is deleted, by id.
	if req := lastReq[*adminv1.DeleteApplicationRequest](t, f, "DeleteApplication"); req.Id != appID {
		t.Fatalf("request = %v", req)
	}
	if r.stdout != "Deleted application internal-api and 2 policies.\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = f.run(t, "", "app", "delete", "internal-api", "--yes", "-o", "json").ok(t)
	var got adminv1.DeleteApplicationResponse
	jsonObject(t, r.stdout, &got)
	if got.Id != "internal-api" || len(got.PoliciesDeleted) != 2 {
		t.Fatalf("json = %s", r.stdout)
	}
}

func TestAppRevokeSessions(t *testing.T) {
	f := appFake(t)
	on(f, "RevokeApplicationSessions", func(*adminv1.RevokeApplicationSessionsRequest) (*adminv1.Application, error) {
		a := sampleApp()
		a.SessionsRevokedAt = ts(testNow)
		return a, nil
	})
	r := f.run(t, "", "app", "revoke-sessions", "internal-api").ok(t)
	if req := lastReq[*adminv1.RevokeApplicationSessionsRequest](t, f, "RevokeApplicationSessions"); req.Id != "internal-api" {
		t.Fatalf("request = %v", req)
	}
	if r.stdout != "Revoked the sessions of application internal-api issued before 2026-06-01T12:00:00Z (now).\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}
