package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

const polID = "3f0c1e8a-2b4d-4f6e-9a1b-5c7d9e0f1a2b"

func samplePolicy() *adminv1.Policy {
	return &adminv1.Policy{
		Id: polID, ApplicationId: appID, Name: "ci", Decision: "non_identity", Precedence: 1,
		Include:   []*adminv1.Rule{stRule(tokID), ipRule("10.0.0.0/8")},
		Require:   []*adminv1.Rule{{Selector: &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}}},
		Exclude:   []*adminv1.Rule{ipRule("10.9.0.0/16")},
		CreatedAt: ts(testNow.Add(-time.Hour)), UpdatedAt: ts(testNow.Add(-time.Hour)),
	}
}

func stRule(id string) *adminv1.Rule {
	return &adminv1.Rule{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: id}}}
}

func ipRule(cidr string) *adminv1.Rule {
	return &adminv1.Rule{Selector: &adminv1.Rule_Ip{Ip: &adminv1.IPRule{Ip: cidr}}}
}

func TestParseRule(t *testing.T) {
	empty := &adminv1.Empty{}
	for _, tc := range []struct {
		in   string
		want *adminv1.Rule
		err  error
	}{
		{"service_token=" + tokID, stRule(tokID), nil},
		{"service-token=ci-deploy", stRule("ci-deploy"), nil}, // resolved later
		{"any_valid_service_token", &adminv1.Rule{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: empty}}, nil},
		{"ip=10.0.0.0/8", ipRule("10.0.0.0/8"), nil},
		{"ip=2001:db8::/32", ipRule("2001:db8::/32"), nil},
		{"ip=192.0.2.7", ipRule("192.0.2.7"), nil},
		{"principal=spiffe://cluster.local/ns/a/sa/b", &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Exact: "spiffe://cluster.local/ns/a/sa/b"}}}, nil},
		{"principal-prefix=spiffe://cluster.local/ns/a/", &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: "spiffe://cluster.local/ns/a/"}}}, nil},
		{"principal_prefix=spiffe://x/", &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: "spiffe://x/"}}}, nil},
		{"certificate", &adminv1.Rule{Selector: &adminv1.Rule_Certificate{Certificate: empty}}, nil},
		{"common_name=client.example.com", &adminv1.Rule{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: "client.example.com"}}}, nil},
		{"common_name=a=b", &adminv1.Rule{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: "a=b"}}}, nil},
		{"Everyone", &adminv1.Rule{Selector: &adminv1.Rule_Everyone{Everyone: empty}}, nil},

		{"", nil, errUnknownSelector},
		{"email=a@example.com", nil, errUnknownSelector},
		{"service_token", nil, errSelectorValue},
		{"service_token=", nil, errSelectorValue},
		{"ip=10.0.0.0/33", nil, errSelectorValue},
		{"ip=ten", nil, errSelectorValue},
		{"everyone=yes", nil, errSelectorValue},
		{"certificate=", nil, errSelectorValue},
		{"principal", nil, errSelectorValue},
	} {
		got, err := parseRule(tc.in)
		if !errors.Is(err, tc.err) || !proto.Equal(got, tc.want) {
			t.Errorf("parseRule(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseRule checks that parseRule never panics and that what it accepts
// prints back (formatRule) to a rule that parses to the same thing.
func FuzzParseRule(f *testing.F) {
	for _, seed := range []string{
		"service_token=0b7c5a52-8f3e-4c1d-9a6b-2e4f8d0c1a3b", // a token id
		"any_valid_service_token",                            // no value
		"ip=10.0.0.0/8",                                      // IPv4 CIDR
		"ip=::1",                                             // IPv6 address
		"principal=spiffe://td/ns/a/sa/b",                    // exact principal
		"principal-prefix=spiffe://td/ns/",                   // "-" spelling
		"common_name=a=b",                                    // "=" in the value
		"everyone=",                                          // a value where none is taken
		"=x",                                                 // no selector
		"ip=1.2.3.4%eth0",                                    // a zone
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRule(s)
		if err != nil {
			return
		}
		again, err := parseRule(formatRule(r))
		if err != nil || !proto.Equal(r, again) {
			t.Fatalf("%q → %q → %v, %v", s, formatRule(r), again, err)
		}
	})
}

func TestPolicyCreate(t *testing.T) {
	f := tokenFake(t)
	on(f, "CreatePolicy", func(*adminv1.CreatePolicyRequest) (*adminv1.Policy, error) { return samplePolicy(), nil })
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{Applications: []*adminv1.Application{sampleApp()}}, nil
	})
	r := f.run(t, "", "policy", "create", "internal-api", "ci", "--decision", "non_identity", "--precedence", "0",
		"--include", "service_token=ci-deploy", // by name
		"--include", "service_token="+tokCID, // by client id
		"--include", "principal-prefix=spiffe://cluster.local/ns/prod/",
		"--require", "ip=10.0.0.0/8", "--require", "certificate",
		"--exclude", "common_name=evil", "--exclude", "everyone",
		"--session-duration", "2h").ok(t)
	want := &adminv1.CreatePolicyRequest{
		Application: "internal-api", Name: "ci", Decision: "non_identity", Precedence: proto.Int32(0),
		Include: []*adminv1.Rule{stRule(tokID), stRule(tokID),
			{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Prefix: "spiffe://cluster.local/ns/prod/"}}}},
		Require: []*adminv1.Rule{ipRule("10.0.0.0/8"), {Selector: &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}}},
		Exclude: []*adminv1.Rule{{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: "evil"}}},
			{Selector: &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}}},
		SessionDuration: "2h",
	}
	if req := lastReq[*adminv1.CreatePolicyRequest](t, f, "CreatePolicy"); !proto.Equal(req, want) {
		t.Fatalf("request =\n%v\nwant\n%v", req, want)
	}
	for _, w := range []string{"application:", "internal-api (" + appID + ")", "include:", "service_token=" + tokID + "\n",
		"ip=10.0.0.0/8\n", "require:", "certificate\n", "exclude:", "ip=10.9.0.0/16\n", "session duration:", "the application's"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.stdout)
		}
	}

	// Without --precedence: unset, so the server appends.
	f.run(t, "", "policy", "create", appID, "any", "--decision", "non_identity", "--include", "any_valid_service_token").ok(t)
	if req := lastReq[*adminv1.CreatePolicyRequest](t, f, "CreatePolicy"); req.Precedence != nil || req.Application != appID {
		t.Fatalf("request = %v", req)
	}

	calls := len(f.methods())
	f.run(t, "", "policy", "create", "internal-api", "x", "--include", "everyone").fails(t, exitUsage, "--decision is required")
	f.run(t, "", "policy", "create", "internal-api", "x", "--decision", "allow").fails(t, exitUsage, "--include")
	f.run(t, "", "policy", "create", "internal-api", "--decision", "allow", "--include", "everyone").fails(t, exitUsage, "want APP NAME")
	f.run(t, "", "policy", "create", "internal-api", "x", "--decision", "allow", "--include", "email=a@example.com").
		fails(t, exitUsage, `invalid value "email=a@example.com" for flag -include: unknown selector "email"`)
	f.run(t, "", "policy", "create", "internal-api", "x", "--decision", "allow", "--include", "everyone", "--exclude", "ip=nope").
		fails(t, exitUsage, "-exclude", "ip=nope is neither a CIDR nor an IP address")
	f.run(t, "", "policy", "create", "internal-api", "x", "--decision", "allow", "--include", "everyone", "--precedence", "99999999999").
		fails(t, exitUsage, "out of range")
	if len(f.methods()) != calls {
		t.Fatalf("usage errors reached the server: %v", f.methods()[calls:])
	}
	f.run(t, "", "policy", "create", "internal-api", "x", "--decision", "allow", "--include", "service_token=nope").
		fails(t, exitError, `service_token=nope: no service token has the id, client id or name "nope"`)
}

func TestPolicyUpdateKeepsListsNotGiven(t *testing.T) {
	f := tokenFake(t)
	on(f, "GetPolicy", func(*adminv1.GetPolicyRequest) (*adminv1.Policy, error) { return samplePolicy(), nil })
	on(f, "UpdatePolicy", func(*adminv1.UpdatePolicyRequest) (*adminv1.Policy, error) { return samplePolicy(), nil })
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{}, nil
	})
	cur := samplePolicy()
	for _, tc := range []struct {
		args []string
		want *adminv1.UpdatePolicyRequest
	}{
		{[]string{"--name", "n", "--decision", "allow", "--precedence", "3", "--session-duration", ""},
			&adminv1.UpdatePolicyRequest{Id: polID, Name: proto.String("n"), Decision: proto.String("allow"), Precedence: proto.Int32(3), SessionDuration: proto.String("")}},
		{[]string{"--exclude", "ip=192.0.2.0/24"},
			&adminv1.UpdatePolicyRequest{Id: polID, ReplaceRules: true, Include: cur.Include, Require: cur.Require, Exclude: []*adminv1.Rule{ipRule("192.0.2.0/24")}}},
		{[]string{"--include", "service_token=ci-deploy", "--no-require"},
			&adminv1.UpdatePolicyRequest{Id: polID, ReplaceRules: true, Include: []*adminv1.Rule{stRule(tokID)}, Exclude: cur.Exclude}},
		{[]string{"--no-exclude", "--require", "everyone"},
			&adminv1.UpdatePolicyRequest{Id: polID, ReplaceRules: true, Include: cur.Include, Require: []*adminv1.Rule{{Selector: &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}}}}},
	} {
		f.run(t, "", append([]string{"policy", "update", polID}, tc.args...)...).ok(t)
		if req := lastReq[*adminv1.UpdatePolicyRequest](t, f, "UpdatePolicy"); !proto.Equal(req, tc.want) {
			t.Errorf("%q: request =\n%v\nwant\n%v", tc.args, req, tc.want)
		}
	}
	f.run(t, "", "policy", "update", polID).fails(t, exitUsage, "nothing to update")
	f.run(t, "", "policy", "update", polID, "--require", "everyone", "--no-require").fails(t, exitUsage, "contradict")
	f.run(t, "", "policy", "update", polID, "--include", "bogus").fails(t, exitUsage, `unknown selector "bogus"`)
}

func TestPolicyListGetDelete(t *testing.T) {
	f := appFake(t)
	on(f, "GetPolicy", func(*adminv1.GetPolicyRequest) (*adminv1.Policy, error) { return samplePolicy(), nil })
	on(f, "DeletePolicy", func(r *adminv1.DeletePolicyRequest) (*adminv1.DeletePolicyResponse, error) {
		return &adminv1.DeletePolicyResponse{Id: r.Id}, nil
	})

	r := f.run(t, "", "policy", "list", "internal-api").ok(t)
	if req := lastReq[*adminv1.ListPoliciesRequest](t, f, "ListPolicies"); req.Application != "internal-api" {
		t.Fatalf("request = %v", req)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "internal-api") ||
		!strings.Contains(lines[1], "include: service_token="+tokID+", ip=10.0.0.0/8; require: certificate; exclude: ip=10.9.0.0/16") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	r = f.run(t, "", "policy", "list", "-o", "json").ok(t)
	if req := lastReq[*adminv1.ListPoliciesRequest](t, f, "ListPolicies"); req.Application != "" {
		t.Fatalf("request = %v", req)
	}
	got := jsonArray(t, r.stdout, func() *adminv1.Policy { return new(adminv1.Policy) })
	if len(got) != 2 || !proto.Equal(got[0], samplePolicy()) {
		t.Fatalf("json = %s", r.stdout)
	}

	r = f.run(t, "", "policy", "get", polID, "-o", "json").ok(t)
	var p adminv1.Policy
	jsonObject(t, r.stdout, &p)
	if !proto.Equal(&p, samplePolicy()) {
		t.Fatalf("json = %s", r.stdout)
	}

	f.run(t, "", "policy", "delete", polID).fails(t, exitUsage, "--yes")
	r = invocation{env: f.env(), stdin: "y\n", terminal: true}.exec(t, "policy", "delete", polID)
	if r.code != 0 || r.stderr != "Delete policy ci (non_identity) of application internal-api? [y/N] " || r.stdout != "Deleted policy "+polID+".\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if req := lastReq[*adminv1.DeletePolicyRequest](t, f, "DeletePolicy"); req.Id != polID {
		t.Fatalf("request = %v", req)
	}
}
