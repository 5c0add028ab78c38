package main

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// TestDisableInactiveTokens: with --disable-inactive-after, the sweep
// disables exactly the tokens Cloudflare's setting would: older than the
// window, not seen within it, and not named by a policy. Each is audited
// and logged by name; a disabled token is refused on its next request.
func TestDisableInactiveTokens(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	p := startInProcess(t, clock.Now, func(c *serveConfig) { c.DisableInactiveAfter = 720 * time.Hour })
	admin, actx := p.adminClient(t)
	authz := authv3.NewAuthorizationClient(dial(t, p.authzAddr))

	create := func(name string) *adminv1.ServiceToken {
		tok, err := admin.CreateServiceToken(actx, &adminv1.CreateServiceTokenRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	active, idle, named := create("active"), create("idle"), create("named-but-idle")
	createAnyTokenApp(t, admin, actx, "app", "app.test")
	other, err := admin.CreateApplication(actx, &adminv1.CreateApplicationRequest{Name: "other", Domains: []string{"other.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePolicy(actx, &adminv1.CreatePolicyRequest{
		Application: other.GetId(), Name: "named", Decision: "non_identity",
		Include: []*adminv1.Rule{{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: named.GetId()}}}},
	}); err != nil {
		t.Fatal(err)
	}
	check := func(tok *adminv1.ServiceToken) *authv3.CheckResponse {
		t.Helper()
		resp, err := authz.Check(context.Background(), checkReq("app.test", "/",
			"cf-access-client-id", tok.GetClientId(), "cf-access-client-secret", tok.GetClientSecret()))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	clock.Advance(700 * time.Hour)
	if resp := check(active); resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("active token refused: %v", resp.GetStatus())
	}
	young := create("young") // created 700 h in: inside the window at the sweep
	clock.Advance(21 * time.Hour)

	// 721 h in: idle (never seen) is due; active was seen 21 h ago.
	p.disableInactive(clock.Now())
	list, err := admin.ListServiceTokens(actx, &adminv1.ListServiceTokensRequest{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var disabled []string
	for _, tok := range list.GetServiceTokens() {
		disabled = append(disabled, tok.GetName())
	}
	if strings.Join(disabled, ",") != "idle" {
		t.Fatalf("disabled after 721 h: %v, want [idle] (active was seen, named-but-idle is in a policy, young is 21 h old)", disabled)
	}
	if resp := check(idle); resp.GetStatus().GetCode() == int32(codes.OK) || !strings.Contains(resp.GetDeniedResponse().GetBody(), "token_disabled") {
		t.Errorf("disabled token: %v %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
	}
	for _, tok := range []*adminv1.ServiceToken{active, young} {
		if resp := check(tok); resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Errorf("%s refused after the sweep: %s", tok.GetName(), resp.GetDeniedResponse().GetBody())
		}
	}

	audit, err := admin.ListAuditEvents(actx, &adminv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var swept []string
	for _, e := range audit.GetEvents() {
		if e.GetMethod() == "DisableInactiveServiceToken" {
			swept = append(swept, e.GetObject())
			if e.GetAdminKey() != "system" {
				t.Errorf("audit event by %q, want system", e.GetAdminKey())
			}
		}
	}
	if len(swept) != 1 || !strings.Contains(swept[0], idle.GetId()) || !strings.Contains(swept[0], "idle") {
		t.Errorf("audit: %v", swept)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "disabled an inactive service token") || !strings.Contains(logs, `"token_name":"idle"`) {
		t.Errorf("no log line naming the disabled token:\n%s", logs)
	}

	// A second sweep changes nothing more.
	p.disableInactive(clock.Now())
	audit, _ = admin.ListAuditEvents(actx, &adminv1.ListAuditEventsRequest{})
	n := 0
	for _, e := range audit.GetEvents() {
		if e.GetMethod() == "DisableInactiveServiceToken" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d sweep audit events after a second sweep, want 1", n)
	}
}

// TestDisableInactiveAfterBounds: 720h to 8760h (30 to 365 days, as
// Cloudflare's setting), or 0 for off.
func TestDisableInactiveAfterBounds(t *testing.T) {
	for d, ok := range map[time.Duration]bool{
		0: true, 720 * time.Hour: true, 8760 * time.Hour: true,
		719 * time.Hour: false, 8761 * time.Hour: false, -time.Hour: false,
	} {
		cfg := defaultServeConfig()
		cfg.DisableInactiveAfter = d
		if err := cfg.validate(); (err == nil) != ok {
			t.Errorf("--disable-inactive-after %v: err = %v, want ok=%v", d, err, ok)
		}
	}
}
