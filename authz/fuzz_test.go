package authz

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// FuzzCheck builds CheckRequests from fuzzed host, path, three headers and a
// cookie, against a snapshot with one token and one application whose only
// policy is non_identity for that token. Placeholders {{ID}}, {{SECRET}} and
// {{JWT}} in any input are replaced by the real client id, secret and a
// valid session JWT, so the fuzzer can build near-misses around them.
//
// Properties: Check never fails or panics (a recovered panic would show as
// internal_error), every deny is a proper DeniedHttpResponse, and OK is only
// ever answered when the headers carry the real id and secret, or the JWT.
func FuzzCheck(f *testing.F) {
	type seed struct {
		host, path     string
		k1, v1, k2, v2 string
		k3, v3, cookie string
		raw            bool
	}
	for _, s := range []seed{
		// The real credentials in the standard headers: allowed.
		{"app.example.com", "/api", "cf-access-client-id", "{{ID}}", "cf-access-client-secret", "{{SECRET}}", "", "", "", false},
		// Same, names in mixed case, host in mixed case with a port, query.
		{"App.Example.COM:443", "/api/x?y=1", "CF-Access-Client-Id", "{{ID}}", "Cf-Access-Client-Secret", " {{SECRET}} ", "", "", "", false},
		// header_map (encode_raw_headers), the id sent twice: denied.
		{"app.example.com", "/", "cf-access-client-id", "{{ID}}", "cf-access-client-id", "{{ID}}", "cf-access-client-secret", "{{SECRET}}", "", true},
		// A joined client id: denied.
		{"app.example.com", "/", "cf-access-client-id", "{{ID}},{{ID}}", "cf-access-client-secret", "{{SECRET}}", "", "", "", false},
		// Id and secret swapped: malformed secret, never logged.
		{"app.example.com", "/", "cf-access-client-id", "{{SECRET}}", "cf-access-client-secret", "{{ID}}", "", "", "", false},
		// The session JWT in the cookie among others: allowed.
		{"app.example.com", "/", "user-agent", "x", "", "", "", "", "a=b; CF_Authorization={{JWT}}; c=d", false},
		// The cookie twice: denied.
		{"app.example.com", "/", "", "", "", "", "", "", "CF_Authorization={{JWT}}; CF_Authorization={{JWT}}", false},
		// The JWT in cf-access-token, a forged assertion alongside.
		{"app.example.com", "/", "cf-access-token", "{{JWT}}", "cf-access-jwt-assertion", "forged", "", "", "", false},
		// A truncated JWT.
		{"app.example.com", "/", "cf-access-token", "{{JWT}}x", "", "", "", "", "", false},
		// JSON credentials in authorization, which this app does not read.
		{"app.example.com", "/", "authorization", `{"cf-access-client-id":"{{ID}}","cf-access-client-secret":"{{SECRET}}"}`, "", "", "", "", "", false},
		// An ambiguous path with valid credentials: 400.
		{"app.example.com", "/a/..%2f..%2fadmin", "cf-access-client-id", "{{ID}}", "cf-access-client-secret", "{{SECRET}}", "", "", "", false},
		// Another host with valid credentials: no application.
		{"evil.example.com", "/", "cf-access-client-id", "{{ID}}", "cf-access-client-secret", "{{SECRET}}", "", "", "", false},
		// Empty everything.
		{"", "", "", "", "", "", "", "", "", false},
		// Invalid UTF-8 and control bytes everywhere.
		{"app.example.com\x00", "/\xff", "cf-access-client-id\x00", "\xfe", "\x7f", "\n", ":path", "*", "\x00=", true},
		// A legacy-looking 64-hex secret.
		{"app.example.com", "/", "cf-access-client-id", "{{ID}}", "cf-access-client-secret", strings.Repeat("ab", 32), "", "", "", false},
	} {
		f.Add(s.host, s.path, s.k1, s.v1, s.k2, s.v2, s.k3, s.v3, s.cookie, s.raw)
	}

	b := newBase(f, func(c *Config) { c.Logger = nil })
	// The app lets only alpha in; beta is known but named by no policy.
	jwt := b.sessionJWT(f)
	sub := strings.NewReplacer("{{ID}}", b.alpha.ClientID, "{{SECRET}}", b.alphaSecret, "{{JWT}}", jwt)

	f.Fuzz(func(t *testing.T, host, path, k1, v1, k2, v2, k3, v3, cookie string, raw bool) {
		host, path = sub.Replace(host), sub.Replace(path)
		kv := []string{k1, sub.Replace(v1), k2, sub.Replace(v2), k3, sub.Replace(v3)}
		if cookie != "" {
			kv = append(kv, "cookie", sub.Replace(cookie))
		}
		var req *authv3.CheckRequest
		if raw {
			req = rawReq(host, path, kv...)
		} else {
			req = httpReq(host, path)
			h := req.Attributes.Request.Http.Headers
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] != "" {
					h[kv[i]] = kv[i+1]
				}
			}
		}

		resp, err := b.srv.Check(context.Background(), req)
		if err != nil || resp == nil || resp.GetStatus() == nil {
			t.Fatalf("Check = %v, %v", resp, err)
		}
		if reasonOf(resp) == ReasonInternalError.String() {
			t.Fatalf("Check panicked (recovered) on this input")
		}
		if resp.GetStatus().GetCode() != 0 {
			if resp.GetDeniedResponse().GetStatus() == nil {
				t.Fatalf("deny without an HTTP status: %v", resp)
			}
			return
		}
		has := func(s string) bool {
			for i := 1; i < len(kv); i += 2 {
				if strings.Contains(kv[i], s) {
					return true
				}
			}
			return false
		}
		if !(has(b.alpha.ClientID) && has(b.alphaSecret)) && !has(jwt) {
			t.Fatalf("allowed without the credentials: host %q path %q headers %q", host, path, kv)
		}
		if v := b.srv.Explain(req); !v.Allowed {
			t.Fatalf("Check allowed, Explain says %+v", v)
		}
	})
}
