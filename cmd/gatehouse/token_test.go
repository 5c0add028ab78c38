package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

const (
	tokID     = "0b7c5a52-8f3e-4c1d-9a6b-2e4f8d0c1a3b"
	tokID2    = "5d2e9f10-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
	tokCID    = "88bf3b6d86161464f6509f7219099e57.access"
	tokSecret = "ghst_SECRETsecretSECRETsecret0123456789abcdef"
)

func sampleToken() *adminv1.ServiceToken {
	return &adminv1.ServiceToken{
		Id: tokID, Name: "ci-deploy", ClientId: tokCID, Enabled: true,
		CreatedAt: ts(testNow.Add(-3 * time.Hour)), UpdatedAt: ts(testNow.Add(-3 * time.Hour)),
		ExpiresAt: ts(testNow.Add(8760*time.Hour - 3*time.Hour)), Duration: "8760h",
		ClientSecretVersion: 1,
	}
}

// withSecret is sampleToken as create and rotate return it.
func withSecret() *adminv1.ServiceToken {
	t := sampleToken()
	t.ClientSecret = tokSecret
	return t
}

// tokenFake answers the token reads: a list with two tokens whose names
// share a prefix, and Get by id or client id.
func tokenFake(t *testing.T) *fakeAdmin {
	f := startFake(t)
	other := &adminv1.ServiceToken{Id: tokID2, Name: "ci-deploy-staging", ClientId: "00000000000000000000000000000002.access", Enabled: false}
	on(f, "ListServiceTokens", func(r *adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
		var out []*adminv1.ServiceToken
		for _, tok := range []*adminv1.ServiceToken{sampleToken(), other} {
			if strings.Contains(tok.Name, r.NameContains) {
				out = append(out, tok)
			}
		}
		return &adminv1.ListServiceTokensResponse{ServiceTokens: out}, nil
	})
	on(f, "GetServiceToken", func(r *adminv1.GetServiceTokenRequest) (*adminv1.ServiceToken, error) {
		if r.Id == tokID || r.Id == tokCID {
			tok := sampleToken()
			tok.Applications = []*adminv1.ApplicationRef{{Id: "app-1", Name: "internal-api"}}
			return tok, nil
		}
		return nil, status.Errorf(codes.NotFound, "service token %q not found", r.Id)
	})
	return f
}

func TestTokenCreate(t *testing.T) {
	f := startFake(t)
	on(f, "CreateServiceToken", func(*adminv1.CreateServiceTokenRequest) (*adminv1.ServiceToken, error) {
		return withSecret(), nil
	})
	// Flags after the name, as people type them.
	r := f.run(t, "", "token", "create", "ci-deploy", "--duration", "forever").ok(t)
	if req := lastReq[*adminv1.CreateServiceTokenRequest](t, f, "CreateServiceToken"); req.Name != "ci-deploy" || req.Duration != "forever" {
		t.Fatalf("request = %v", req)
	}
	for _, want := range []string{
		"client id:", tokCID,
		"expires:", "(in 364 days)",
		"\nClient secret: " + tokSecret + "\n",
		"\nThis is the only time the client secret is shown. Store it now.\n",
		"\ncf-access-client-id: " + tokCID + "\ncf-access-client-secret: " + tokSecret + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, tokSecret) != 2 {
		t.Errorf("the secret should appear exactly twice (line and header):\n%s", r.stdout)
	}
	// No duration: the server's default.
	f.run(t, "", "token", "create", "x").ok(t)
	if req := lastReq[*adminv1.CreateServiceTokenRequest](t, f, "CreateServiceToken"); req.Duration != "" {
		t.Fatalf("duration = %q, want empty (server default)", req.Duration)
	}
	// JSON: the object only, with the secret.
	r = f.run(t, "", "token", "create", "-o", "json", "ci-deploy").ok(t)
	var got adminv1.ServiceToken
	jsonObject(t, r.stdout, &got)
	if !proto.Equal(&got, withSecret()) || strings.Contains(r.stdout, "Store it now") {
		t.Fatalf("json = %s", r.stdout)
	}
	if !strings.Contains(r.stdout, `"client_secret"`) || !strings.Contains(r.stdout, `"client_id"`) {
		t.Fatalf("json does not use the proto field names: %s", r.stdout)
	}
}

func TestTokenList(t *testing.T) {
	f := startFake(t)
	expired := &adminv1.ServiceToken{Id: tokID2, Name: "old", ClientId: "00000000000000000000000000000002.access", Enabled: true,
		ExpiresAt: ts(testNow.Add(-50 * time.Hour)), LastSeenAt: ts(testNow.Add(-3 * time.Hour))}
	forever := &adminv1.ServiceToken{Id: "f0000000-0000-4000-8000-000000000000", Name: "forever", Enabled: false, Duration: "forever"}
	on(f, "ListServiceTokens", func(*adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
		return &adminv1.ListServiceTokensResponse{ServiceTokens: []*adminv1.ServiceToken{sampleToken(), expired, forever}}, nil
	})
	r := f.run(t, "", "token", "list", "--name", "ci", "--expiring-within", "168h", "--expired", "--disabled").ok(t)
	want := &adminv1.ListServiceTokensRequest{NameContains: "ci", ExpiringWithin: "168h", Expired: true, Disabled: true}
	if req := lastReq[*adminv1.ListServiceTokensRequest](t, f, "ListServiceTokens"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST SEEN") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for i, want := range [][]string{
		{tokID, "ci-deploy", tokCID, "active", "in 364 days", "never"},
		{"old", "expired", "2 days ago", "3 hours ago"},
		{"forever", "disabled", "never"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q does not contain %q", i+1, lines[i+1], w)
			}
		}
	}
	f.run(t, "", "token", "list").ok(t)
	if req := lastReq[*adminv1.ListServiceTokensRequest](t, f, "ListServiceTokens"); !proto.Equal(req, &adminv1.ListServiceTokensRequest{}) {
		t.Fatalf("unfiltered request = %v", req)
	}
	r = f.run(t, "", "token", "list", "-o", "json").ok(t)
	got := jsonArray(t, r.stdout, func() *adminv1.ServiceToken { return new(adminv1.ServiceToken) })
	if len(got) != 3 || !proto.Equal(got[1], expired) || !proto.Equal(got[2], forever) {
		t.Fatalf("json = %s", r.stdout)
	}
}

func TestTokenListEmptyJSON(t *testing.T) {
	f := startFake(t)
	on(f, "ListServiceTokens", func(*adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
		return &adminv1.ListServiceTokensResponse{}, nil
	})
	r := f.run(t, "", "token", "list", "-o", "json").ok(t)
	if got := jsonArray(t, r.stdout, func() *adminv1.ServiceToken { return new(adminv1.ServiceToken) }); len(got) != 0 {
		t.Fatalf("got %d tokens", len(got))
	}
}

func TestTokenGetResolvesNames(t *testing.T) {
	f := tokenFake(t)
	for _, tc := range []struct {
		arg     string
		listed  bool // resolved through ListServiceTokens
		wantGet string
	}{
		{tokID, false, tokID},
		{tokCID, false, tokCID},
		{"ci-deploy", true, tokID}, // "ci-deploy-staging" also contains it, but is not an exact match
	} {
		before := len(f.methods())
		r := f.run(t, "", "token", "get", tc.arg).ok(t)
		calls := f.methods()[before:]
		if listed := len(calls) == 2 && calls[0] == "ListServiceTokens"; listed != tc.listed {
			t.Errorf("get %s: calls %v", tc.arg, calls)
		}
		if req := lastReq[*adminv1.GetServiceTokenRequest](t, f, "GetServiceToken"); req.Id != tc.wantGet {
			t.Errorf("get %s: asked for %q, want %q", tc.arg, req.Id, tc.wantGet)
		}
		for _, want := range []string{
			"name:", "ci-deploy", "status:", "active",
			"expires:", "2027-06-01T09:00:00Z (in 364 days)",
			"created:", "2026-06-01T09:00:00Z (3 hours ago)",
			"last seen:", "never",
			"applications:", "internal-api (app-1)",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("get %s: stdout does not contain %q:\n%s", tc.arg, want, r.stdout)
			}
		}
	}
	f.run(t, "", "token", "get", "nope").fails(t, exitError, `no service token has the id, client id or name "nope"`)
	f.run(t, "", "token", "get", "11111111-1111-4111-8111-111111111111").fails(t, exitError, "not found (NotFound)")
}

func TestTokenGetAmbiguousName(t *testing.T) {
	f := startFake(t)
	on(f, "ListServiceTokens", func(*adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
		return &adminv1.ListServiceTokensResponse{ServiceTokens: []*adminv1.ServiceToken{
			{Id: tokID, Name: "dup"}, {Id: tokID2, Name: "dup"},
		}}, nil
	})
	f.run(t, "", "token", "get", "dup").fails(t, exitError, `2 service tokens are named "dup"`, tokID, tokID2)
}

func TestTokenUpdate(t *testing.T) {
	f := tokenFake(t)
	on(f, "UpdateServiceToken", func(*adminv1.UpdateServiceTokenRequest) (*adminv1.ServiceToken, error) { return sampleToken(), nil })
	f.run(t, "", "token", "update", "ci-deploy", "--name", "renamed").ok(t)
	want := &adminv1.UpdateServiceTokenRequest{Id: tokID, Name: proto.String("renamed")}
	if req := lastReq[*adminv1.UpdateServiceTokenRequest](t, f, "UpdateServiceToken"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	f.run(t, "", "token", "update", tokCID, "--duration", "720h").ok(t)
	want = &adminv1.UpdateServiceTokenRequest{Id: tokCID, Duration: proto.String("720h")}
	if req := lastReq[*adminv1.UpdateServiceTokenRequest](t, f, "UpdateServiceToken"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	f.run(t, "", "token", "update", tokID).fails(t, exitUsage, "nothing to update")
}

func TestTokenRefreshEnableDisable(t *testing.T) {
	f := tokenFake(t)
	on(f, "RefreshServiceToken", func(*adminv1.RefreshServiceTokenRequest) (*adminv1.ServiceToken, error) { return sampleToken(), nil })
	on(f, "SetServiceTokenEnabled", func(r *adminv1.SetServiceTokenEnabledRequest) (*adminv1.ServiceToken, error) {
		tok := sampleToken()
		tok.Enabled = r.Enabled
		return tok, nil
	})
	f.run(t, "", "token", "refresh", "ci-deploy").ok(t)
	if req := lastReq[*adminv1.RefreshServiceTokenRequest](t, f, "RefreshServiceToken"); req.Id != tokID {
		t.Fatalf("refresh request = %v", req)
	}
	r := f.run(t, "", "token", "disable", tokID).ok(t)
	if req := lastReq[*adminv1.SetServiceTokenEnabledRequest](t, f, "SetServiceTokenEnabled"); req.Id != tokID || req.Enabled {
		t.Fatalf("disable request = %v", req)
	}
	if !strings.Contains(r.stdout, "disabled") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	f.run(t, "", "token", "enable", tokCID).ok(t)
	if req := lastReq[*adminv1.SetServiceTokenEnabledRequest](t, f, "SetServiceTokenEnabled"); req.Id != tokCID || !req.Enabled {
		t.Fatalf("enable request = %v", req)
	}
}

func TestTokenRotate(t *testing.T) {
	f := tokenFake(t)
	on(f, "RotateServiceToken", func(*adminv1.RotateServiceTokenRequest) (*adminv1.ServiceToken, error) {
		tok := withSecret()
		tok.ClientSecretVersion = 2
		tok.PreviousClientSecretExpiresAt = ts(testNow.Add(24 * time.Hour))
		return tok, nil
	})
	r := f.run(t, "", "token", "rotate", "ci-deploy", "--grace", "24h").ok(t)
	if req := lastReq[*adminv1.RotateServiceTokenRequest](t, f, "RotateServiceToken"); req.Id != tokID || req.Grace != "24h" {
		t.Fatalf("request = %v", req)
	}
	for _, want := range []string{"secret version:", "2", "previous secret valid until:", "(in 24 hours)",
		"cf-access-client-secret: " + tokSecret, "This is the only time the client secret is shown."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, r.stdout)
		}
	}
	r = f.run(t, "", "token", "rotate", tokID, "-o", "json").ok(t)
	var got adminv1.ServiceToken
	jsonObject(t, r.stdout, &got)
	if got.ClientSecret != tokSecret {
		t.Fatalf("json = %s", r.stdout)
	}
}

func TestTokenImportReadsSecretFromStdin(t *testing.T) {
	f := startFake(t)
	on(f, "ImportServiceToken", func(*adminv1.ImportServiceTokenRequest) (*adminv1.ServiceToken, error) { return sampleToken(), nil })
	const legacy = "bdd31cbc4dec4f68ed70c9d43a0a6f4e3a8de3b7f08ea1e9aa36c1ca7d326b1d"
	args := []string{"token", "import", "legacy", "--client-id", tokCID, "--duration", "720h"}
	r := f.run(t, "  "+legacy+"\r\nsecond line ignored\n", args...).ok(t)
	want := &adminv1.ImportServiceTokenRequest{Name: "legacy", ClientId: tokCID, ClientSecret: legacy, Duration: "720h"}
	if req := lastReq[*adminv1.ImportServiceTokenRequest](t, f, "ImportServiceToken"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	for _, a := range args {
		if strings.Contains(a, legacy) {
			t.Fatal("the secret was on the command line")
		}
	}
	if strings.Contains(r.stdout+r.stderr, legacy) {
		t.Fatalf("the imported secret was printed:\n%s%s", r.stdout, r.stderr)
	}
	// From a terminal, a prompt on stderr.
	r = invocation{env: f.env(), stdin: legacy + "\n", terminal: true}.exec(t, args...)
	if r.code != 0 || r.stderr != "Client secret: " || strings.Contains(r.stdout, legacy) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	// Nothing on stdin, or no client id: usage errors, no call.
	calls := len(f.methods())
	f.run(t, "", args...).fails(t, exitUsage, "no client secret on stdin")
	f.run(t, "\n", args...).fails(t, exitUsage, "no client secret on stdin")
	f.run(t, legacy, "token", "import", "legacy").fails(t, exitUsage, "--client-id is required")
	f.run(t, legacy, "token", "import", "legacy", "--client-id", tokCID, "--client-secret", legacy).fails(t, exitUsage, "-client-secret")
	if len(f.methods()) != calls {
		t.Fatalf("usage errors reached the server: %v", f.methods()[calls:])
	}
}

func TestTokenDelete(t *testing.T) {
	f := tokenFake(t)
	on(f, "DeleteServiceToken", func(r *adminv1.DeleteServiceTokenRequest) (*adminv1.DeleteServiceTokenResponse, error) {
		if !r.Force {
			return nil, status.Error(codes.FailedPrecondition, "service token ci-deploy is used by policy ci of application internal-api")
		}
		return &adminv1.DeleteServiceTokenResponse{Id: tokID, PoliciesUpdated: []string{"pol-1"}}, nil
	})

	// No terminal, no --yes: refused before any call.
	r := f.run(t, "", "token", "delete", "ci-deploy", "--force")
	r.fails(t, exitUsage, "not a terminal", "--yes")
	if ms := f.methods(); len(ms) != 0 {
		t.Fatalf("calls without confirmation: %v", ms)
	}

	// A terminal: asks, and "n" (or nothing) aborts.
	for _, answer := range []string{"n\n", "\n", ""} {
		r = invocation{env: f.env(), stdin: answer, terminal: true}.exec(t, "token", "delete", "ci-deploy", "--force")
		prompt := "Delete service token ci-deploy (" + tokCID + ")? [y/N] "
		if answer == "" {
			prompt += "\n"
		}
		if r.code != exitError || r.stderr != prompt+"gatehouse: aborted: nothing was changed\n" {
			t.Fatalf("answer %q: exit %d, stderr %q", answer, r.code, r.stderr)
		}
	}
	for _, m := range f.methods() {
		if m == "DeleteServiceToken" {
			t.Fatal("deleted without a yes")
		}
	}
	// "y" deletes.
	r = invocation{env: f.env(), stdin: "y\n", terminal: true}.exec(t, "token", "delete", "ci-deploy", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted service token ci-deploy.") || !strings.Contains(r.stdout, "Removed it from 1 policy: pol-1.") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if req := lastReq[*adminv1.DeleteServiceTokenRequest](t, f, "DeleteServiceToken"); req.Id != tokID || !req.Force {
		t.Fatalf("request = %v", req)
	}

	// --yes: no question; in use without --force: the server's reason and a hint.
	f.run(t, "", "token", "delete", tokCID, "--yes").fails(t, exitError,
		"is used by policy ci of application internal-api (FailedPrecondition); pass --force")
	if req := lastReq[*adminv1.DeleteServiceTokenRequest](t, f, "DeleteServiceToken"); req.Id != tokCID || req.Force {
		t.Fatalf("request = %v", req)
	}
	r = f.run(t, "", "token", "delete", tokCID, "--yes", "--force", "-o", "json").ok(t)
	var got adminv1.DeleteServiceTokenResponse
	jsonObject(t, r.stdout, &got)
	if got.Id != tokID || len(got.PoliciesUpdated) != 1 {
		t.Fatalf("json = %s", r.stdout)
	}
}
