package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func TestCheck(t *testing.T) {
	f := startFake(t)
	deny := &adminv1.CheckAccessResponse{
		Decision: "deny", HttpStatus: 401, Reason: "token_disabled",
		ApplicationId: appID, ApplicationName: "internal-api", TokenId: tokID, TokenName: "ci-deploy",
	}
	on(f, "CheckAccess", func(*adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) { return deny, nil })

	r := f.run(t, "", "check", "--host", "api.internal.example.com", "--path", "/v1/orders?x=1", "--method", "POST",
		"-H", "Cf-Access-Client-Id: "+tokCID, "-H", "x-empty:", "--source-ip", "10.1.2.3",
		"--principal", "spiffe://cluster.local/ns/prod/sa/web", "--app", "internal-api").ok(t)
	want := &adminv1.CheckAccessRequest{
		Host: "api.internal.example.com", Path: "/v1/orders?x=1", Method: "POST",
		Headers:  []*adminv1.Header{{Name: "cf-access-client-id", Value: tokCID}, {Name: "x-empty"}},
		SourceIp: "10.1.2.3", Principal: "spiffe://cluster.local/ns/prod/sa/web", Application: "internal-api",
	}
	if req := lastReq[*adminv1.CheckAccessRequest](t, f, "CheckAccess"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	// A deny is an answer, not a failure: exit 0.
	for _, w := range []string{"decision:", "deny", "http status:", "401", "reason:", "token_disabled",
		"application:", "internal-api (" + appID + ")", "policy:", "token:", "ci-deploy (" + tokID + ")"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "dry run") {
		t.Errorf("dry run shown for an enforcing application:\n%s", r.stdout)
	}

	// Defaults: GET /.
	f.run(t, "", "check", "--host", "h").ok(t)
	if req := lastReq[*adminv1.CheckAccessRequest](t, f, "CheckAccess"); req.Method != "GET" || req.Path != "/" || len(req.Headers) != 0 {
		t.Fatalf("request = %v", req)
	}

	// The secret from stdin, never from argv, and never printed.
	allow := &adminv1.CheckAccessResponse{Decision: "allow", HttpStatus: 200, PolicyId: polID, PolicyName: "ci", PolicyDecision: "non_identity", Rule: "include[0] service_token", DryRun: true}
	on(f, "CheckAccess", func(*adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) { return allow, nil })
	r = f.run(t, tokSecret+"\n", "check", "--host", "h", "--client-id", tokCID, "--client-secret-stdin").ok(t)
	req := lastReq[*adminv1.CheckAccessRequest](t, f, "CheckAccess")
	wantHeaders := []*adminv1.Header{{Name: "cf-access-client-id", Value: tokCID}, {Name: "cf-access-client-secret", Value: tokSecret}}
	if !proto.Equal(&adminv1.CheckAccessRequest{Headers: req.Headers}, &adminv1.CheckAccessRequest{Headers: wantHeaders}) {
		t.Fatalf("headers = %v", req.Headers)
	}
	if strings.Contains(r.stdout+r.stderr, tokSecret) {
		t.Fatalf("secret printed: %s", r.stdout)
	}
	for _, w := range []string{"ci (" + polID + "), decision non_identity", "rule:", "include[0] service_token", "dry run:", "token:", "-"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
		}
	}

	r = f.run(t, "", "check", "--host", "h", "-o", "json").ok(t)
	var got adminv1.CheckAccessResponse
	jsonObject(t, r.stdout, &got)
	if !proto.Equal(&got, allow) || !strings.Contains(r.stdout, `"http_status": 200`) {
		t.Fatalf("json = %s", r.stdout)
	}

	calls := len(f.methods())
	f.run(t, "", "check", "--path", "/").fails(t, exitUsage, "--host is required")
	f.run(t, "", "check", "--host", "h", "-H", "no colon").fails(t, exitUsage, `-H "no colon": want "name: value"`)
	f.run(t, "", "check", "--host", "h", "-H", ": v").fails(t, exitUsage, "want")
	f.run(t, "", "check", "--host", "h", "--client-secret-stdin").fails(t, exitUsage, "no client secret on stdin")
	if len(f.methods()) != calls {
		t.Fatalf("usage errors reached the server: %v", f.methods()[calls:])
	}
}
