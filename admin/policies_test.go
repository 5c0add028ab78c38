package admin_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestPolicyLifecycle(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("ci", "")
	a := e.createApp("b-app", "b.example.com")
	z := e.createApp("a-app", "a.example.com")

	// The token may be named by id, client id or name; it is stored by id.
	var ps []*adminv1.Policy
	for i, ref := range []string{tok.Id, tok.ClientId, tok.Name} {
		p, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
			Application: a.Name, Name: "p" + string(rune('1'+i)), Decision: "non_identity",
			Include: []*adminv1.Rule{tokenRule(ref)},
		})
		if err != nil {
			t.Fatalf("CreatePolicy with token ref %q: %v", ref, err)
		}
		if got := p.Include[0].GetServiceToken().GetTokenId(); got != tok.Id {
			t.Fatalf("rule stored token %q, want id %s", got, tok.Id)
		}
		if p.Precedence != int32(i+1) || p.ApplicationId != a.Id || p.Decision != "non_identity" {
			t.Fatalf("policy %d = %v", i, p)
		}
		ps = append(ps, p)
	}
	// Explicit precedence; the next default goes above the highest.
	hi, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
		Application: a.Id, Name: "office", Decision: "allow", Precedence: ptr[int32](10),
		Include:         []*adminv1.Rule{ipRule("10.0.0.0/8"), ipRule("2001:db8::/32")},
		Require:         []*adminv1.Rule{{Selector: &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}}},
		Exclude:         []*adminv1.Rule{{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: "bad"}}}},
		SessionDuration: "30m",
	})
	if err != nil {
		t.Fatal(err)
	}
	if hi.Precedence != 10 || len(hi.Include) != 2 || hi.Require[0].GetCertificate() == nil || hi.Exclude[0].GetCommonName().GetCommonName() != "bad" || hi.SessionDuration != "30m" {
		t.Fatalf("office policy = %v", hi)
	}
	next, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
		Application: a.Id, Name: "mesh", Decision: "non_identity",
		Include: []*adminv1.Rule{{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: "spiffe://cluster.local/ns/prod/"}}}},
	})
	if err != nil || next.Precedence != 11 {
		t.Fatalf("default precedence = %v, %v", next, err)
	}
	first, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
		Application: z.Id, Name: "anyone-with-a-token", Decision: "non_identity",
		Include: []*adminv1.Rule{{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}}},
	})
	if err != nil || first.Precedence != 1 {
		t.Fatalf("first policy of a-app = %v, %v", first, err)
	}

	// List: by application name, then precedence.
	list, err := e.client.ListPolicies(e.ctx(), &adminv1.ListPoliciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, p := range list.Policies {
		order = append(order, p.Name)
	}
	if want := []string{"anyone-with-a-token", "p1", "p2", "p3", "office", "mesh"}; !slices.Equal(order, want) {
		t.Fatalf("ListPolicies order = %v, want %v", order, want)
	}
	list, err = e.client.ListPolicies(e.ctx(), &adminv1.ListPoliciesRequest{Application: "a-app"})
	if err != nil || len(list.Policies) != 1 {
		t.Fatalf("ListPolicies(a-app) = %v, %v", list, err)
	}
	_, err = e.client.ListPolicies(e.ctx(), &adminv1.ListPoliciesRequest{Application: "nope"})
	wantStatus(t, err, codes.NotFound, "application: ", `"nope"`)

	got, err := e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: hi.Id})
	if err != nil || got.Name != "office" {
		t.Fatalf("GetPolicy = %v, %v", got, err)
	}

	// Update: scalar fields, then the rules with replace_rules.
	upd, err := e.client.UpdatePolicy(e.ctx(), &adminv1.UpdatePolicyRequest{
		Id: hi.Id, Name: ptr("office-v2"), Decision: ptr("deny"), Precedence: ptr[int32](5), SessionDuration: ptr(""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "office-v2" || upd.Decision != "deny" || upd.Precedence != 5 || upd.SessionDuration != "" || len(upd.Include) != 2 {
		t.Fatalf("UpdatePolicy = %v", upd)
	}
	upd, err = e.client.UpdatePolicy(e.ctx(), &adminv1.UpdatePolicyRequest{
		Id: hi.Id, ReplaceRules: true, Include: []*adminv1.Rule{everyone()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(upd.Include) != 1 || upd.Include[0].GetEveryone() == nil || len(upd.Require) != 0 || len(upd.Exclude) != 0 {
		t.Fatalf("UpdatePolicy rules = %v", upd)
	}

	del, err := e.client.DeletePolicy(e.ctx(), &adminv1.DeletePolicyRequest{Id: ps[0].Id})
	if err != nil || del.Id != ps[0].Id {
		t.Fatalf("DeletePolicy = %v, %v", del, err)
	}
	_, err = e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: ps[0].Id})
	wantStatus(t, err, codes.NotFound, ps[0].Id)
	if ev := e.lastAudit(); ev.Method != "DeletePolicy" || ev.Object != ps[0].Id+" (p1)" || ev.Outcome != "ok" {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestPolicyBadInput(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("ci", "")
	a := e.createApp("app", "app.example.com")
	existing, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
		Application: a.Id, Name: "existing", Decision: "non_identity", Include: []*adminv1.Rule{tokenRule(tok.Id)},
	})
	if err != nil {
		t.Fatal(err)
	}
	unknownID := tokens.NewID()
	ok := func(r *adminv1.CreatePolicyRequest) *adminv1.CreatePolicyRequest {
		if r.Application == "" {
			r.Application = a.Id
		}
		if r.Name == "" {
			r.Name = "new"
		}
		if r.Decision == "" {
			r.Decision = "non_identity"
		}
		if r.Include == nil {
			r.Include = []*adminv1.Rule{tokenRule(tok.Id)}
		}
		return r
	}
	tests := []struct {
		name string
		req  *adminv1.CreatePolicyRequest
		code codes.Code
		msg  string
	}{
		{"no application", &adminv1.CreatePolicyRequest{Name: "x", Decision: "allow", Include: []*adminv1.Rule{everyone()}}, codes.InvalidArgument, "application: "},
		{"unknown application", ok(&adminv1.CreatePolicyRequest{Application: "nope"}), codes.NotFound, "application: "},
		{"no name", &adminv1.CreatePolicyRequest{Application: a.Id, Decision: "allow", Include: []*adminv1.Rule{everyone()}}, codes.InvalidArgument, "name: "},
		{"duplicate name", ok(&adminv1.CreatePolicyRequest{Name: "existing"}), codes.AlreadyExists, "name: "},
		{"no decision", &adminv1.CreatePolicyRequest{Application: a.Id, Name: "x", Include: []*adminv1.Rule{everyone()}}, codes.InvalidArgument, "decision: "},
		{"unknown decision", ok(&adminv1.CreatePolicyRequest{Decision: "block"}), codes.InvalidArgument, "decision: "},
		{"precedence zero", ok(&adminv1.CreatePolicyRequest{Precedence: ptr[int32](0)}), codes.InvalidArgument, "precedence: "},
		{"precedence taken", ok(&adminv1.CreatePolicyRequest{Precedence: ptr[int32](1)}), codes.InvalidArgument, "precedence: "},
		{"no include", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{}}), codes.InvalidArgument, "include: "},
		{"rule without selector", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{{}}}), codes.InvalidArgument, "include[0]: "},
		{"unknown token id", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{tokenRule(unknownID)}}), codes.NotFound, "include[0].service_token.token_id: "},
		{"unknown token name", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{everyone(), tokenRule("ghost")}}), codes.NotFound, "include[1].service_token.token_id: "},
		{"empty token id", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{tokenRule("")}}), codes.InvalidArgument, "include[0].service_token.token_id: "},
		{"unknown token in require", ok(&adminv1.CreatePolicyRequest{Require: []*adminv1.Rule{tokenRule("ghost")}}), codes.NotFound, "require[0].service_token.token_id: "},
		{"bad cidr", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{ipRule("10.0.0.300/8")}}), codes.InvalidArgument, "include[0]: "},
		{"host bits in cidr", ok(&adminv1.CreatePolicyRequest{Exclude: []*adminv1.Rule{ipRule("10.0.0.1/8")}}), codes.InvalidArgument, "exclude[0]: "},
		{"principal both", ok(&adminv1.CreatePolicyRequest{Include: []*adminv1.Rule{{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Exact: "a", Prefix: "b"}}}}}), codes.InvalidArgument, "include[0]: "},
		{"bypass with token", ok(&adminv1.CreatePolicyRequest{Decision: "bypass"}), codes.InvalidArgument, "include[0]: "},
		{"bad session", ok(&adminv1.CreatePolicyRequest{SessionDuration: "forever"}), codes.InvalidArgument, "session_duration: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.CreatePolicy(e.ctx(), tt.req)
			wantStatus(t, err, tt.code, tt.msg)
		})
	}
	list, err := e.client.ListPolicies(e.ctx(), &adminv1.ListPoliciesRequest{})
	if err != nil || len(list.Policies) != 1 {
		t.Fatalf("failed creates left policies behind: %v, %v", list, err)
	}

	other, err := e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{
		Application: a.Id, Name: "other", Decision: "deny", Include: []*adminv1.Rule{everyone()},
	})
	if err != nil {
		t.Fatal(err)
	}
	upd := []struct {
		name string
		req  *adminv1.UpdatePolicyRequest
		code codes.Code
		msg  string
	}{
		{"no id", &adminv1.UpdatePolicyRequest{Name: ptr("x")}, codes.InvalidArgument, "id: "},
		{"malformed id", &adminv1.UpdatePolicyRequest{Id: "p1", Name: ptr("x")}, codes.InvalidArgument, "id: "},
		{"unknown id", &adminv1.UpdatePolicyRequest{Id: unknownID, Name: ptr("x")}, codes.NotFound, unknownID},
		{"rules without replace_rules", &adminv1.UpdatePolicyRequest{Id: other.Id, Include: []*adminv1.Rule{everyone()}}, codes.InvalidArgument, "replace_rules: "},
		{"replace with no include", &adminv1.UpdatePolicyRequest{Id: other.Id, ReplaceRules: true}, codes.InvalidArgument, "include: "},
		{"rename to sibling", &adminv1.UpdatePolicyRequest{Id: other.Id, Name: ptr("existing")}, codes.AlreadyExists, "name: "},
		{"precedence of sibling", &adminv1.UpdatePolicyRequest{Id: other.Id, Precedence: ptr(existing.Precedence)}, codes.InvalidArgument, "precedence: "},
		{"bad decision", &adminv1.UpdatePolicyRequest{Id: other.Id, Decision: ptr("")}, codes.InvalidArgument, "decision: "},
		{"to bypass with token rules", &adminv1.UpdatePolicyRequest{Id: existing.Id, Decision: ptr("bypass")}, codes.InvalidArgument, "include[0]: "},
		{"unknown token", &adminv1.UpdatePolicyRequest{Id: other.Id, ReplaceRules: true, Include: []*adminv1.Rule{tokenRule("ghost")}}, codes.NotFound, "include[0].service_token.token_id: "},
	}
	for _, tt := range upd {
		t.Run("update/"+tt.name, func(t *testing.T) {
			_, err := e.client.UpdatePolicy(e.ctx(), tt.req)
			wantStatus(t, err, tt.code, tt.msg)
		})
	}
	got, err := e.client.GetPolicy(e.ctx(), &adminv1.GetPolicyRequest{Id: other.Id})
	if err != nil || got.Name != "other" || got.Decision != "deny" || got.Include[0].GetEveryone() == nil {
		t.Fatalf("failed updates changed the policy: %v, %v", got, err)
	}
	_, err = e.client.DeletePolicy(e.ctx(), &adminv1.DeletePolicyRequest{Id: "x"})
	wantStatus(t, err, codes.InvalidArgument, "id: ")
	_, err = e.client.DeletePolicy(e.ctx(), &adminv1.DeletePolicyRequest{Id: unknownID})
	wantStatus(t, err, codes.NotFound, unknownID)
}
