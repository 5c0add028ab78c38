package admin_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestServiceTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	var changes []store.Change
	e.db.Subscribe(func(c store.Change) { changes = append(changes, c) })

	tok := e.createToken("ci-deploy", "")
	if !strings.HasPrefix(tok.ClientSecret, tokens.SecretPrefix) || tokens.CheckSecret(tok.ClientSecret, tokens.SecretPrefix, false) != nil {
		t.Fatalf("client_secret %q is not a gatehouse secret", tok.ClientSecret)
	}
	if !tokens.ValidID(tok.Id) || !tokens.ValidClientID(tok.ClientId) {
		t.Fatalf("id %q / client id %q malformed", tok.Id, tok.ClientId)
	}
	if tok.Duration != "8760h" || !tok.ExpiresAt.AsTime().Equal(t0.Add(8760*time.Hour)) || !tok.Enabled || tok.ClientSecretVersion != 1 {
		t.Fatalf("defaults wrong: %v", tok)
	}
	// The store has the digest of exactly that secret, and the change was
	// published once.
	d := tokens.Digest(tok.ClientSecret)
	if r := e.storedToken(tok.Id).Verify(&d, t0); r != tokens.VerifyOK {
		t.Fatalf("stored token verifies the returned secret as %s", r)
	}
	if len(changes) != 1 || len(changes[0].Tokens) != 1 || changes[0].Tokens[0].ID != tok.Id {
		t.Fatalf("changes after create = %+v", changes)
	}

	// Get by id and by client id, without the secret.
	for _, ref := range []string{tok.Id, tok.ClientId} {
		got, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: ref})
		if err != nil {
			t.Fatalf("Get(%s): %v", ref, err)
		}
		if got.Id != tok.Id || got.ClientSecret != "" || got.Name != "ci-deploy" {
			t.Fatalf("Get(%s) = %v", ref, got)
		}
	}

	// Update: name and duration; the duration restarts the lifetime.
	e.clk.Add(time.Hour)
	upd, err := e.client.UpdateServiceToken(e.ctx(), &adminv1.UpdateServiceTokenRequest{
		Id: tok.Id, Name: ptr("ci-deploy-2"), Duration: ptr("720h"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "ci-deploy-2" || upd.Duration != "720h" || !upd.ExpiresAt.AsTime().Equal(t0.Add(time.Hour+720*time.Hour)) || upd.ClientSecret != "" {
		t.Fatalf("Update = %v", upd)
	}

	// Refresh: expires_at = now + duration, secret kept.
	e.clk.Add(10 * time.Hour)
	ref, err := e.client.RefreshServiceToken(e.ctx(), &adminv1.RefreshServiceTokenRequest{Id: tok.ClientId})
	if err != nil {
		t.Fatal(err)
	}
	if !ref.ExpiresAt.AsTime().Equal(e.clk.Now().Add(720*time.Hour)) || ref.ClientSecretVersion != 1 {
		t.Fatalf("Refresh = %v", ref)
	}
	if r := e.storedToken(tok.Id).Verify(&d, e.clk.Now()); r != tokens.VerifyOK {
		t.Fatalf("after refresh the secret verifies as %s", r)
	}

	// "forever" clears expires_at.
	fe, err := e.client.UpdateServiceToken(e.ctx(), &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Duration: ptr("forever")})
	if err != nil {
		t.Fatal(err)
	}
	if fe.Duration != "forever" || fe.ExpiresAt != nil {
		t.Fatalf("forever token = %v", fe)
	}

	// Rotate: a new secret, the old one kept for the grace period.
	rot, err := e.client.RotateServiceToken(e.ctx(), &adminv1.RotateServiceTokenRequest{Id: tok.Id, Grace: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.ClientSecret == "" || rot.ClientSecret == tok.ClientSecret || rot.ClientSecretVersion != 2 || rot.ClientId != tok.ClientId {
		t.Fatalf("Rotate = %v", rot)
	}
	if !rot.PreviousClientSecretExpiresAt.AsTime().Equal(e.clk.Now().Add(24 * time.Hour)) {
		t.Fatalf("previous_client_secret_expires_at = %v", rot.PreviousClientSecretExpiresAt)
	}
	d2 := tokens.Digest(rot.ClientSecret)
	st := e.storedToken(tok.Id)
	if st.Verify(&d2, e.clk.Now()) != tokens.VerifyOK || st.Verify(&d, e.clk.Now()) != tokens.VerifyOKPrevious {
		t.Fatal("rotated token does not accept both secrets during the grace period")
	}

	// Disable: ends the grace period at once.
	dis, err := e.client.SetServiceTokenEnabled(e.ctx(), &adminv1.SetServiceTokenEnabledRequest{Id: tok.Id, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	if dis.Enabled || dis.PreviousClientSecretExpiresAt != nil {
		t.Fatalf("disabled token = %v", dis)
	}
	if r := e.storedToken(tok.Id).Verify(&d, e.clk.Now()); r == tokens.VerifyOKPrevious || r == tokens.VerifyOK {
		t.Fatalf("a disabled token accepts the previous secret: %s", r)
	}
	en, err := e.client.SetServiceTokenEnabled(e.ctx(), &adminv1.SetServiceTokenEnabledRequest{Id: tok.Id, Enabled: true})
	if err != nil || !en.Enabled {
		t.Fatalf("enable = %v, %v", en, err)
	}

	// Delete.
	del, err := e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: tok.Id})
	if err != nil || del.Id != tok.Id || len(del.PoliciesUpdated) != 0 {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	_, err = e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
	wantStatus(t, err, codes.NotFound, tok.Id)

	// Every change was audited under the bootstrap key, in order.
	var methods []string
	for _, ev := range e.audit() {
		if ev.Object != "" && strings.HasPrefix(ev.Object, tok.Id) {
			methods = append(methods, ev.Method)
			if ev.AdminKey != "bootstrap" || ev.Outcome != "ok" {
				t.Errorf("audit event %+v", ev)
			}
		}
	}
	want := []string{"CreateServiceToken", "UpdateServiceToken", "RefreshServiceToken", "UpdateServiceToken",
		"RotateServiceToken", "SetServiceTokenEnabled", "SetServiceTokenEnabled", "DeleteServiceToken"}
	if !slices.Equal(methods, want) {
		t.Fatalf("audited methods = %v, want %v", methods, want)
	}
	if ev := e.lastAudit(); ev.Object != tok.Id+" (ci-deploy-2)" {
		t.Fatalf("audit object = %q", ev.Object)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateServiceTokenBadInput(t *testing.T) {
	e := newEnv(t)
	e.createToken("taken", "")
	tests := []struct {
		name, tokName, duration string
		code                    codes.Code
		field                   string
	}{
		{"empty name", "", "", codes.InvalidArgument, "name: "},
		{"256-char name", strings.Repeat("x", 256), "", codes.InvalidArgument, "name: "},
		{"control char", "a\tb", "", codes.InvalidArgument, "name: "},
		{"leading space", " a", "", codes.InvalidArgument, "name: "},
		{"duplicate name", "taken", "", codes.AlreadyExists, "name: "},
		{"negative duration", "a", "-1h", codes.InvalidArgument, "duration: "},
		{"garbage duration", "a", "abc", codes.InvalidArgument, "duration: "},
		{"zero duration", "a", "0s", codes.InvalidArgument, "duration: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.CreateServiceToken(e.ctx(), &adminv1.CreateServiceTokenRequest{Name: tt.tokName, Duration: tt.duration})
			wantStatus(t, err, tt.code, tt.field)
			ev := e.lastAudit()
			if ev.Method != "CreateServiceToken" || ev.Outcome != tt.code.String() || ev.AdminKey != "bootstrap" {
				t.Fatalf("failure audit event = %+v", ev)
			}
		})
	}
	// 255 characters is fine, and nothing half-done stayed behind.
	e.createToken(strings.Repeat("é", 255), "forever")
	list, err := e.client.ListServiceTokens(e.ctx(), &adminv1.ListServiceTokensRequest{})
	if err != nil || len(list.ServiceTokens) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
}

func TestImportServiceToken(t *testing.T) {
	e := newEnv(t)
	const (
		cfID     = "88bf3b6d86161464f6509f7219099e57.access"
		cfSecret = "bdd31cbc4dec990953e39163fbbb194c93313ca9f0a6e420346af9d326b1d2a5"
	)
	imp, err := e.client.ImportServiceToken(e.ctx(), &adminv1.ImportServiceTokenRequest{
		Name: "from-cloudflare", ClientId: cfID, ClientSecret: cfSecret, Duration: "forever",
	})
	if err != nil {
		t.Fatal(err)
	}
	if imp.ClientId != cfID || imp.ClientSecret != "" || imp.ExpiresAt != nil {
		t.Fatalf("Import = %v", imp)
	}
	d := tokens.Digest(cfSecret)
	if r := e.storedToken(imp.Id).Verify(&d, t0); r != tokens.VerifyOK {
		t.Fatalf("imported secret verifies as %s", r)
	}
	ghst, err := tokens.NewSecret(tokens.SecretPrefix)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name               string
		req                *adminv1.ImportServiceTokenRequest
		code               codes.Code
		field              string
		secretNotInMessage string
	}{
		{"ghst secret", &adminv1.ImportServiceTokenRequest{Name: "b", ClientId: "00000000000000000000000000000001.access", ClientSecret: ghst}, codes.OK, "", ""},
		{"duplicate client id", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: cfID, ClientSecret: cfSecret}, codes.AlreadyExists, "client_id: ", ""},
		{"uppercase client id", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: strings.ToUpper(cfID[:32]) + ".access", ClientSecret: cfSecret}, codes.InvalidArgument, "client_id: ", ""},
		{"client id without .access", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: cfID[:32], ClientSecret: cfSecret}, codes.InvalidArgument, "client_id: ", ""},
		{"short hex secret", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: "00000000000000000000000000000002.access", ClientSecret: cfSecret[:63]}, codes.InvalidArgument, "client_secret: ", cfSecret[:63]},
		{"ghst secret with bad checksum", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: "00000000000000000000000000000002.access", ClientSecret: ghst[:len(ghst)-1] + "!"}, codes.InvalidArgument, "client_secret: ", ghst[:len(ghst)-1]},
		{"admin key as secret", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: "00000000000000000000000000000002.access", ClientSecret: e.key}, codes.InvalidArgument, "client_secret: ", e.key},
		{"bad duration", &adminv1.ImportServiceTokenRequest{Name: "c", ClientId: "00000000000000000000000000000002.access", ClientSecret: cfSecret, Duration: "1y"}, codes.InvalidArgument, "duration: ", ""},
		{"no name", &adminv1.ImportServiceTokenRequest{ClientId: "00000000000000000000000000000002.access", ClientSecret: cfSecret}, codes.InvalidArgument, "name: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ImportServiceToken(e.ctx(), tt.req)
			if tt.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantStatus(t, err, tt.code, tt.field)
			if tt.secretNotInMessage != "" && strings.Contains(err.Error(), tt.secretNotInMessage) {
				t.Fatalf("error echoes the secret: %v", err)
			}
		})
	}
}

func TestServiceTokenRefs(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("a", "")
	unknownID := tokens.NewID()
	const unknownClientID = "ffffffffffffffffffffffffffffffff.access"
	tests := []struct {
		name, ref string
		code      codes.Code
		msg       string
	}{
		{"empty", "", codes.InvalidArgument, "id: required"},
		{"malformed", "not-a-token", codes.InvalidArgument, "id: not a token id or client id"},
		{"uppercase uuid", strings.ToUpper(tok.Id), codes.InvalidArgument, "id: not a token id or client id"},
		{"name is not an id", "a", codes.InvalidArgument, "id: not a token id or client id"},
		{"unknown id", unknownID, codes.NotFound, unknownID},
		{"unknown client id", unknownClientID, codes.NotFound, unknownClientID},
	}
	calls := map[string]func(ref string) error{
		"Get": func(ref string) error {
			_, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: ref})
			return err
		},
		"Update": func(ref string) error {
			_, err := e.client.UpdateServiceToken(e.ctx(), &adminv1.UpdateServiceTokenRequest{Id: ref, Name: ptr("b")})
			return err
		},
		"Refresh": func(ref string) error {
			_, err := e.client.RefreshServiceToken(e.ctx(), &adminv1.RefreshServiceTokenRequest{Id: ref})
			return err
		},
		"Rotate": func(ref string) error {
			_, err := e.client.RotateServiceToken(e.ctx(), &adminv1.RotateServiceTokenRequest{Id: ref})
			return err
		},
		"SetEnabled": func(ref string) error {
			_, err := e.client.SetServiceTokenEnabled(e.ctx(), &adminv1.SetServiceTokenEnabledRequest{Id: ref})
			return err
		},
		"Delete": func(ref string) error {
			_, err := e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: ref})
			return err
		},
	}
	for call, fn := range calls {
		for _, tt := range tests {
			t.Run(call+"/"+tt.name, func(t *testing.T) {
				wantStatus(t, fn(tt.ref), tt.code, tt.msg)
			})
		}
	}
	// Nothing changed.
	got, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
	if err != nil || got.Name != "a" || !got.Enabled || got.ClientSecretVersion != 1 {
		t.Fatalf("token changed by failed calls: %v, %v", got, err)
	}
}

func TestUpdateServiceTokenBadInput(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("a", "")
	e.createToken("b", "")
	tests := []struct {
		name  string
		req   *adminv1.UpdateServiceTokenRequest
		code  codes.Code
		field string
	}{
		{"nothing", &adminv1.UpdateServiceTokenRequest{Id: tok.Id}, codes.InvalidArgument, "name, duration: nothing to update"},
		{"empty name", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Name: ptr("")}, codes.InvalidArgument, "name: "},
		{"taken name", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Name: ptr("b")}, codes.AlreadyExists, "name: "},
		{"empty duration", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Duration: ptr("")}, codes.InvalidArgument, "duration: "},
		{"negative duration", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Duration: ptr("-1h")}, codes.InvalidArgument, "duration: "},
		{"zero duration", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Duration: ptr("0s")}, codes.InvalidArgument, "duration: "},
		{"garbage duration", &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Duration: ptr("abc")}, codes.InvalidArgument, "duration: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.UpdateServiceToken(e.ctx(), tt.req)
			wantStatus(t, err, tt.code, tt.field)
		})
	}
}

func TestRotateGraceInput(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("a", "")
	tests := []struct {
		grace string
		code  codes.Code
		prev  time.Duration // expected previous-secret lifetime when OK
	}{
		{"", codes.OK, 0},
		{"0s", codes.OK, 0},
		{"1h", codes.OK, time.Hour},
		{"720h", codes.OK, 720 * time.Hour},
		{"30m", codes.InvalidArgument, 0},
		{"59m59s", codes.InvalidArgument, 0},
		{"721h", codes.InvalidArgument, 0},
		{"-1h", codes.InvalidArgument, 0},
		{"abc", codes.InvalidArgument, 0},
	}
	for _, tt := range tests {
		t.Run(tt.grace, func(t *testing.T) {
			before := e.storedToken(tok.Id).SecretVersion
			rot, err := e.client.RotateServiceToken(e.ctx(), &adminv1.RotateServiceTokenRequest{Id: tok.Id, Grace: tt.grace})
			if tt.code != codes.OK {
				wantStatus(t, err, tt.code, "grace: ")
				if v := e.storedToken(tok.Id).SecretVersion; v != before {
					t.Fatalf("failed rotation changed the secret version %d -> %d", before, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.prev == 0 && rot.PreviousClientSecretExpiresAt != nil {
				t.Fatalf("grace %q kept the previous secret until %v", tt.grace, rot.PreviousClientSecretExpiresAt.AsTime())
			}
			if tt.prev != 0 && !rot.PreviousClientSecretExpiresAt.AsTime().Equal(e.clk.Now().Add(tt.prev)) {
				t.Fatalf("grace %q: previous secret until %v", tt.grace, rot.PreviousClientSecretExpiresAt.AsTime())
			}
		})
	}
}

// TestRotationGraceBoundary walks the clock across the end of a rotation
// grace period: the previous secret works until the instant before, and not
// at the instant itself.
func TestRotationGraceBoundary(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("a", "forever")
	old := tokens.Digest(tok.ClientSecret)
	rot, err := e.client.RotateServiceToken(e.ctx(), &adminv1.RotateServiceTokenRequest{Id: tok.Id, Grace: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cur := tokens.Digest(rot.ClientSecret)
	end := t0.Add(time.Hour)
	tests := []struct {
		at       time.Time
		old      tokens.VerifyResult
		showPrev bool
	}{
		{t0, tokens.VerifyOKPrevious, true},
		{end.Add(-time.Nanosecond), tokens.VerifyOKPrevious, true},
		{end, tokens.VerifyWrongSecret, false},
		{end.Add(time.Second), tokens.VerifyWrongSecret, false},
	}
	for _, tt := range tests {
		e.clk.Set(tt.at)
		st := e.storedToken(tok.Id)
		if r := st.Verify(&old, tt.at); r != tt.old {
			t.Errorf("at grace end %+v: previous secret = %s, want %s", tt.at.Sub(end), r, tt.old)
		}
		if r := st.Verify(&cur, tt.at); r != tokens.VerifyOK {
			t.Errorf("at grace end %+v: current secret = %s", tt.at.Sub(end), r)
		}
		got, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
		if err != nil {
			t.Fatal(err)
		}
		if (got.PreviousClientSecretExpiresAt != nil) != tt.showPrev {
			t.Errorf("at grace end %+v: previous_client_secret_expires_at = %v", tt.at.Sub(end), got.PreviousClientSecretExpiresAt)
		}
	}
}

func TestListServiceTokens(t *testing.T) {
	e := newEnv(t)
	// Created in an order that differs from name order.
	e.createToken("zeta", "forever")
	e.createToken("Alpha-prod", "24h")
	e.createToken("alpha-dev", "1h")
	gamma := e.createToken("gamma", "100h")
	if _, err := e.client.SetServiceTokenEnabled(e.ctx(), &adminv1.SetServiceTokenEnabledRequest{Id: gamma.Id}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(2 * time.Hour) // alpha-dev has expired

	names := func(req *adminv1.ListServiceTokensRequest) []string {
		t.Helper()
		resp, err := e.client.ListServiceTokens(e.ctx(), req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tok := range resp.ServiceTokens {
			if tok.ClientSecret != "" {
				t.Fatalf("List returned a secret for %s", tok.Name)
			}
			out = append(out, tok.Name)
		}
		return out
	}
	tests := []struct {
		name string
		req  *adminv1.ListServiceTokensRequest
		want []string
	}{
		{"all, by name", &adminv1.ListServiceTokensRequest{}, []string{"Alpha-prod", "alpha-dev", "gamma", "zeta"}},
		{"name_contains ignores case", &adminv1.ListServiceTokensRequest{NameContains: "ALPHA"}, []string{"Alpha-prod", "alpha-dev"}},
		{"expiring within 24h", &adminv1.ListServiceTokensRequest{ExpiringWithin: "24h"}, []string{"Alpha-prod"}},
		{"expiring within 200h", &adminv1.ListServiceTokensRequest{ExpiringWithin: "200h"}, []string{"Alpha-prod", "gamma"}},
		{"expired", &adminv1.ListServiceTokensRequest{Expired: true}, []string{"alpha-dev"}},
		{"disabled", &adminv1.ListServiceTokensRequest{Disabled: true}, []string{"gamma"}},
		{"filters combine", &adminv1.ListServiceTokensRequest{NameContains: "a", Disabled: true, ExpiringWithin: "200h"}, []string{"gamma"}},
		{"nothing matches", &adminv1.ListServiceTokensRequest{NameContains: "omega"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.req); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"abc", "-1h", "0s"} {
		_, err := e.client.ListServiceTokens(e.ctx(), &adminv1.ListServiceTokensRequest{ExpiringWithin: bad})
		wantStatus(t, err, codes.InvalidArgument, "expiring_within: ")
	}
}

func TestDeleteServiceTokenInUse(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("shared", "")
	other := e.createToken("other", "")
	app := e.createApp("billing", "billing.example.com")
	app2 := e.createApp("reports", "reports.example.com")

	mk := func(app, name string, include, require []*adminv1.Rule) *adminv1.Policy {
		t.Helper()
		p, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
			Application: app, Name: name, Decision: "non_identity", Include: include, Require: require,
		})
		if err != nil {
			t.Fatalf("CreatePolicy %s: %v", name, err)
		}
		return p
	}
	only := mk(app.Id, "only-shared", []*adminv1.Rule{tokenRule("shared")}, nil)
	both := mk(app.Id, "shared-or-other", []*adminv1.Rule{tokenRule(tok.ClientId), tokenRule(other.Id)}, nil)
	req := mk(app2.Name, "office-and-shared", []*adminv1.Rule{ipRule("10.0.0.0/8")}, []*adminv1.Rule{tokenRule(tok.Id)})
	untouched := mk(app2.Name, "other-only", []*adminv1.Rule{tokenRule(other.Id)}, nil)

	got, err := e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
	if err != nil {
		t.Fatal(err)
	}
	var apps []string
	for _, a := range got.Applications {
		apps = append(apps, a.Name)
	}
	if !slices.Equal(apps, []string{"billing", "reports"}) {
		t.Fatalf("applications using the token = %v", apps)
	}

	_, err = e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: tok.Id})
	wantStatus(t, err, codes.FailedPrecondition, `"only-shared"`, `"shared-or-other"`, `"office-and-shared"`, "force")
	if ev := e.lastAudit(); ev.Outcome != "FailedPrecondition" || ev.Object != tok.Id {
		t.Fatalf("refused delete audit = %+v", ev)
	}
	e.storedToken(tok.Id) // still there

	del, err := e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: tok.Id, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(del.PoliciesUpdated)
	want := []string{only.Id, both.Id, req.Id}
	slices.Sort(want)
	if !slices.Equal(del.PoliciesUpdated, want) {
		t.Fatalf("policies_updated = %v, want %v", del.PoliciesUpdated, want)
	}
	// "only-shared" had no include left and "office-and-shared" required the
	// token: both can never match again and are gone. "shared-or-other"
	// keeps its other rule.
	for _, id := range []string{only.Id, req.Id} {
		_, err := e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: id})
		wantStatus(t, err, codes.NotFound)
	}
	p, err := e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: both.Id})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Include) != 1 || p.Include[0].GetServiceToken().GetTokenId() != other.Id {
		t.Fatalf("shared-or-other after force delete = %v", p.Include)
	}
	if _, err := e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: untouched.Id}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id})
	wantStatus(t, err, codes.NotFound)
	if ev := e.lastAudit(); ev.Method != "DeleteServiceToken" || ev.Outcome != "ok" || !strings.Contains(ev.Message, "deleted") {
		t.Fatalf("force delete audit = %+v", ev)
	}
}

// TestConcurrentCreate creates 100 tokens at once over gRPC: every one is
// stored, with unique ids, client ids and secrets.
func TestConcurrentCreate(t *testing.T) {
	e := newEnv(t)
	const n = 100
	type result struct {
		tok *adminv1.ServiceToken
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			tok, err := e.client.CreateServiceToken(e.ctx(), &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("svc-%03d", i)})
			results <- result{tok, err}
		}()
	}
	ids, clientIDs, secrets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		ids[r.tok.Id], clientIDs[r.tok.ClientId], secrets[r.tok.ClientSecret] = true, true, true
		d := tokens.Digest(r.tok.ClientSecret)
		if v := e.storedToken(r.tok.Id).Verify(&d, t0); v != tokens.VerifyOK {
			t.Fatalf("token %s verifies as %s", r.tok.Name, v)
		}
	}
	if len(ids) != n || len(clientIDs) != n || len(secrets) != n {
		t.Fatalf("unique ids %d, client ids %d, secrets %d; want %d each", len(ids), len(clientIDs), len(secrets), n)
	}
	var stored int
	if err := e.db.View(func(tx *store.Tx) error {
		return tx.ForEachToken(func(*tokens.ServiceToken) error { stored++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, ev := range e.audit() {
		if ev.Method == "CreateServiceToken" && ev.Outcome == "ok" {
			creates++
		}
	}
	if stored != n || creates != n {
		t.Fatalf("stored %d tokens and %d audit events, want %d", stored, creates, n)
	}
}
