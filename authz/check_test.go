package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// base is the world most decision rows start from: application "app"
// (app.example.com, session cookies on) whose only policy lets token alpha
// in (non_identity, service_token); token beta exists but no policy names
// it.
type base struct {
	*world
	app         *policy.Application
	alpha, beta *tokens.ServiceToken
	alphaSecret string
	betaSecret  string
}

func newBase(tb testing.TB, mods ...func(*Config)) *base {
	b := &base{world: newWorld(tb, mods...)}
	b.alpha, b.alphaSecret = b.token("alpha")
	b.beta, b.betaSecret = b.token("beta")
	b.app = b.app_("app", "app.example.com")
	b.policy(b.app, policy.NonIdentity, tokenRule(b.alpha))
	b.publish()
	return b
}

// app_ avoids the field/method clash of the embedded world.app.
func (b *base) app_(name string, domains ...string) *policy.Application {
	return b.world.app(name, domains...)
}

// touchApp bumps UpdatedAt after a change, as the admin API does.
func (b *base) touchApp(a *policy.Application) {
	b.clock.Advance(time.Second)
	a.UpdatedAt = b.now()
}

// sessionJWT gets alpha a JWT for app the real way: a service-token Check.
func (b *base) sessionJWT(tb testing.TB) string {
	tb.Helper()
	jwt, _ := wantAllowToken(tb, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))
	return jwt
}

// claimsFor are the claims gatehouse would put in alpha's JWT for app.
func (b *base) claimsFor(aud string) *tokens.Claims {
	now := b.now()
	return &tokens.Claims{
		Issuer: testIssuer, Audience: []string{aud},
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(time.Hour),
		Type: "app", CommonName: b.alpha.ClientID,
		ServiceTokenID: b.alpha.ID, ServiceTokenName: b.alpha.Name,
	}
}

func sign(tb testing.TB, ks *tokens.KeySet, c *tokens.Claims) string {
	tb.Helper()
	s, err := ks.Sign(c)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return s
}

func cookieReq(jwt string) *authv3.CheckRequest {
	return httpReq("app.example.com", "/", "cookie", "theme=dark; CF_Authorization="+jwt)
}

// algNone forges an unsigned JWT naming a real kid.
func algNone(kid string, c *tokens.Claims) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "kid": kid, "typ": "JWT"})
	p, _ := json.Marshal(map[string]any{
		"iss": c.Issuer, "aud": c.Audience, "iat": c.IssuedAt.Unix(), "nbf": c.NotBefore.Unix(),
		"exp": c.ExpiresAt.Unix(), "type": c.Type, "common_name": c.CommonName, "sub": "",
		"service_token_id": c.ServiceTokenID, "service_token_name": c.ServiceTokenName,
	})
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}

// peerCert returns a URL-encoded PEM client certificate with subject CN cn,
// as Envoy puts it in source.certificate.
func peerCert(tb testing.TB, cn string) string {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

func withSource(req *authv3.CheckRequest, principal, cert string) *authv3.CheckRequest {
	req.Attributes.Source.Principal = principal
	req.Attributes.Source.Certificate = cert
	return req
}

type decisionRow struct {
	name  string
	cfg   func(*Config)
	setup func(t *testing.T, b *base) *authv3.CheckRequest
	// want: an allow reason, or the deny reason.
	want Reason
	// token: an allow must carry a JWT for alpha (else no identity).
	token bool
	// dryRun: the application is in dry run (Envoy is told OK even when
	// want is a deny).
	dryRun bool
	check  func(t *testing.T, b *base, resp *authv3.CheckResponse)
}

func decisionRows() []decisionRow {
	rows := []decisionRow{
		{name: "service token allow", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return tokenReq(b.alpha.ClientID, b.alphaSecret) },
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, cookie := wantAllowToken(t, resp)
				c := b.verifyJWT(jwt, b.app, b.alpha)
				if !c.ExpiresAt.Equal(b.now().Add(24 * time.Hour)) {
					t.Errorf("exp = %v, want now + the app's 24h session", c.ExpiresAt)
				}
				want := "CF_Authorization=" + jwt + "; Path=/; Expires=" + c.ExpiresAt.Format("Mon, 02 Jan 2006 15:04:05 GMT") + "; HttpOnly; Secure; SameSite=Lax"
				if cookie == nil || cookie.GetHeader().GetValue() != want {
					t.Errorf("set-cookie = %v, want %q", cookie, want)
				}
				f := resp.GetDynamicMetadata().GetFields()
				for k, v := range map[string]string{metaTokenID: b.alpha.ID, metaTokenName: "alpha", metaClientID: b.alpha.ClientID,
					metaApplication: "app", metaDecision: "allow", metaReason: "allowed_by_policy"} {
					if f[k].GetStringValue() != v {
						t.Errorf("metadata %s = %q, want %q", k, f[k].GetStringValue(), v)
					}
				}
				if f[metaPolicy].GetStringValue() == "" {
					t.Error("metadata has no policy")
				}
			}},
		{name: "strict app: no cookie", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.SessionCookie = false
				b.touchApp(b.app)
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				if _, cookie := wantAllowToken(t, resp); cookie != nil {
					t.Errorf("strict application sets a cookie: %v", cookie)
				}
			}},
		{name: "wrong secret", want: ReasonWrongSecret,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return tokenReq(b.alpha.ClientID, b.betaSecret) }},
		{name: "unknown client id", want: ReasonUnknownClientID,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				id, _ := tokens.NewClientID()
				return tokenReq(id, b.alphaSecret)
			}},
		{name: "malformed secret: short", want: ReasonMalformedSecret,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return tokenReq(b.alpha.ClientID, "ghst_short") }},
		{name: "malformed secret: checksum", want: ReasonMalformedSecret,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				s := []byte(b.alphaSecret)
				s[len(s)-1] ^= 1 // still base62, checksum now wrong
				return tokenReq(b.alpha.ClientID, string(s))
			}},
		{name: "malformed secret: id and secret swapped", want: ReasonMalformedSecret,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return tokenReq(b.alphaSecret, b.alpha.ClientID) },
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				if strings.Contains(b.logs.String(), b.alphaSecret) {
					t.Error("a secret sent as the client id was logged")
				}
				if resp.GetDynamicMetadata().GetFields()[metaClientID] != nil {
					t.Error("a malformed client id reached the metadata")
				}
			}},
		{name: "legacy 64-hex secret (imported)", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				id, _ := tokens.NewClientID()
				secret := strings.Repeat("0123456789abcdef", 4)
				tok, err := tokens.Import("imported", id, secret, tokens.Forever, b.now())
				if err != nil {
					t.Fatal(err)
				}
				b.toks = append(b.toks, tok)
				b.policy(b.app, policy.NonIdentity, tokenRule(tok))
				b.publish()
				return tokenReq(id, secret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) { wantAllowToken(t, resp) }},
		{name: "half pair: client id only", want: ReasonIncompleteCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerClientID, b.alpha.ClientID)
			}},
		{name: "half pair: secret only", want: ReasonIncompleteCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerClientSecret, b.alphaSecret)
			}},
		{name: "joined client id", want: ReasonDuplicateCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return tokenReq(b.alpha.ClientID+","+b.alpha.ClientID, b.alphaSecret)
			}},
		{name: "joined secret", want: ReasonDuplicateCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return tokenReq(b.alpha.ClientID, b.alphaSecret+","+b.betaSecret)
			}},
		{name: "same header twice in other case", want: ReasonDuplicateCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				req := tokenReq(b.alpha.ClientID, b.alphaSecret)
				req.Attributes.Request.Http.Headers["CF-Access-Client-Secret"] = b.betaSecret
				return req
			}},
		{name: "header_map repeated secret", want: ReasonDuplicateCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, b.alpha.ClientID,
					headerClientSecret, b.alphaSecret, headerClientSecret, b.alphaSecret)
			}},
		{name: "header_map allow", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret)
			}},
		{name: "custom header allow", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.ServiceTokenHeader = "authorization"
				b.touchApp(b.app)
				b.publish()
				return httpReq("app.example.com", "/", "authorization",
					` { "cf-access-client-secret" : "`+b.alphaSecret+`", "cf-access-client-id":"`+b.alpha.ClientID+`" } `)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				if rm := resp.GetOkResponse().GetHeadersToRemove(); !slices.Equal(rm, []string{headerClientSecret, "authorization"}) {
					t.Errorf("headers_to_remove = %v, want the secret and the credential header", rm)
				}
			}},
		{name: "custom header configured, standard headers used", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.ServiceTokenHeader = "authorization"
				b.touchApp(b.app)
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				if rm := resp.GetOkResponse().GetHeadersToRemove(); !slices.Equal(rm, []string{headerClientSecret}) {
					t.Errorf("headers_to_remove = %v: an unused custom header must reach the upstream", rm)
				}
			}},
		{name: "both header styles", want: ReasonConflictingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.ServiceTokenHeader = "authorization"
				b.touchApp(b.app)
				b.publish()
				req := tokenReq(b.alpha.ClientID, b.alphaSecret)
				req.Attributes.Request.Http.Headers["authorization"] = `{"cf-access-client-id":"` + b.alpha.ClientID + `","cf-access-client-secret":"` + b.alphaSecret + `"}`
				return req
			}},
		{name: "custom header repeated", want: ReasonDuplicateCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.ServiceTokenHeader = "authorization"
				b.touchApp(b.app)
				b.publish()
				v := `{"cf-access-client-id":"` + b.alpha.ClientID + `","cf-access-client-secret":"` + b.alphaSecret + `"}`
				return rawReq("app.example.com", "/", "authorization", v, "Authorization", v)
			}},
		{name: "dry run: deny is logged, Envoy told OK", want: ReasonWrongSecret, dryRun: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.DryRun = true
				b.touchApp(b.app)
				b.publish()
				return tokenReq(b.alpha.ClientID, b.betaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				wantAllowPlain(t, resp)
				f := resp.GetDynamicMetadata().GetFields()
				if f[metaDecision].GetStringValue() != "deny" || !f[metaDryRun].GetBoolValue() {
					t.Errorf("dry-run metadata = %v, want decision deny and dry_run", f)
				}
			}},
		{name: "dry run: allow gets its JWT", want: ReasonAllowedByPolicy, token: true, dryRun: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.DryRun = true
				b.touchApp(b.app)
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			}},
	}
	for _, bad := range []struct{ name, json string }{
		{"not JSON", `Bearer abc`},
		{"unknown key", `{"cf-access-client-id":"%s","cf-access-client-secret":"%s","x":"y"}`},
		{"duplicate key", `{"cf-access-client-id":"%s","cf-access-client-id":"%[1]s","cf-access-client-secret":"%s"}`},
		{"number value", `{"cf-access-client-id":"%s","cf-access-client-secret":42}`},
		{"mixed-case keys", `{"CF-Access-Client-Id":"%s","CF-Access-Client-Secret":"%s"}`},
		{"missing secret", `{"cf-access-client-id":"%s"}`},
		{"joined by Envoy", `{"cf-access-client-id":"%s","cf-access-client-secret":"%s"},{"cf-access-client-id":"%[1]s","cf-access-client-secret":"%[2]s"}`},
		{"trailing garbage", `{"cf-access-client-id":"%s","cf-access-client-secret":"%s"}x`},
	} {
		rows = append(rows, decisionRow{name: "custom header: " + bad.name, want: ReasonMalformedCredentialHeader,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.ServiceTokenHeader = "authorization"
				b.touchApp(b.app)
				b.publish()
				v := bad.json
				if strings.Contains(v, "%") {
					v = fmt.Sprintf(v, b.alpha.ClientID, b.alphaSecret)
				}
				return httpReq("app.example.com", "/", "authorization", v)
			}})
	}
	rows = append(rows, tokenStateRows()...)
	rows = append(rows, jwtRows()...)
	rows = append(rows, policyRows()...)
	return rows
}

// tokenStateRows: expired, disabled, rotated tokens.
func tokenStateRows() []decisionRow {
	return []decisionRow{
		{name: "expired token", want: ReasonTokenExpired,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				tok, secret := b.tokenFor("short-lived", tokens.Duration(time.Hour), b.now().Add(-2*time.Hour))
				b.policy(b.app, policy.NonIdentity, tokenRule(tok))
				b.publish()
				return tokenReq(tok.ClientID, secret)
			}},
		{name: "disabled token", want: ReasonTokenDisabled,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.alpha.SetEnabled(false, b.now())
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			}},
		{name: "previous secret within grace", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				if _, err := b.alpha.Rotate(tokens.MinGrace, b.now()); err != nil {
					t.Fatal(err)
				}
				b.publish()
				b.clock.Advance(tokens.MinGrace - time.Minute)
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				wantAllowToken(t, resp)
				if !strings.Contains(b.logs.String(), `"previous_secret":true`) {
					t.Error("log does not say the previous secret was used")
				}
			}},
		{name: "previous secret after grace", want: ReasonWrongSecret,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				if _, err := b.alpha.Rotate(tokens.MinGrace, b.now()); err != nil {
					t.Fatal(err)
				}
				b.publish()
				b.clock.Advance(tokens.MinGrace)
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			}},
		{name: "new secret after rotation", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				secret, err := b.alpha.Rotate(0, b.now())
				if err != nil {
					t.Fatal(err)
				}
				b.publish()
				return tokenReq(b.alpha.ClientID, secret)
			}},
	}
}

// jwtRows: session JWTs presented back, and every way they can be wrong.
func jwtRows() []decisionRow {
	return []decisionRow{
		{name: "jwt cookie allow", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return cookieReq(b.sessionJWT(t)) },
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, cookie := wantAllowToken(t, resp)
				b.verifyJWT(jwt, b.app, b.alpha)
				if cookie != nil {
					t.Errorf("cookie re-set on a session request: %v", cookie)
				}
			}},
		{name: "jwt cf-access-token allow", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerAccessToken, b.sessionJWT(t))
			}},
		{name: "jwt cookie twice", want: ReasonDuplicateCookie,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+jwt+"; a=b; CF_Authorization="+jwt)
			}},
		{name: "jwt cookie twice (joined cookie headers)", want: ReasonDuplicateCookie,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+jwt+",CF_Authorization=x")
			}},
		{name: "jwt cookie and cf-access-token differ", want: ReasonConflictingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+jwt, headerAccessToken, jwt+"x")
			}},
		{name: "jwt alg none", want: ReasonJWTAlgorithm,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return cookieReq(algNone(b.keys.ActiveAt(b.now()).KID, b.claimsFor(b.app.AUD)))
			}},
		{name: "jwt wrong audience", want: ReasonJWTWrongAudience,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				other := b.app_("other", "other.example.com")
				b.policy(other, policy.NonIdentity, tokenRule(b.alpha))
				b.publish()
				return cookieReq(sign(t, b.keys, b.claimsFor(other.AUD)))
			}},
		{name: "jwt session revoked", want: ReasonSessionRevoked,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				b.app.SessionsRevokedAt = b.now()
				b.touchApp(b.app)
				b.publish()
				return cookieReq(jwt)
			}},
		{name: "jwt deleted token", want: ReasonTokenRevoked,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				b.srv.Publish(b.srv.Snapshot().Apply(nil, []string{b.alpha.ID}))
				return cookieReq(jwt)
			}},
		{name: "jwt disabled token", want: ReasonTokenRevoked,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				c := b.alpha.Clone()
				c.SetEnabled(false, b.now())
				b.srv.Publish(b.srv.Snapshot().Apply([]*tokens.ServiceToken{c}, nil))
				return cookieReq(jwt)
			}},
		{name: "jwt expired", want: ReasonJWTExpired,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				c := b.claimsFor(b.app.AUD)
				c.IssuedAt, c.NotBefore, c.ExpiresAt = c.IssuedAt.Add(-2*time.Hour), c.IssuedAt.Add(-2*time.Hour), c.IssuedAt.Add(-time.Minute)
				return cookieReq(sign(t, b.keys, c))
			}},
		{name: "jwt expired after being cached", want: ReasonJWTExpired,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				wantAllowToken(t, b.check(cookieReq(jwt))) // now in the verified cache
				b.clock.Advance(24*time.Hour + tokens.JWTLeeway + time.Second)
				return cookieReq(jwt)
			}},
		{name: "jwt unknown kid", want: ReasonJWTUnknownKID,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				other := keySet(t, testKey(t, tokens.AlgES256, 1))
				return cookieReq(sign(t, other, b.claimsFor(b.app.AUD)))
			}},
		{name: "jwt bad signature", want: ReasonJWTSignature,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				i := strings.LastIndexByte(jwt, '.')
				sig, _ := base64.RawURLEncoding.DecodeString(jwt[i+1:])
				sig[0] ^= 0xff
				return cookieReq(jwt[:i+1] + base64.RawURLEncoding.EncodeToString(sig))
			}},
		{name: "jwt wrong issuer", want: ReasonJWTIssuer,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				c := b.claimsFor(b.app.AUD)
				c.Issuer = "https://evil.example"
				return cookieReq(sign(t, b.keys, c))
			}},
		{name: "jwt malformed", want: ReasonJWTMalformed,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return cookieReq("not.a.jwt") }},
		{name: "jwt of another type", want: ReasonJWTClaims,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				c := b.claimsFor(b.app.AUD)
				c.Type = "org"
				return cookieReq(sign(t, b.keys, c))
			}},
		{name: "jwt ignored by strict app", want: ReasonMissingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				b.app.SessionCookie = false
				b.touchApp(b.app)
				b.publish()
				return cookieReq(jwt)
			}},
		{name: "jwt after key rotation (old key still published)", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				jwt := b.sessionJWT(t)
				next, _, err := tokens.RotateKeys(b.keys.Keys(), tokens.AlgES256, tokens.MaxSessionDuration, 0, b.now())
				if err != nil {
					t.Fatal(err)
				}
				b.keys = keySet(t, next...)
				b.srv.Publish(b.srv.Snapshot().WithKeys(b.keys))
				return cookieReq(jwt)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, _ := wantAllowToken(t, resp)
				b.verifyJWT(jwt, b.app, b.alpha)
			}},
	}
}

// policyRows: bypass, deny, no policy, routing.
func policyRows() []decisionRow {
	return []decisionRow{
		{name: "bypass strips a client-sent assertion", want: ReasonBypass,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Bypass, ipRule("10.0.0.0/8"))
				b.publish()
				// Even broken credentials do not matter under bypass.
				return httpReq("app.example.com", "/health", headerAssertion, "forged", headerClientID, "x")
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) { wantAllowPlain(t, resp) }},
		{name: "bypass by principal", want: ReasonBypass,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Bypass, principalRule("spiffe://cluster.local/ns/a/sa/b"))
				b.publish()
				return withSource(httpReq("app.example.com", "/"), "spiffe://cluster.local/ns/a/sa/b", "")
			}},
		{name: "non_identity by certificate common name", want: ReasonAllowedByPolicy,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.NonIdentity, commonNameRule("worker-1"))
				b.publish()
				return withSource(httpReq("app.example.com", "/"), "", peerCert(t, "worker-1"))
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) { wantAllowPlain(t, resp) }},
		{name: "certificate with another common name", want: ReasonMissingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.NonIdentity, commonNameRule("worker-1"))
				b.publish()
				return withSource(httpReq("app.example.com", "/"), "", peerCert(t, "worker-2"))
			}},
		{name: "allow everyone without credentials", want: ReasonAllowedByPolicy,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Allow, everyoneRule())
				b.publish()
				return httpReq("app.example.com", "/", headerAssertion, "forged")
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) { wantAllowPlain(t, resp) }},
		{name: "deny policy", want: ReasonDeniedByPolicy,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Deny, everyoneRule())
				b.publish()
				return tokenReq(b.beta.ClientID, b.betaSecret)
			}},
		{name: "non_identity beats a later deny", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Deny, everyoneRule())
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			}},
		{name: "no policy matched: token", want: ReasonNoPolicyMatched,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return tokenReq(b.beta.ClientID, b.betaSecret) }},
		{name: "no policy matched: no credentials", want: ReasonMissingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return httpReq("app.example.com", "/") }},
		{name: "any valid service token", want: ReasonAllowedByPolicy,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.NonIdentity, anyTokenRule())
				b.publish()
				return tokenReq(b.beta.ClientID, b.betaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, _ := wantAllowToken(t, resp)
				b.verifyJWT(jwt, b.app, b.beta)
			}},
		{name: "policy session overrides the app's", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				p := b.policy(b.app, policy.NonIdentity, tokenRule(b.alpha))
				p.Precedence = 0
				p.SessionDuration = time.Hour
				b.publish()
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, _ := wantAllowToken(t, resp)
				if c := b.verifyJWT(jwt, b.app, b.alpha); !c.ExpiresAt.Equal(b.now().Add(time.Hour)) {
					t.Errorf("exp = %v, want now + the policy's 1h", c.ExpiresAt)
				}
			}},
		{name: "token expiry caps the session", want: ReasonAllowedByPolicy,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				tok, secret := b.tokenFor("soon", tokens.Duration(2*time.Hour), b.now())
				b.policy(b.app, policy.NonIdentity, tokenRule(tok))
				b.publish()
				return tokenReq(tok.ClientID, secret)
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) {
				jwt, _ := wantAllowToken(t, resp)
				c, err := b.keys.Verify(jwt, testIssuer, b.now())
				if err != nil || !c.ExpiresAt.Equal(b.now().Add(2*time.Hour)) {
					t.Errorf("exp = %v (%v), want the token's expiry", c, err)
				}
			}},
		{name: "unmatched host denied", want: ReasonNoApplication,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("other.example.com", "/", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret)
			}},
		{name: "unmatched host allowed", want: ReasonUnmatchedAllowed, cfg: func(c *Config) { c.UnmatchedAllow = true },
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("other.example.com", "/", headerAssertion, "forged")
			},
			check: func(t *testing.T, b *base, resp *authv3.CheckResponse) { wantAllowPlain(t, resp) }},
		{name: "context_extensions names the app", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				req := httpReq("internal.svc", "/", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret)
				req.Attributes.ContextExtensions = map[string]string{"application": "app"}
				return req
			}},
		{name: "context_extensions names the app by id", want: ReasonAllowedByPolicy, token: true,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				req := tokenReq(b.alpha.ClientID, b.alphaSecret)
				req.Attributes.ContextExtensions = map[string]string{"application": b.app.ID}
				return req
			}},
		{name: "context_extensions unknown app", want: ReasonUnknownApplication,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				req := tokenReq(b.alpha.ClientID, b.alphaSecret)
				req.Attributes.ContextExtensions = map[string]string{"application": "nope"}
				return req
			}},
		{name: "ambiguous path", want: ReasonAmbiguousPath,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return httpReq("app.example.com", "/public/..%2Fadmin", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret)
			}},
		{name: "path prefix routing with dot segments", want: ReasonNoApplication,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.app.Domains = []string{"app.example.com/api"}
				b.touchApp(b.app)
				b.publish()
				return httpReq("app.example.com", "/api/../admin", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret)
			}},
		{name: "no signing key", want: ReasonNoSigningKey,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.srv.Publish(b.srv.Snapshot().WithKeys(nil))
				return tokenReq(b.alpha.ClientID, b.alphaSecret)
			}},
		{name: "trusted proxy: client from x-forwarded-for", want: ReasonBypass, cfg: func(c *Config) { c.TrustedProxies = 2 },
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Bypass, ipRule("203.0.113.9/32"))
				b.publish()
				return httpReq("app.example.com", "/", "x-forwarded-for", "192.0.2.1, 203.0.113.9,10.1.1.1")
			}},
		{name: "trusted proxy: spoofed left-most entry ignored", want: ReasonMissingCredentials, cfg: func(c *Config) { c.TrustedProxies = 1 },
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Bypass, ipRule("203.0.113.9/32"))
				b.publish()
				return httpReq("app.example.com", "/", "x-forwarded-for", "203.0.113.9, 198.51.100.1")
			}},
		{name: "no trusted proxies: x-forwarded-for ignored", want: ReasonMissingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				b.policy(b.app, policy.Bypass, ipRule("203.0.113.9/32"))
				b.publish()
				return httpReq("app.example.com", "/", "x-forwarded-for", "203.0.113.9")
			}},
		{name: "malformed: nil request", want: ReasonMalformedRequest,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return nil }},
		{name: "malformed: empty request", want: ReasonMalformedRequest,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest { return &authv3.CheckRequest{} }},
		{name: "malformed: no http attributes", want: ReasonMalformedRequest,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}}
			}},
		{name: "header_map entry nil-safe", want: ReasonMissingCredentials,
			setup: func(t *testing.T, b *base) *authv3.CheckRequest {
				req := rawReq("app.example.com", "/")
				req.Attributes.Request.Http.HeaderMap.Headers = append(req.Attributes.Request.Http.HeaderMap.Headers, nil, &corev3.HeaderValue{})
				req.Attributes.Source = nil
				return req
			}},
	}
}

// TestDecisions runs every decision path through Check and Explain and
// checks that they agree.
func TestDecisions(t *testing.T) {
	for _, row := range decisionRows() {
		t.Run(row.name, func(t *testing.T) {
			var mods []func(*Config)
			if row.cfg != nil {
				mods = append(mods, row.cfg)
			}
			b := newBase(t, mods...)
			req := row.setup(t, b)

			v := b.srv.Explain(req)
			resp := b.check(req)

			if v.Reason != row.want {
				t.Errorf("Explain reason = %s, want %s", v.Reason, row.want)
			}
			if v.Allowed != row.want.Allowed() || v.Status != row.want.HTTPStatus() || v.DryRun != row.dryRun {
				t.Errorf("Explain = %+v, want allowed %v, status %d, dry run %v", v, row.want.Allowed(), row.want.HTTPStatus(), row.dryRun)
			}
			switch {
			case row.want.Allowed() && row.token:
				wantAllowToken(t, resp)
			case row.want.Allowed():
				if resp.GetStatus().GetCode() != 0 {
					t.Fatalf("status %v, want OK", resp.GetStatus())
				}
			case row.dryRun:
				wantAllowPlain(t, resp)
			default:
				wantDeny(t, resp, row.want)
			}
			if got := reasonOf(resp); got != row.want.String() {
				t.Errorf("metadata reason = %q, want %q", got, row.want)
			}
			if row.check != nil {
				row.check(t, b, resp)
			}
			// One decision line, naming the same reason.
			lines := b.logs.lines(t)
			if len(lines) == 0 || lines[len(lines)-1]["reason"] != row.want.String() {
				t.Errorf("last log line %v, want reason %s", lines, row.want)
			}
		})
	}
}

// TestCheckNeverErrors: Check answers with a CheckResponse, also for input
// that makes no sense, and through a real gRPC server.
func TestCheckOverGRPC(t *testing.T) {
	b := newBase(t)
	client := grpcClient(t, b.srv)
	for _, req := range []*authv3.CheckRequest{
		{},
		tokenReq(b.alpha.ClientID, b.alphaSecret),
		tokenReq(b.alpha.ClientID, "ghst_x"),
	} {
		resp, err := client.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("gRPC error: %v", err)
		}
		if resp.GetStatus() == nil {
			t.Fatalf("response without status: %v", resp)
		}
	}
}
