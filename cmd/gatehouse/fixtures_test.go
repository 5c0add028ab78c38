package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

const fixtureDir = "../../testdata/checkrequests"

// loadCheckFixture reads a CheckRequest fixture (Envoy's shape, see
// testdata/checkrequests/README.md) with its placeholders replaced, in the
// JSON text and in header_map raw_value bytes.
func loadCheckFixture(t *testing.T, name string, sub map[string]string) *authv3.CheckRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range sub {
		s = strings.ReplaceAll(s, k, v)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal([]byte(s), req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, hv := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		for k, v := range sub {
			hv.RawValue = bytes.ReplaceAll(hv.RawValue, []byte(k), []byte(v))
		}
	}
	return req
}

// TestFixturesAgainstRealStore sends every Envoy-shaped CheckRequest fixture
// to `gatehouse serve` (in process, bbolt store, ext_authz over loopback
// gRPC), with the tokens, applications and policies made through the admin
// API as an operator would, and checks each decision, reason and HTTP
// status. authz's TestFixtures checks the response shapes in depth on an
// in-memory snapshot; this one proves the wiring from store to Check. It
// also checks that `gatehouse check` (CheckAccess) agrees with Envoy's
// answer, down to the policy and the rule, and that the admin service is not
// reachable on the ext_authz port.
func TestFixturesAgainstRealStore(t *testing.T) {
	p := startInProcess(t, nil)
	admin, actx := p.adminClient(t)
	authzConn := dial(t, p.authzAddr)
	client := authv3.NewAuthorizationClient(authzConn)
	ctx := context.Background()

	tok, err := admin.CreateServiceToken(actx, &adminv1.CreateServiceTokenRequest{Name: "fixture-client"})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := admin.CreateServiceToken(actx, &adminv1.CreateServiceTokenRequest{Name: "no-policy-names-me"})
	if err != nil {
		t.Fatal(err)
	}
	apps := map[string]*adminv1.Application{}
	for name, domain := range map[string]string{
		"app": "app.example.com", "api": "api.example.com",
		"billing": "billing.example.com", "orders": "orders.api.svc.cluster.local",
	} {
		app, err := admin.CreateApplication(actx, &adminv1.CreateApplicationRequest{Name: name, Domains: []string{domain}})
		if err != nil {
			t.Fatal(err)
		}
		apps[name] = app
		if _, err := admin.CreatePolicy(actx, &adminv1.CreatePolicyRequest{
			Application: app.GetId(), Name: "fixture client", Decision: "non_identity",
			Include: []*adminv1.Rule{{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: tok.GetId()}}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	setHeader := func(name string) {
		t.Helper()
		if _, err := admin.UpdateApplication(actx, &adminv1.UpdateApplicationRequest{Id: apps["app"].GetId(), ServiceTokenHeader: &name}); err != nil {
			t.Fatal(err)
		}
	}

	sub := map[string]string{"{{CLIENT_ID}}": tok.GetClientId(), "{{CLIENT_SECRET}}": tok.GetClientSecret()}
	first, err := client.Check(ctx, loadCheckFixture(t, "h1_get_service_token.json", sub))
	if err != nil || first.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("first service-token request: %v %v", first.GetStatus(), err)
	}
	for _, h := range first.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "cf-access-jwt-assertion" {
			sub["{{JWT}}"] = h.GetHeader().GetValue()
		}
	}
	if sub["{{JWT}}"] == "" {
		t.Fatal("no cf-access-jwt-assertion in the allow")
	}

	type want struct {
		app    string // the application that decides ("" for none)
		reason string
		status int    // HTTP status of a deny, 200 for an allow
		header string // the app's service_token_header for this case
	}
	wants := map[string]want{
		"h1_get_service_token.json":          {"app", "allowed_by_policy", 200, ""},
		"h2_post_tls_with_body.json":         {"api", "allowed_by_policy", 200, ""},
		"h1_client_id_only.json":             {"app", "incomplete_credentials", 401, ""},
		"h1_mixed_case_client_headers.json":  {"app", "allowed_by_policy", 200, ""},
		"h1_browser_cookie_jwt.json":         {"app", "allowed_by_policy", 200, ""},
		"h1_cf_access_token_header.json":     {"app", "allowed_by_policy", 200, ""},
		"h1_raw_header_map.json":             {"app", "allowed_by_policy", 200, ""},
		"mtls_spiffe_peer_certificate.json":  {"orders", "allowed_by_policy", 200, ""},
		"h1_query_string_in_path.json":       {"app", "allowed_by_policy", 200, ""},
		"h1_authority_with_port.json":        {"app", "allowed_by_policy", 200, ""},
		"h1_context_extensions.json":         {"billing", "allowed_by_policy", 200, ""},
		"h1_single_json_header.json":         {"app", "missing_credentials", 401, ""},
		"h1_single_json_header.json#header":  {"app", "allowed_by_policy", 200, "authorization"},
		"malformed_no_http_attributes.json":  {"", "malformed_request", 400, ""},
		"h1_get_service_token.json#stranger": {"app", "no_policy_matched", 403, ""},
	}
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no fixtures in %s", fixtureDir)
	}
	for _, f := range files {
		if _, ok := wants[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expectation here", filepath.Base(f))
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range wants {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		w := wants[name]
		t.Run(name, func(t *testing.T) {
			file, variant, _ := strings.Cut(name, "#")
			s := sub
			if variant == "stranger" {
				s = map[string]string{"{{CLIENT_ID}}": stranger.GetClientId(), "{{CLIENT_SECRET}}": stranger.GetClientSecret()}
			}
			setHeader(w.header)
			t.Cleanup(func() { setHeader("") })

			resp, err := client.Check(ctx, loadCheckFixture(t, file, s))
			if err != nil {
				t.Fatalf("gRPC error (Envoy would apply failure_mode_allow): %v", err)
			}
			meta := resp.GetDynamicMetadata().GetFields()
			if got := meta["reason"].GetStringValue(); got != w.reason {
				t.Errorf("reason %q, want %q", got, w.reason)
			}
			if got := meta["application"].GetStringValue(); got != w.app {
				t.Errorf("application %q, want %q", got, w.app)
			}
			if w.status == 200 {
				if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil {
					t.Fatalf("want an allow, got %v %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
				}
				if got := meta["token_name"].GetStringValue(); got != "fixture-client" {
					t.Errorf("token_name %q", got)
				}
				return
			}
			d := resp.GetDeniedResponse()
			if resp.GetStatus().GetCode() == int32(codes.OK) || int(d.GetStatus().GetCode()) != w.status {
				t.Fatalf("status %v, HTTP %d; want a deny with %d", resp.GetStatus(), d.GetStatus().GetCode(), w.status)
			}
			var body struct{ Error, Reason string }
			if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body.Reason != w.reason {
				t.Errorf("body %q: %v", d.GetBody(), err)
			}
		})
	}

	// `gatehouse check` tells the same story, with the rule that matched.
	for _, c := range []struct {
		tok        *adminv1.ServiceToken
		decision   string
		httpStatus int32
		reason     string
		policy     string
		rule       string
		token      string
	}{
		{tok, "allow", 200, "allowed_by_policy", "fixture client", "include[0] service_token", "fixture-client"},
		{stranger, "deny", 403, "no_policy_matched", "", "", "no-policy-names-me"},
	} {
		got, err := admin.CheckAccess(actx, &adminv1.CheckAccessRequest{Host: "app.example.com", Path: "/", Headers: []*adminv1.Header{
			{Name: "cf-access-client-id", Value: c.tok.GetClientId()}, {Name: "cf-access-client-secret", Value: c.tok.GetClientSecret()},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetDecision() != c.decision || got.GetHttpStatus() != c.httpStatus || got.GetReason() != c.reason ||
			got.GetPolicyName() != c.policy || got.GetRule() != c.rule || got.GetTokenName() != c.token || got.GetApplicationName() != "app" {
			t.Errorf("CheckAccess for %s = %v", c.tok.GetName(), got)
		}
	}

	// The ext_authz port serves Check and health, never the admin API.
	_, err = adminv1.NewAdminServiceClient(authzConn).ListServiceTokens(actx, &adminv1.ListServiceTokensRequest{})
	if code := status.Code(err); code != codes.Unimplemented {
		t.Errorf("ListServiceTokens on the ext_authz port: %v, want Unimplemented", err)
	}
}
