package policy

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

const (
	tokA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	tokB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

var empty = &struct{}{}

func tokenRule(id string) Rule { return Rule{ServiceToken: &ServiceTokenRule{TokenID: id}} }
func ipRule(cidr string) Rule  { return Rule{IP: &IPRule{IP: cidr}} }

func pol(id string, d Decision, prec int, include ...Rule) *Policy {
	return &Policy{ID: id, ApplicationID: "app-a", Name: id, Decision: d, Precedence: prec, Include: include}
}

// compileOne compiles application "a" with the given policies.
func compileOne(t testing.TB, pols ...*Policy) *App {
	t.Helper()
	return mustCompile(t, []*Application{app("a", "a.example.com")}, pols).AppByName("a")
}

func TestSelectors(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name  string
		rule  Rule
		s     Subject
		match bool
	}{
		{"token match", tokenRule(tokA), Subject{TokenID: tokA}, true},
		{"token other", tokenRule(tokA), Subject{TokenID: tokB}, false},
		{"token none", tokenRule(tokA), Subject{}, false},
		{"any token", Rule{AnyValidServiceToken: empty}, Subject{TokenID: tokB}, true},
		{"any token none", Rule{AnyValidServiceToken: empty}, Subject{HasCertificate: true}, false},
		{"ip in", ipRule("10.0.0.0/8"), Subject{SourceIP: addr("10.1.2.3")}, true},
		{"ip out", ipRule("10.0.0.0/8"), Subject{SourceIP: addr("11.0.0.1")}, false},
		{"ip mapped", ipRule("10.0.0.0/8"), Subject{SourceIP: addr("::ffff:10.1.2.3")}, true},
		{"ip mapped out", ipRule("10.0.0.0/8"), Subject{SourceIP: addr("::ffff:11.1.2.3")}, false},
		{"ip unknown", ipRule("0.0.0.0/0"), Subject{}, false},
		{"ip v4 rule v6 addr", ipRule("0.0.0.0/0"), Subject{SourceIP: addr("2001:db8::1")}, false},
		{"ip v6", ipRule("2001:db8::/32"), Subject{SourceIP: addr("2001:db8::5")}, true},
		{"ip v6 zone", ipRule("fe80::/10"), Subject{SourceIP: addr("fe80::1%eth0")}, true},
		{"ip single", ipRule("192.0.2.7"), Subject{SourceIP: addr("192.0.2.7")}, true},
		{"ip single other", ipRule("192.0.2.7"), Subject{SourceIP: addr("192.0.2.8")}, false},
		{"principal exact", Rule{Principal: &PrincipalRule{Exact: "spiffe://c/ns/a/sa/b"}}, Subject{Principal: "spiffe://c/ns/a/sa/b"}, true},
		{"principal exact longer", Rule{Principal: &PrincipalRule{Exact: "spiffe://c/ns/a/sa/b"}}, Subject{Principal: "spiffe://c/ns/a/sa/bc"}, false},
		{"principal prefix", Rule{Principal: &PrincipalRule{Prefix: "spiffe://c/ns/a/"}}, Subject{Principal: "spiffe://c/ns/a/sa/x"}, true},
		{"principal prefix other", Rule{Principal: &PrincipalRule{Prefix: "spiffe://c/ns/a/"}}, Subject{Principal: "spiffe://c/ns/ab/sa/x"}, false},
		{"principal empty", Rule{Principal: &PrincipalRule{Prefix: "spiffe://"}}, Subject{}, false},
		{"certificate", Rule{Certificate: empty}, Subject{HasCertificate: true}, true},
		{"certificate none", Rule{Certificate: empty}, Subject{CommonName: "x"}, false},
		{"common name", Rule{CommonName: &CommonNameRule{CommonName: "client.example.com"}}, Subject{CommonName: "client.example.com"}, true},
		{"common name case", Rule{CommonName: &CommonNameRule{CommonName: "client.example.com"}}, Subject{CommonName: "Client.example.com"}, false},
		{"common name empty", Rule{CommonName: &CommonNameRule{CommonName: "client"}}, Subject{}, false},
		{"everyone", Rule{Everyone: empty}, Subject{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := compileOne(t, pol("p", NonIdentity, 1, tt.rule))
			r := a.Evaluate(&tt.s)
			if got := r.Decision == NonIdentity; got != tt.match {
				t.Fatalf("match = %v, want %v (result %+v)", got, tt.match, r)
			}
			if tt.match && (r.Policy == nil || r.Policy.ID != "p" || r.Rule != "include[0] "+tt.rule.selectors()) {
				t.Fatalf("result = %+v", r)
			}
			if !tt.match && (r != Result{}) {
				t.Fatalf("no match but result = %+v", r)
			}
		})
	}
}

func TestIncludeRequireExclude(t *testing.T) {
	p := pol("p", NonIdentity, 1, tokenRule(tokA), tokenRule(tokB), ipRule("192.0.2.0/24"))
	p.Require = []Rule{{Certificate: empty}, {Principal: &PrincipalRule{Prefix: "spiffe://c/"}}}
	p.Exclude = []Rule{ipRule("10.0.0.0/8"), {CommonName: &CommonNameRule{CommonName: "banned"}}}
	a := compileOne(t, p)
	ok := Subject{TokenID: tokB, HasCertificate: true, Principal: "spiffe://c/x", SourceIP: netip.MustParseAddr("172.16.0.1")}
	tests := []struct {
		name   string
		mutate func(s *Subject)
		rule   string // "" = no match
	}{
		{"second include", func(s *Subject) {}, "include[1] service_token"},
		{"first include", func(s *Subject) { s.TokenID = tokA }, "include[0] service_token"},
		{"third include", func(s *Subject) { s.TokenID = ""; s.SourceIP = netip.MustParseAddr("192.0.2.9") }, "include[2] ip"},
		{"no include", func(s *Subject) { s.TokenID = "" }, ""},
		{"first require fails", func(s *Subject) { s.HasCertificate = false }, ""},
		{"second require fails", func(s *Subject) { s.Principal = "spiffe://d/x" }, ""},
		{"first exclude", func(s *Subject) { s.SourceIP = netip.MustParseAddr("10.9.9.9") }, ""},
		{"second exclude", func(s *Subject) { s.CommonName = "banned" }, ""},
		{"exclude other cn", func(s *Subject) { s.CommonName = "fine" }, "include[1] service_token"},
	}
	for _, tt := range tests {
		s := ok
		tt.mutate(&s)
		r := a.Evaluate(&s)
		if r.Rule != tt.rule || (tt.rule == "") != (r.Decision == "") {
			t.Errorf("%s: result %+v, want rule %q", tt.name, r, tt.rule)
		}
	}
}

// TestCloudflareOrder uses the example from Cloudflare's policy docs: the
// list Allow A, Block B, Service Auth C, Bypass D, Allow E. Gatehouse runs
// bypass first (D), then service auth (C), then allow/block in order (A, B,
// E).
func TestCloudflareOrder(t *testing.T) {
	everyone := Rule{Everyone: empty}
	a := compileOne(t,
		pol("E", Allow, 5, ipRule("192.0.2.0/24")),
		pol("A", Allow, 1, tokenRule(tokA)),
		pol("D", Bypass, 4, ipRule("198.51.100.0/24")),
		pol("C", NonIdentity, 3, Rule{Certificate: empty}),
		pol("B", Deny, 2, Rule{AnyValidServiceToken: empty}, ipRule("192.0.2.128/25")),
		pol("F", Allow, 6, everyone),
	)
	var order string
	for _, p := range a.Policies() {
		order += p.ID
	}
	if order != "DCABEF" {
		t.Fatalf("evaluation order %q, want DCABEF", order)
	}
	ip := netip.MustParseAddr
	tests := []struct {
		name   string
		s      Subject
		bypass bool
		want   string // policy id deciding Evaluate
		dec    Decision
	}{
		{"bypass first", Subject{SourceIP: ip("198.51.100.1"), HasCertificate: true}, true, "C", NonIdentity},
		{"service auth before allow", Subject{TokenID: tokA, HasCertificate: true}, false, "C", NonIdentity},
		{"allow A before block B", Subject{TokenID: tokA}, false, "A", Allow},
		{"block B before allow E", Subject{TokenID: tokB, SourceIP: ip("192.0.2.1")}, false, "B", Deny},
		{"block B by ip before allow E", Subject{SourceIP: ip("192.0.2.200")}, false, "B", Deny},
		{"allow E", Subject{SourceIP: ip("192.0.2.1")}, false, "E", Allow},
		{"catch-all F", Subject{}, false, "F", Allow},
	}
	for _, tt := range tests {
		r, ok := a.Bypass(&tt.s)
		if ok != tt.bypass || (ok && (r.Decision != Bypass || r.Policy.ID != "D" || r.Rule != "include[0] ip")) {
			t.Errorf("%s: Bypass = %+v, %v; want bypass %v", tt.name, r, ok, tt.bypass)
		}
		r = a.Evaluate(&tt.s)
		if r.Policy == nil || r.Policy.ID != tt.want || r.Decision != tt.dec {
			t.Errorf("%s: Evaluate = %+v, want policy %s (%s)", tt.name, r, tt.want, tt.dec)
		}
	}
}

func TestNothingMatches(t *testing.T) {
	a := compileOne(t, pol("A", Allow, 1, tokenRule(tokA)), pol("B", Bypass, 1, ipRule("10.0.0.0/8")))
	if r := a.Evaluate(&Subject{TokenID: tokB}); r != (Result{}) {
		t.Errorf("Evaluate = %+v, want zero Result (deny by default)", r)
	}
	if r, ok := a.Bypass(&Subject{}); ok || r != (Result{}) {
		t.Errorf("Bypass = %+v, %v", r, ok)
	}
	// nil subject is anonymous; nil App decides nothing.
	if r := a.Evaluate(nil); r.Decision != "" {
		t.Errorf("nil subject: %+v", r)
	}
	var none *App
	if r := none.Evaluate(&Subject{}); r.Decision != "" {
		t.Errorf("nil app: %+v", r)
	}
	if _, ok := none.Bypass(&Subject{}); ok || none.HasCookieSessions() || none.Policies() != nil {
		t.Error("nil app must decide nothing")
	}
	// An application without policies denies everything.
	if r := compileOne(t).Evaluate(&Subject{TokenID: tokA}); r.Decision != "" {
		t.Errorf("no policies: %+v", r)
	}
}

func TestEqualPrecedenceOrder(t *testing.T) {
	// Same precedence: ordered by name, then id, whatever the input order.
	p1 := pol("id-2", Deny, 1, Rule{Everyone: empty})
	p1.Name = "beta"
	p2 := pol("id-1", Allow, 1, Rule{Everyone: empty})
	p2.Name = "alpha"
	p3 := pol("id-0", Deny, 1, Rule{Everyone: empty})
	p3.Name = "beta"
	for _, pols := range [][]*Policy{{p1, p2, p3}, {p3, p2, p1}, {p2, p3, p1}} {
		a := compileOne(t, pols...)
		var got []string
		for _, p := range a.Policies() {
			got = append(got, p.ID)
		}
		if len(got) != 3 || got[0] != "id-1" || got[1] != "id-0" || got[2] != "id-2" {
			t.Fatalf("order %v, want [id-1 id-0 id-2]", got)
		}
		if r := a.Evaluate(&Subject{}); r.Policy.ID != "id-1" || r.Decision != Allow {
			t.Fatalf("Evaluate = %+v", r)
		}
	}
}

func TestHasCookieSessions(t *testing.T) {
	a := app("a", "a.example.com")
	a.SessionCookie = true
	e := mustCompile(t, []*Application{a, app("b", "b.example.com")}, nil)
	if !e.AppByName("a").HasCookieSessions() || e.AppByName("b").HasCookieSessions() {
		t.Error("HasCookieSessions does not follow SessionCookie")
	}
}

func TestEvaluateAllocs(t *testing.T) {
	p := pol("p", NonIdentity, 3, tokenRule(tokB), ipRule("10.0.0.0/8"))
	p.Require = []Rule{{Certificate: empty}}
	p.Exclude = []Rule{{CommonName: &CommonNameRule{CommonName: "x"}}}
	a := compileOne(t,
		pol("bp", Bypass, 1, ipRule("198.51.100.0/24")),
		pol("n", NonIdentity, 1, tokenRule(tokA)), p,
		pol("d", Deny, 1, Rule{Principal: &PrincipalRule{Prefix: "spiffe://evil/"}}),
		pol("e", Allow, 2, Rule{Everyone: empty}))
	subjects := []Subject{
		{TokenID: tokB, SourceIP: netip.MustParseAddr("::ffff:10.1.1.1"), HasCertificate: true},
		{TokenID: "none"},
		{Principal: "spiffe://evil/x"},
	}
	for i := range subjects {
		s := &subjects[i]
		if n := testing.AllocsPerRun(100, func() { a.Evaluate(s) }); n != 0 {
			t.Errorf("Evaluate(%+v) allocates %v times", *s, n)
		}
		if n := testing.AllocsPerRun(100, func() { a.Bypass(s) }); n != 0 {
			t.Errorf("Bypass(%+v) allocates %v times", *s, n)
		}
	}
}

func TestPolicyNamesToken(t *testing.T) {
	p := pol("p", Allow, 1, Rule{Everyone: empty})
	if PolicyNamesToken(p, tokA) || PolicyNamesToken(nil, tokA) || PolicyNamesToken(p, "") {
		t.Fatal("names a token it does not")
	}
	for _, set := range []func(){
		func() { p.Include = append(p.Include, tokenRule(tokA)) },
		func() { p.Require = []Rule{tokenRule(tokA)} },
		func() { p.Exclude = []Rule{tokenRule(tokA)} },
	} {
		p = pol("p", Allow, 1, Rule{Everyone: empty})
		set()
		if !PolicyNamesToken(p, tokA) || PolicyNamesToken(p, tokB) {
			t.Errorf("PolicyNamesToken wrong for %+v", p)
		}
	}
}

func TestRemoveToken(t *testing.T) {
	tests := []struct {
		name                      string
		p                         *Policy
		changed, emptied          bool
		include, require, exclude int
	}{
		{"not named", pol("p", Allow, 1, tokenRule(tokB)), false, false, 1, 0, 0},
		{"one of two includes", pol("p", Allow, 1, tokenRule(tokA), tokenRule(tokB)), true, false, 1, 0, 0},
		{"only include", pol("p", NonIdentity, 1, tokenRule(tokA)), true, true, 0, 0, 0},
		{"twice", pol("p", NonIdentity, 1, tokenRule(tokA), tokenRule(tokA)), true, true, 0, 0, 0},
		{"exclude", func() *Policy {
			p := pol("p", Allow, 1, Rule{Everyone: empty})
			p.Exclude = []Rule{tokenRule(tokA), ipRule("10.0.0.0/8")}
			return p
		}(), true, false, 1, 0, 1},
		// A require naming the token can never be met again: the rule is
		// kept (dropping it would widen the policy) and the policy is emptied.
		{"require", func() *Policy {
			p := pol("p", Allow, 1, Rule{Everyone: empty})
			p.Require = []Rule{tokenRule(tokA)}
			return p
		}(), false, true, 1, 1, 0},
	}
	for _, tt := range tests {
		shared := tt.p.Include
		orig := slices.Clone(shared)
		changed, emptied := RemoveToken(tt.p, tokA)
		if changed != tt.changed || emptied != tt.emptied {
			t.Errorf("%s: RemoveToken = %v, %v; want %v, %v", tt.name, changed, emptied, tt.changed, tt.emptied)
		}
		if len(tt.p.Include) != tt.include || len(tt.p.Require) != tt.require || len(tt.p.Exclude) != tt.exclude {
			t.Errorf("%s: left %d/%d/%d rules, want %d/%d/%d", tt.name,
				len(tt.p.Include), len(tt.p.Require), len(tt.p.Exclude), tt.include, tt.require, tt.exclude)
		}
		if PolicyNamesToken(tt.p, tokA) && tt.require == 0 {
			t.Errorf("%s: still names the token", tt.name)
		}
		if !reflect.DeepEqual(shared, orig) {
			t.Errorf("%s: modified the caller's shared slice", tt.name)
		}
		// A policy that was not emptied still validates and compiles.
		if !tt.emptied {
			if err := ValidatePolicy(tt.p); err != nil {
				t.Errorf("%s: invalid after RemoveToken: %v", tt.name, err)
			}
		}
	}
	if c, e := RemoveToken(nil, tokA); c || e {
		t.Error("nil policy")
	}
}
