package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testAUD = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func validApp() *Application {
	return &Application{
		ID:              "11111111-1111-4111-8111-111111111111",
		Name:            "internal api",
		Domains:         []string{"api.example.com", "*.api.example.com/v1"},
		AUD:             testAUD,
		SessionDuration: 24 * time.Hour,
	}
}

func validPolicy() *Policy {
	return &Policy{
		ID:            "22222222-2222-4222-8222-222222222222",
		ApplicationID: "11111111-1111-4111-8111-111111111111",
		Name:          "ci",
		Decision:      NonIdentity,
		Precedence:    1,
		Include:       []Rule{{ServiceToken: &ServiceTokenRule{TokenID: "33333333-3333-4333-8333-333333333333"}}},
	}
}

func TestValidateApplication(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(a *Application)
		err    string // substring; "" = valid
	}{
		{"valid", func(a *Application) {}, ""},
		{"valid header", func(a *Application) { a.ServiceTokenHeader = "x-service-auth" }, ""},
		{"valid tchar header", func(a *Application) { a.ServiceTokenHeader = "x!#$%&'*+-.^_`|~1" }, ""},
		{"min session", func(a *Application) { a.SessionDuration = time.Minute }, ""},
		{"max session", func(a *Application) { a.SessionDuration = 730 * time.Hour }, ""},
		{"nameless", func(a *Application) { a.Name = "" }, "name: required"},
		{"name space", func(a *Application) { a.Name = " api" }, "name: leading or trailing space"},
		{"name control", func(a *Application) { a.Name = "a\nb" }, "name: non-printable character U+000A"},
		{"name utf8", func(a *Application) { a.Name = "a\xffb" }, "name: not valid UTF-8"},
		{"name long", func(a *Application) { a.Name = strings.Repeat("é", 256) }, "name: longer than 255 characters"},
		{"no domains", func(a *Application) { a.Domains = nil }, "domains: at least one"},
		{"bad wildcard", func(a *Application) { a.Domains = []string{"ok.example.com", "a.*.com"} },
			`domains[1]: invalid domain "a.*.com": wildcard must be the whole left-most label`},
		{"port", func(a *Application) { a.Domains = []string{"a.example.com:443"} }, "domains[0]: invalid domain"},
		{"duplicate", func(a *Application) { a.Domains = []string{"a.example.com/x", "A.example.com/x/"} },
			`domains[1]: "A.example.com/x/" is the same as domains[0]`},
		{"aud short", func(a *Application) { a.AUD = "abc" }, "aud: must be 64 lower-case hex"},
		{"aud upper", func(a *Application) { a.AUD = strings.ToUpper(testAUD) }, "aud: must be 64 lower-case hex"},
		{"session zero", func(a *Application) { a.SessionDuration = 0 }, "session_duration: 0s is shorter than the minimum 1m0s"},
		{"session short", func(a *Application) { a.SessionDuration = time.Second }, "session_duration: 1s is shorter"},
		{"session long", func(a *Application) { a.SessionDuration = 731 * time.Hour }, "session_duration: 731h0m0s is longer than the maximum"},
		{"header upper", func(a *Application) { a.ServiceTokenHeader = "X-Auth" }, "service_token_header: \"X-Auth\" must be lower-case"},
		{"header space", func(a *Application) { a.ServiceTokenHeader = "x auth" }, "service_token_header: \"x auth\" is not an HTTP header name"},
		{"header colon", func(a *Application) { a.ServiceTokenHeader = "x:auth" }, "not an HTTP header name"},
		{"header pseudo", func(a *Application) { a.ServiceTokenHeader = ":authority" }, "pseudo-header"},
		{"header client id", func(a *Application) { a.ServiceTokenHeader = "cf-access-client-id" }, `"cf-access-client-id" is reserved`},
		{"header client secret", func(a *Application) { a.ServiceTokenHeader = "cf-access-client-secret" }, "is reserved"},
		{"header jwt", func(a *Application) { a.ServiceTokenHeader = "cf-access-jwt-assertion" }, "is reserved"},
		{"header cookie", func(a *Application) { a.ServiceTokenHeader = "cookie" }, "is reserved"},
		{"header host", func(a *Application) { a.ServiceTokenHeader = "host" }, "is reserved"},
		{"header long", func(a *Application) { a.ServiceTokenHeader = strings.Repeat("x", 256) }, "longer than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validApp()
			tt.mutate(a)
			err := ValidateApplication(a)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidApplication) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v; want ErrInvalidApplication containing %q", err, tt.err)
			}
		})
	}
	if err := ValidateApplication(nil); !errors.Is(err, ErrInvalidApplication) {
		t.Errorf("nil application: %v", err)
	}
}

func TestValidatePolicy(t *testing.T) {
	tok := func(id string) Rule { return Rule{ServiceToken: &ServiceTokenRule{TokenID: id}} }
	tests := []struct {
		name   string
		mutate func(p *Policy)
		err    string
	}{
		{"valid", func(p *Policy) {}, ""},
		{"all lists", func(p *Policy) {
			p.Require = []Rule{{Certificate: &struct{}{}}}
			p.Exclude = []Rule{{IP: &IPRule{IP: "10.0.0.0/8"}}}
		}, ""},
		{"bypass everyone", func(p *Policy) { p.Decision = Bypass; p.Include = []Rule{{Everyone: &struct{}{}}} }, ""},
		{"session override", func(p *Policy) { p.SessionDuration = time.Hour }, ""},
		{"nameless", func(p *Policy) { p.Name = "" }, "name: required"},
		{"no app", func(p *Policy) { p.ApplicationID = "" }, "application_id: required"},
		{"no decision", func(p *Policy) { p.Decision = "" }, "decision: required"},
		{"bad decision", func(p *Policy) { p.Decision = "block" }, `decision: unknown "block"`},
		{"no include", func(p *Policy) { p.Include = nil }, "include: at least one rule"},
		{"empty rule", func(p *Policy) { p.Include = append(p.Include, Rule{}) }, "include[1]: invalid rule: no selector set"},
		{"two selectors", func(p *Policy) {
			p.Require = []Rule{{IP: &IPRule{IP: "10.0.0.0/8"}, Everyone: &struct{}{}}}
		}, "require[0]: invalid rule: more than one selector set (ip, everyone)"},
		{"bad cidr", func(p *Policy) { p.Exclude = []Rule{{IP: &IPRule{IP: "10.0.0.0/33"}}} }, `exclude[0]: invalid rule: ip.ip: "10.0.0.0/33" is not a CIDR`},
		{"bypass token", func(p *Policy) { p.Decision = Bypass }, "include[0]: a bypass policy cannot use service_token"},
		{"bypass any token", func(p *Policy) {
			p.Decision = Bypass
			p.Include = []Rule{{Everyone: &struct{}{}}}
			p.Exclude = []Rule{{AnyValidServiceToken: &struct{}{}}}
		}, "exclude[0]: a bypass policy cannot use any_valid_service_token"},
		{"session short", func(p *Policy) { p.SessionDuration = time.Second }, "session_duration: 1s is shorter"},
		{"session long", func(p *Policy) { p.SessionDuration = 800 * time.Hour }, "session_duration: 800h0m0s is longer"},
		{"token empty", func(p *Policy) { p.Include = []Rule{tok("")} }, "include[0]: invalid rule: service_token.token_id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.mutate(p)
			err := ValidatePolicy(p)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v; want ErrInvalidPolicy containing %q", err, tt.err)
			}
		})
	}
	if err := ValidatePolicy(nil); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("nil policy: %v", err)
	}
	// A rule error also wraps ErrInvalidRule.
	p := validPolicy()
	p.Include = []Rule{{}}
	if err := ValidatePolicy(p); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("rule error %v does not wrap ErrInvalidRule", err)
	}
}

func TestValidRule(t *testing.T) {
	e := &struct{}{}
	tests := []struct {
		rule Rule
		err  string
	}{
		{Rule{ServiceToken: &ServiceTokenRule{TokenID: "33333333-3333-4333-8333-333333333333"}}, ""},
		{Rule{AnyValidServiceToken: e}, ""},
		{Rule{IP: &IPRule{IP: "10.0.0.0/8"}}, ""},
		{Rule{IP: &IPRule{IP: "10.1.2.3"}}, ""}, // a single address is /32
		{Rule{IP: &IPRule{IP: "2001:db8::/32"}}, ""},
		{Rule{IP: &IPRule{IP: "::1"}}, ""},
		{Rule{IP: &IPRule{IP: "0.0.0.0/0"}}, ""},
		{Rule{Principal: &PrincipalRule{Exact: "spiffe://cluster.local/ns/a/sa/b"}}, ""},
		{Rule{Principal: &PrincipalRule{Prefix: "spiffe://cluster.local/ns/a/"}}, ""},
		{Rule{Certificate: e}, ""},
		{Rule{CommonName: &CommonNameRule{CommonName: "client.example.com"}}, ""},
		{Rule{Everyone: e}, ""},

		{Rule{}, "no selector set"},
		{Rule{Everyone: e, Certificate: e}, "more than one selector set (certificate, everyone)"},
		{Rule{ServiceToken: &ServiceTokenRule{TokenID: "a\nb"}}, "service_token.token_id: control character"},
		{Rule{ServiceToken: &ServiceTokenRule{TokenID: strings.Repeat("a", 2000)}}, "longer than"},
		{Rule{IP: &IPRule{IP: ""}}, "ip.ip: empty"},
		{Rule{IP: &IPRule{IP: "10.0.0.1/8"}}, `ip.ip: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`},
		{Rule{IP: &IPRule{IP: "not-an-ip"}}, "is not a CIDR or IP address"},
		{Rule{IP: &IPRule{IP: "::ffff:10.0.0.0/104"}}, "IPv4-mapped"},
		{Rule{IP: &IPRule{IP: "fe80::1%eth0"}}, "is not a CIDR"},
		{Rule{Principal: &PrincipalRule{}}, "principal: set exact or prefix"},
		{Rule{Principal: &PrincipalRule{Exact: "a", Prefix: "b"}}, "not both"},
		{Rule{CommonName: &CommonNameRule{}}, "common_name.common_name: required"},
	}
	for _, tt := range tests {
		err := ValidRule(tt.rule)
		if tt.err == "" {
			if err != nil {
				t.Errorf("ValidRule(%+v): unexpected error %v", tt.rule, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ValidRule(%+v) = %v; want ErrInvalidRule containing %q", tt.rule, err, tt.err)
		}
	}
}

func TestNewAUD(t *testing.T) {
	a, err := NewAUD()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAUD()
	if !isLowerHex(a, 64) || !isLowerHex(b, 64) || a == b {
		t.Fatalf("NewAUD() = %q, %q; want two different 64-hex strings", a, b)
	}
	app := validApp()
	app.AUD = a
	if err := ValidateApplication(app); err != nil {
		t.Fatalf("a NewAUD value does not validate: %v", err)
	}
}
