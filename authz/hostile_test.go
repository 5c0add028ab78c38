package authz

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Hostile requests: what an attacker in front of Envoy can put in a
// request, sent through Server.Check. Every row is decided with one
// specific reason (never internal_error, never a gRPC error), its response
// marshals (gRPC would otherwise turn it into an error), Explain agrees,
// and neither the decision log nor the response carries a credential.

// hostile is base with an RS256 signing key (active, the default
// algorithm) and the ES256 key base starts with, retired but still
// published, plus a second application "other" that also lets alpha in.
type hostile struct {
	*base
	rs, es *tokens.SigningKey
	other  *policy.Application
	// attacker keys: real keys gatehouse has never seen.
	attackerRS, attackerES *tokens.SigningKey
}

func newHostile(tb testing.TB) *hostile {
	tb.Helper()
	h := &hostile{base: newBase(tb)}
	rs := *testKey(tb, tokens.AlgRS256, 0)
	es := *testKey(tb, tokens.AlgES256, 0)
	es.RetiredAt = t0.Add(-30 * time.Minute)
	es.RemoveAfter = t0.Add(tokens.MaxSessionDuration)
	h.rs, h.es = &rs, &es
	h.attackerRS = testKey(tb, tokens.AlgRS256, 1)
	h.attackerES = testKey(tb, tokens.AlgES256, 2)
	h.keys = keySet(tb, h.rs, h.es)
	h.other = h.app_("other", "other.example.com")
	h.policy(h.other, policy.NonIdentity, tokenRule(h.alpha))
	h.publish()
	if h.keys.ActiveAt(h.now()).KID != h.rs.KID {
		tb.Fatal("the RS256 key is not the active one")
	}
	return h
}

// claims are the claims gatehouse itself would sign for alpha on app,
// as a map so rows can bend them.
func (h *hostile) claims(mod func(c map[string]any)) map[string]any {
	now := h.now()
	c := map[string]any{
		"iss": testIssuer, "aud": []string{h.app.AUD},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"type": "app", "common_name": h.alpha.ClientID, "sub": "",
		"service_token_id": h.alpha.ID, "service_token_name": h.alpha.Name,
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// header is a JWT header {"alg","kid","typ"} plus extra members.
func header(alg, kid string, extra ...any) map[string]any {
	m := map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

// forge assembles a JWT from a header (a map, or raw JSON text when member
// order matters), claims and a signing function over the signing input:
// whatever the header says, sign decides the bytes.
func forge(tb testing.TB, hdr any, claims map[string]any, sign func(input string) []byte) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	hb, ok := hdr.([]byte)
	if !ok {
		var err error
		if hb, err = json.Marshal(hdr); err != nil {
			tb.Fatal(err)
		}
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	return input + "." + enc.EncodeToString(sign(input))
}

// signer signs with a registered jwt method and key.
func signer(tb testing.TB, m jwt.SigningMethod, key any) func(string) []byte {
	return func(input string) []byte {
		sig, err := m.Sign(input, key)
		if err != nil {
			tb.Fatalf("%s sign: %v", m.Alg(), err)
		}
		return sig
	}
}

// hs256 is HMAC-SHA256 keyed with secret: the classic alg-confusion
// forgery when secret is the server's public key in some encoding.
func hs256(secret []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

func noSig(string) []byte { return nil }

// publicEncodings are the ways an attacker finds gatehouse's RSA public key
// published or derivable: PEM (PKIX and PKCS#1), DER, the JWK as published
// in the JWKS, the whole JWKS document, and the certificate PEM.
func (h *hostile) publicEncodings(tb testing.TB) map[string][]byte {
	tb.Helper()
	pub := h.rs.Public.(*rsa.PublicKey)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(h.keys.JWKS(), &jwks); err != nil {
		tb.Fatal(err)
	}
	var jwk []byte
	for _, k := range jwks.Keys {
		if strings.Contains(string(k), h.rs.KID) {
			jwk = k
		}
	}
	if jwk == nil {
		tb.Fatal("RS256 key not in the JWKS")
	}
	return map[string][]byte{
		"PKIX PEM":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"PKCS#1 PEM":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}),
		"PKIX DER":    pkix,
		"JWK JSON":    jwk,
		"JWKS":        h.keys.JWKS(),
		"certificate": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.rs.CertDER}),
	}
}

// jwkOf is a public RSA JWK as an attacker would embed it in a header.
func jwkOf(k *tokens.SigningKey) map[string]any {
	pub := k.Public.(*rsa.PublicKey)
	e := []byte{byte(pub.E >> 16), byte(pub.E >> 8), byte(pub.E)}
	return map[string]any{"kty": "RSA", "kid": k.KID, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e)}
}

type hostileRow struct {
	name string
	req  func(t *testing.T, h *hostile) *authv3.CheckRequest
	// want: the deny reason, or an allow reason.
	want Reason
	// token: an allow must carry a session JWT for alpha; otherwise an
	// allow carries no identity and strips the assertion and the secret.
	token bool
	check func(t *testing.T, h *hostile, resp *authv3.CheckResponse)
}

// jwtRow presents jwt both as the CF_Authorization cookie and as the
// cf-access-token header.
func bothJWTRows(name string, want Reason, jwt func(t *testing.T, h *hostile) string) []hostileRow {
	return []hostileRow{
		{name: name + " (cookie)", want: want, token: want.Allowed(),
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest { return cookieReq(jwt(t, h)) }},
		{name: name + " (cf-access-token)", want: want, token: want.Allowed(),
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerAccessToken, jwt(t, h))
			}},
	}
}

func hostileJWTRows() []hostileRow {
	var rows []hostileRow
	add := func(name string, want Reason, jwt func(t *testing.T, h *hostile) string) {
		rows = append(rows, bothJWTRows(name, want, jwt)...)
	}

	// Controls: the hand-built JWTs are right when signed properly, so the
	// rows below fail for the reason they name and no other.
	add("control: hand-built RS256 JWT", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("control: ES256 JWT of the retired, still published key", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("ES256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})

	// Algorithm confusion: HS256 keyed with every public form of the key.
	for _, enc := range []string{"PKIX PEM", "PKCS#1 PEM", "PKIX DER", "JWK JSON", "JWKS", "certificate"} {
		add("HS256 keyed with the RSA public key as "+enc, ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
			return forge(t, header("HS256", h.rs.KID), h.claims(nil), hs256(h.publicEncodings(t)[enc]))
		})
	}
	add("HS256 without a kid", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		hdr := header("HS256", "")
		delete(hdr, "kid")
		return forge(t, hdr, h.claims(nil), hs256(h.publicEncodings(t)["PKIX PEM"]))
	})
	for _, alg := range []string{"none", "None", "NONE", "nOnE", ""} {
		add("alg "+`"`+alg+`"`+" unsigned", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
			return forge(t, header(alg, h.rs.KID), h.claims(nil), noSig)
		})
	}
	add("alg none with the real RS256 signature", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		return forge(t, header("none", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("alg missing", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		hdr := header("", h.rs.KID)
		delete(hdr, "alg")
		return forge(t, hdr, h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("alg is a number", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		hdr := header("", h.rs.KID, "alg", 256)
		return forge(t, hdr, h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	for _, alg := range []string{"RS512", "PS256", "RS384"} {
		add(alg+" signed by the RSA key", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
			m := jwt.GetSigningMethod(alg)
			return forge(t, header(alg, h.rs.KID), h.claims(nil), signer(t, m, h.rs.Signer))
		})
	}
	add("RS256 header over an ES256 signature (RSA kid)", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})
	add("ES256 header and signature under the RSA kid", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		return forge(t, header("ES256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})
	add("RS256 header and signature under the EC kid", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("EdDSA header under the RSA kid", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		return forge(t, header("EdDSA", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})

	// kid games.
	for _, kid := range []string{"../../x", "../../../../../../dev/null", "/etc/passwd", "..\\..\\x", "x\x00" + "y"} {
		add("kid "+strings.ReplaceAll(kid, "\x00", `\0`), ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
			return forge(t, header("RS256", kid), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
		})
	}
	add("kid is the real kid plus ../", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", "../"+h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("kid upper-cased", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", strings.ToUpper(h.rs.KID)), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("kid is an array", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", "", "kid", []string{h.rs.KID}), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	// encoding/json matches struct fields case-insensitively (the last
	// match wins), a map does not: the two readings of these headers
	// must not pick different keys.
	add("kid then KID name different keys", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		hdr := []byte(`{"alg":"ES256","kid":"` + h.rs.KID + `","KID":"` + h.es.KID + `","typ":"JWT"}`)
		return forge(t, hdr, h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})
	add("KID then kid name different keys", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		hdr := []byte(`{"alg":"ES256","KID":"` + h.es.KID + `","kid":"` + h.rs.KID + `","typ":"JWT"}`)
		return forge(t, hdr, h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})
	add("kid twice", ReasonJWTAlgorithm, func(t *testing.T, h *hostile) string {
		hdr := []byte(`{"alg":"ES256","kid":"` + h.es.KID + `","kid":"` + h.rs.KID + `","typ":"JWT"}`)
		return forge(t, hdr, h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
	})

	// Forged and re-signed.
	add("payload swapped (beta's id) under alpha's signature", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		real := forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
		fake := forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) {
			c["service_token_id"], c["common_name"] = h.beta.ID, h.beta.ClientID
		}), noSig)
		return fake[:strings.LastIndexByte(fake, '.')] + real[strings.LastIndexByte(real, '.'):]
	})
	add("signature stripped", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(nil), noSig)
	})
	add("re-signed with the attacker's RSA key under gatehouse's kid", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer))
	})
	add("re-signed with the attacker's EC key under the retired EC kid", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		return forge(t, header("ES256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.attackerES.Signer))
	})
	add("signed with the attacker's key under its own kid", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.attackerRS.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer))
	})
	add("four segments", ReasonJWTMalformed, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer)) + ".x"
	})
	add("two segments", ReasonJWTMalformed, func(t *testing.T, h *hostile) string {
		s := forge(t, header("RS256", h.rs.KID), h.claims(nil), noSig)
		return strings.TrimSuffix(s, ".")
	})
	add("padded base64 header", ReasonJWTMalformed, func(t *testing.T, h *hostile) string {
		s := forge(t, header("RS256", h.rs.KID), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
		dot := strings.IndexByte(s, '.')
		hb, _ := base64.RawURLEncoding.DecodeString(s[:dot])
		return base64.URLEncoding.EncodeToString(append(hb, ' ')) + s[dot:]
	})

	// Headers that point elsewhere for the key: ignored, never fetched.
	// (The fetch counter is checked in TestHostileKeyURLsNotFetched.)
	add("jwk header with the attacker's key, signed by it, gatehouse's kid", ReasonJWTSignature, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID, "jwk", jwkOf(h.attackerRS)), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer))
	})
	add("jwk header with the attacker's key, signed by it, its kid", ReasonJWTUnknownKID, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.attackerRS.KID, "jwk", jwkOf(h.attackerRS)), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer))
	})

	// Times (30 s leeway, whole seconds; now is t0).
	add("expired 31s ago", ReasonJWTExpired, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) {
			c["iat"], c["nbf"] = h.now().Add(-time.Hour).Unix(), h.now().Add(-time.Hour).Unix()
			c["exp"] = h.now().Add(-tokens.JWTLeeway - time.Second).Unix()
		}), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("expired 29s ago (within leeway)", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) {
			c["iat"], c["nbf"] = h.now().Add(-time.Hour).Unix(), h.now().Add(-time.Hour).Unix()
			c["exp"] = h.now().Add(-tokens.JWTLeeway + time.Second).Unix()
		}), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("nbf 31s ahead", ReasonJWTNotYetValid, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) {
			c["nbf"] = h.now().Add(tokens.JWTLeeway + time.Second).Unix()
		}), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("iat 31s ahead", ReasonJWTNotYetValid, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) {
			c["iat"] = h.now().Add(tokens.JWTLeeway + time.Second).Unix()
		}), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("exp missing", ReasonJWTClaims, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { delete(c, "exp") }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	// golang-jwt reads a NumericDate from a JSON string holding a number
	// (RFC 7519 wants a number). Lenient but harmless: only a JWT signed
	// by gatehouse's own key gets this far, and gatehouse writes numbers.
	add("exp is a numeric string (lenient, signed by the real key)", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["exp"] = "9999999999" }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("exp absurdly far (1e300)", ReasonJWTExpired, func(t *testing.T, h *hostile) string {
		// float64 → int64 overflows to the past: refused either way,
		// never an allow for ever.
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["exp"] = 1e300 }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})

	// Audience.
	add("JWT gatehouse issued for another application", ReasonJWTWrongAudience, func(t *testing.T, h *hostile) string {
		jwt, _ := wantAllowToken(t, h.check(httpReq("other.example.com", "/", headerClientID, h.alpha.ClientID, headerClientSecret, h.alphaSecret)))
		return jwt
	})
	add("aud as a string", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["aud"] = h.app.AUD }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("aud array naming another app first", ReasonAllowedByPolicy, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["aud"] = []string{h.other.AUD, h.app.AUD} }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("aud string of another app", ReasonJWTWrongAudience, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["aud"] = h.other.AUD }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("aud missing", ReasonJWTWrongAudience, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { delete(c, "aud") }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("aud upper-cased", ReasonJWTWrongAudience, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["aud"] = strings.ToUpper(h.app.AUD) }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("aud is a number", ReasonJWTMalformed, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["aud"] = 7 }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	add("common_name of another token", ReasonJWTClaims, func(t *testing.T, h *hostile) string {
		return forge(t, header("RS256", h.rs.KID), h.claims(func(c map[string]any) { c["common_name"] = h.beta.ClientID }), signer(t, jwt.SigningMethodRS256, h.rs.Signer))
	})
	return rows
}

// hostileHeaderRows: sizes, counts, bytes, casing, duplicates, cookies and
// the single JSON credential header.
func hostileHeaderRows() []hostileRow {
	valid := func(h *hostile) []string {
		return []string{headerClientID, h.alpha.ClientID, headerClientSecret, h.alphaSecret}
	}
	const kib, mib = 1 << 10, 1 << 20
	custom := func(h *hostile, v string) *authv3.CheckRequest {
		h.app.ServiceTokenHeader = "x-gatehouse-credentials"
		h.touchApp(h.app)
		h.publish()
		return httpReq("app.example.com", "/", "x-gatehouse-credentials", v)
	}
	credJSON := func(h *hostile) string {
		return `{"cf-access-client-id":"` + h.alpha.ClientID + `","cf-access-client-secret":"` + h.alphaSecret + `"}`
	}
	rows := []hostileRow{
		// Oversized.
		{name: "64 KiB cookie header with the JWT among the crumbs", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", strings.Repeat("a=b; ", 64*kib/5)+"CF_Authorization="+h.sessionJWT(t)+"; z=1")
			}},
		{name: "64 KiB CF_Authorization value", want: ReasonJWTMalformed,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+strings.Repeat("e", 64*kib))
			}},
		{name: "64 KiB JWT-shaped cookie", want: ReasonJWTMalformed,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+h.sessionJWT(t)+strings.Repeat("A", 64*kib))
			}},
		{name: "1 MiB client secret", want: ReasonMalformedSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerClientID, h.alpha.ClientID, headerClientSecret, "ghst_"+strings.Repeat("A", mib))
			}},
		{name: "1 MiB client id", want: ReasonUnknownClientID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerClientID, strings.Repeat("a", mib), headerClientSecret, h.alphaSecret)
			},
			check: func(t *testing.T, h *hostile, resp *authv3.CheckResponse) {
				if resp.GetDynamicMetadata().GetFields()[metaClientID] != nil {
					t.Error("a malformed client id reached the metadata")
				}
			}},
		{name: "1 MiB x-request-id with valid credentials", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				req := tokenReq(h.alpha.ClientID, h.alphaSecret)
				req.Attributes.Request.Http.Headers["x-request-id"] = strings.Repeat("r", mib)
				return req
			}},
		{name: "1 MiB cf-access-token", want: ReasonJWTMalformed,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", headerAccessToken, strings.Repeat("eyJ", mib/3))
			}},
		{name: "1 MiB path with valid credentials", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/"+strings.Repeat("seg/", mib/4), valid(h)...)
			}},
		{name: "1 MiB of ../ in the path", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/"+strings.Repeat("../", mib/3), valid(h)...)
			}},
		{name: "1 MiB host", want: ReasonNoApplication,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq(strings.Repeat("a.", mib/2)+"app.example.com", "/", valid(h)...)
			}},
		{name: "1 MiB cookie of empty crumbs", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", strings.Repeat(";", mib))
			}},

		// Counts.
		{name: "10k headers in the headers map", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				req := tokenReq(h.alpha.ClientID, h.alphaSecret)
				for i := range 10_000 {
					req.Attributes.Request.Http.Headers["x-junk-"+strconv.Itoa(i)] = "v"
				}
				return req
			}},
		{name: "10k header_map entries", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				kv := valid(h)
				for i := range 10_000 {
					kv = append(kv, "x-junk-"+strconv.Itoa(i), "v")
				}
				return rawReq("app.example.com", "/", kv...)
			}},
		{name: "10k client id entries in header_map", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				kv := valid(h)
				for range 10_000 {
					kv = append(kv, headerClientID, h.alpha.ClientID)
				}
				return rawReq("app.example.com", "/", kv...)
			}},
		{name: "10k cookie entries in header_map, one CF_Authorization each", want: ReasonDuplicateCookie,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t)
				var kv []string
				for range 10_000 {
					kv = append(kv, "cookie", "CF_Authorization="+jwt)
				}
				return rawReq("app.example.com", "/", kv...)
			}},
		{name: "10k x-forwarded-for entries (header_map)", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				kv := valid(h)
				for range 10_000 {
					kv = append(kv, "x-forwarded-for", "192.0.2.1")
				}
				return rawReq("app.example.com", "/", kv...)
			}},

		// Invalid UTF-8 in header_map raw values (Envoy leaves raw bytes
		// alone there).
		{name: "invalid UTF-8 client id (raw)", want: ReasonUnknownClientID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, "\xff\xfe"+h.alpha.ClientID[2:], headerClientSecret, h.alphaSecret)
			}},
		{name: "invalid UTF-8 secret (raw)", want: ReasonMalformedSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, h.alpha.ClientID, headerClientSecret, h.alphaSecret[:len(h.alphaSecret)-1]+"\xc3")
			}},
		{name: "invalid UTF-8 cookie crumbs around the JWT (raw)", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", "cookie", "\xff=\xfe; CF_Authorization="+h.sessionJWT(t)+"; \xc3(=\x80")
			}},
		{name: "invalid UTF-8 x-request-id (raw) is logged as valid JSON", want: ReasonWrongSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, h.alpha.ClientID, headerClientSecret, h.betaSecret, "x-request-id", "\xff\xfe\x00\n\"}")
			}},
		{name: "invalid UTF-8 :authority (raw, no host attribute)", want: ReasonNoApplication,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				req := rawReq("app.example.com\xff", "/", valid(h)...)
				req.Attributes.Request.Http.Host = ""
				return req
			}},
		{name: "invalid UTF-8 credential JSON value (raw)", want: ReasonUnknownClientID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				h.app.ServiceTokenHeader = "x-gatehouse-credentials"
				h.touchApp(h.app)
				h.publish()
				return rawReq("app.example.com", "/", "x-gatehouse-credentials",
					`{"cf-access-client-id":"`+"\xff"+h.alpha.ClientID+`","cf-access-client-secret":"`+h.alphaSecret+`"}`)
			}},

		// NUL bytes.
		{name: "NUL after the client id", want: ReasonUnknownClientID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return tokenReq(h.alpha.ClientID+"\x00", h.alphaSecret)
			}},
		{name: "NUL after the secret", want: ReasonMalformedSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return tokenReq(h.alpha.ClientID, h.alphaSecret+"\x00")
			}},
		{name: "NUL in the path", want: ReasonAmbiguousPath,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/api\x00/x", valid(h)...)
			}},
		{name: "%00 in the path", want: ReasonAmbiguousPath,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/api%00/x", valid(h)...)
			}},
		{name: "NUL in the host does not truncate it", want: ReasonNoApplication,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com\x00.evil.example", "/", valid(h)...)
			}},
		{name: "NUL after the cookie JWT", want: ReasonJWTMalformed,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+h.sessionJWT(t)+"\x00")
			}},
		{name: "NUL in a credential header name is another header", want: ReasonIncompleteCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cf-access-client-i\x00", h.alpha.ClientID, headerClientSecret, h.alphaSecret)
			}},

		// Odd casing and duplicates in header_map.
		{name: "CF-ACCESS-CLIENT-ID / CF-ACCESS-CLIENT-SECRET (header_map)", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", "CF-ACCESS-CLIENT-ID", h.alpha.ClientID, "Cf-Access-Client-Secret", h.alphaSecret)
			}},
		{name: "client id twice in two casings (header_map)", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", "CF-ACCESS-CLIENT-ID", h.alpha.ClientID, headerClientID, h.alpha.ClientID, headerClientSecret, h.alphaSecret)
			}},
		{name: "secret twice, the second a wrong one (header_map)", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, h.alpha.ClientID, "CF-ACCESS-CLIENT-SECRET", h.betaSecret, headerClientSecret, h.alphaSecret)
			}},
		{name: "client id of beta and alpha joined (headers map)", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return tokenReq(h.beta.ClientID+","+h.alpha.ClientID, h.alphaSecret)
			}},
		{name: "an empty duplicate is absent (header_map)", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return rawReq("app.example.com", "/", headerClientID, " ", "CF-ACCESS-CLIENT-ID", h.alpha.ClientID, headerClientSecret, h.alphaSecret)
			}},
		{name: "cf-access-token twice in two casings (header_map)", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t)
				return rawReq("app.example.com", "/", "CF-ACCESS-TOKEN", jwt, headerAccessToken, jwt)
			}},

		// Forged assertions.
		{name: "forged assertion on a bypass route is removed (header_map, odd casing, twice)", want: ReasonBypass,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t) // a real one: still not passed on
				h.policy(h.app, policy.Bypass, everyoneRule())
				h.publish()
				return rawReq("app.example.com", "/", append(valid(h), "CF-Access-JWT-Assertion", jwt, "cf-access-jwt-assertion", "forged")...)
			}},
		{name: "forged assertion through a %2e%2e path onto the protected app", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				pub := h.app_("public", "app.example.com/public")
				h.policy(pub, policy.Bypass, everyoneRule())
				h.publish()
				return httpReq("app.example.com", "/public/%2e%2e/api", headerAssertion, "forged")
			},
			check: func(t *testing.T, h *hostile, resp *authv3.CheckResponse) {
				if got := resp.GetDynamicMetadata().GetFields()[metaApplication].GetStringValue(); got != "app" {
					t.Errorf("routed to %q, want the protected app", got)
				}
			}},

		// Cookie tricks (docs/concepts.md: the CF_Authorization cookie;
		// "a cookie set twice" is a 401). Cookie names are case-sensitive
		// (RFC 6265), so cf_authorization is another cookie.
		{name: "CF_Authorization inside another cookie's quoted value", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", `theme="CF_Authorization=`+h.sessionJWT(t)+`"`)
			}},
		{name: "a quoted value split by ; exposes a CF_Authorization crumb", want: ReasonJWTMalformed,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				// Browsers and net/http split on ";" too: the crumb is a
				// cookie, with a stray quote, so the JWT does not parse.
				return httpReq("app.example.com", "/", "cookie", `theme="x; CF_Authorization=`+h.sessionJWT(t)+`"`)
			}},
		{name: "CF_Authorization=a; CF_Authorization=b (b valid)", want: ReasonDuplicateCookie,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization=a; CF_Authorization="+h.sessionJWT(t))
			}},
		{name: "CF_Authorization=valid; CF_Authorization=b", want: ReasonDuplicateCookie,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+h.sessionJWT(t)+"; CF_Authorization=b")
			}},
		{name: "the same JWT quoted and unquoted", want: ReasonDuplicateCookie,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t)
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+jwt+`;CF_Authorization="`+jwt+`"`)
			}},
		{name: "leading spaces and tabs before the cookie", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", " \t  CF_Authorization="+h.sessionJWT(t)+" \t")
			}},
		{name: "quoted cookie value", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", `CF_Authorization="`+h.sessionJWT(t)+`"`)
			}},
		{name: "cf_authorization lower-case is another cookie", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "cf_authorization="+h.sessionJWT(t))
			}},
		{name: "CF_AUTHORIZATION upper-case is another cookie", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_AUTHORIZATION="+h.sessionJWT(t))
			}},
		{name: "space before = is another cookie name", want: ReasonMissingCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization ="+h.sessionJWT(t))
			}},
		{name: "cookie and cf-access-token with the same JWT", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t)
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+jwt, headerAccessToken, jwt)
			}},
		{name: "two cookie headers in header_map, CF_Authorization in each", want: ReasonDuplicateCookie,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := h.sessionJWT(t)
				return rawReq("app.example.com", "/", "cookie", "a=1; CF_Authorization="+jwt, "Cookie", "CF_Authorization="+jwt)
			}},
		{name: "cookie with a valid JWT beside a wrong secret: the secret decides", want: ReasonWrongSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return httpReq("app.example.com", "/", "cookie", "CF_Authorization="+h.sessionJWT(t),
					headerClientID, h.alpha.ClientID, headerClientSecret, h.betaSecret)
			}},

		// The single JSON credential header.
		{name: "JSON header: key names as unicode escapes (same JSON string)", want: ReasonAllowedByPolicy, token: true,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"\u0063f-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-\u0073ecret":"`+h.alphaSecret+`"}`)
			}},
		{name: "JSON header: duplicate key, one spelled with an escape", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":"`+h.beta.ClientID+`","cf-access-client-\u0069d":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+h.alphaSecret+`"}`)
			}},
		{name: "JSON header: duplicate secret key", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+h.betaSecret+`","cf-access-client-secret":"`+h.alphaSecret+`"}`)
			}},
		{name: "JSON header: upper-case escape in a key", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"\u0043f-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+h.alphaSecret+`"}`)
			}},
		{name: "JSON header: escaped comma in the secret", want: ReasonDuplicateCredentials,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+h.alphaSecret+`\u002c`+h.betaSecret+`"}`)
			}},
		{name: "JSON header: escaped NUL in the secret", want: ReasonMalformedSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+h.alphaSecret+`\u0000"}`)
			}},
		{name: "JSON header: trailing second object", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest { return custom(h, credJSON(h)+"\n"+credJSON(h)) }},
		{name: "JSON header: trailing NUL", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest { return custom(h, credJSON(h)+"\x00") }},
		{name: "JSON header: byte-order mark", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest { return custom(h, "\ufeff"+credJSON(h)) }},
		{name: "JSON header: 1 MiB of nested arrays", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":`+strings.Repeat("[", mib)+strings.Repeat("]", mib)+`}`)
			}},
		{name: "JSON header: 1 MiB of nested objects", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, strings.Repeat(`{"cf-access-client-id":`, mib/24)+`"x"`+strings.Repeat("}", mib/24))
			}},
		{name: "JSON header: 1 MiB of escapes in the secret", want: ReasonMalformedSecret,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, `{"cf-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+strings.Repeat(`\u0041`, mib/6)+`"}`)
			}},
		{name: "JSON header: 1 MiB of repeated keys", want: ReasonMalformedCredentialHeader,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				return custom(h, "{"+strings.Repeat(`"cf-access-client-id":"`+h.alpha.ClientID+`",`, mib/64)+`"cf-access-client-secret":"`+h.alphaSecret+`"}`)
			}},
	}
	return rows
}

// TestHostile runs every hostile row through Check (and Explain) on a
// fresh world.
func TestHostile(t *testing.T) {
	rows := append(hostileJWTRows(), hostileHeaderRows()...)
	rows = append(rows, hostileKeyLifeRows()...)
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h := newHostile(t)
			req := row.req(t, h)
			before := len(h.logs.String())

			v := h.srv.Explain(req)
			resp := h.check(req)

			if got := reasonOf(resp); got == ReasonInternalError.String() {
				t.Fatalf("Check panicked (recovered as internal_error)")
			}
			switch {
			case row.want.Allowed() && row.token:
				jwt, _ := wantAllowToken(t, resp)
				h.verifyJWT(jwt, h.app, h.alpha)
			case row.want.Allowed():
				wantAllowPlain(t, resp)
			default:
				wantDeny(t, resp, row.want)
			}
			if v.Reason != row.want {
				t.Errorf("Explain reason = %s, want %s", v.Reason, row.want)
			}
			if _, err := proto.Marshal(resp); err != nil {
				t.Errorf("the response does not marshal (gRPC would fail the call): %v", err)
			}
			if row.check != nil {
				row.check(t, h, resp)
			}
			// One decision line per Check, valid JSON, short, and free
			// of secrets and JWTs.
			logs := h.logs.String()[before:]
			if len(logs) > 2048 {
				t.Errorf("decision log for one Check is %d bytes: request data copied into it?", len(logs))
			}
			lines := h.logs.lines(t)
			if len(lines) == 0 || lines[len(lines)-1]["reason"] != row.want.String() {
				t.Errorf("last log line = %v, want reason %s", lines[len(lines)-1:], row.want)
			}
			for _, secret := range []string{h.alphaSecret, h.betaSecret} {
				if strings.Contains(logs, secret) {
					t.Error("the decision log contains a client secret")
				}
			}
			if strings.Contains(logs, "eyJ") {
				t.Error("the decision log contains something JWT-shaped")
			}
			meta, _ := proto.Marshal(resp.GetDynamicMetadata())
			if strings.Contains(string(meta), h.alphaSecret) || strings.Contains(string(meta), "eyJ") {
				t.Error("the dynamic metadata carries a credential")
			}
		})
	}
}

// hostileKeyLifeRows: JWTs of keys that have left the key set.
func hostileKeyLifeRows() []hostileRow {
	return []hostileRow{
		{name: "kid of a retired key past its RemoveAfter (still in the set)", want: ReasonJWTUnknownKID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				// Valid claims, signed by the retired EC key; the set is
				// then republished with that key past RemoveAfter.
				jwt := forge(t, header("ES256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
				wantAllowToken(t, h.check(cookieReq(jwt))) // cached as verified
				gone := *h.es
				gone.RemoveAfter = h.now().Add(-time.Second)
				h.keys = keySet(t, h.rs, &gone)
				h.srv.Publish(h.srv.Snapshot().WithKeys(h.keys))
				return cookieReq(jwt)
			}},
		{name: "kid of a key removed from the set", want: ReasonJWTUnknownKID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				jwt := forge(t, header("ES256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
				wantAllowToken(t, h.check(cookieReq(jwt)))
				h.keys = keySet(t, h.rs)
				h.srv.Publish(h.srv.Snapshot().WithKeys(h.keys))
				return cookieReq(jwt)
			}},
		{name: "verified-JWT cache does not outlive the key's RemoveAfter", want: ReasonJWTUnknownKID,
			req: func(t *testing.T, h *hostile) *authv3.CheckRequest {
				soon := *h.es
				soon.RemoveAfter = h.now().Add(10 * time.Minute)
				h.keys = keySet(t, h.rs, &soon)
				h.srv.Publish(h.srv.Snapshot().WithKeys(h.keys))
				jwt := forge(t, header("ES256", h.es.KID), h.claims(nil), signer(t, jwt.SigningMethodES256, h.es.Signer))
				wantAllowToken(t, h.check(cookieReq(jwt)))
				h.clock.Advance(11 * time.Minute) // JWT still unexpired, key gone
				return cookieReq(jwt)
			}},
	}
}

// TestHostileKeyURLsNotFetched: jku, x5u, x5c and jwk in a JWT header are
// ignored. A JWT signed by gatehouse's key with all of them is accepted on
// its kid alone, one signed by the key they point at is refused, and the
// URLs are never fetched.
func TestHostileKeyURLsNotFetched(t *testing.T) {
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer evil.Close()

	h := newHostile(t)
	extra := []any{
		"jku", evil.URL + "/jwks.json",
		"x5u", evil.URL + "/cert.pem",
		"x5c", []string{base64.StdEncoding.EncodeToString(h.attackerRS.CertDER)},
		"jwk", jwkOf(h.attackerRS),
	}
	cases := []struct {
		name string
		jwt  string
		want Reason
	}{
		{"signed by gatehouse's key: headers ignored", forge(t, header("RS256", h.rs.KID, extra...), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.rs.Signer)), ReasonAllowedByPolicy},
		{"signed by the pointed-at key, gatehouse's kid", forge(t, header("RS256", h.rs.KID, extra...), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer)), ReasonJWTSignature},
		{"signed by the pointed-at key, its kid", forge(t, header("RS256", h.attackerRS.KID, extra...), h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer)), ReasonJWTUnknownKID},
		{"no kid, only jku", forge(t, map[string]any{"alg": "RS256", "jku": evil.URL + "/jwks.json"}, h.claims(nil), signer(t, jwt.SigningMethodRS256, h.attackerRS.Signer)), ReasonJWTUnknownKID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.check(cookieReq(c.jwt))
			if c.want.Allowed() {
				wantAllowToken(t, resp)
			} else {
				wantDeny(t, resp, c.want)
			}
		})
	}
	// Give a (wrong) background fetch a moment to show up.
	time.Sleep(50 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Fatalf("a URL from a JWT header was fetched %d times", n)
	}
}

// TestHostileIdentitylessAllowStripsCustomCredentialHeader: when Envoy is
// told to let a request through without an identity (a bypass, or a deny
// in dry run) the upstream must not see the client secret. The standard
// secret header is removed (okStrip); the application's single JSON
// credential header carries the same secret and must be removed too.
func TestHostileIdentitylessAllowStripsCustomCredentialHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		want Reason
		set  func(h *hostile)
	}{
		{"bypass", ReasonBypass, func(h *hostile) { h.policy(h.app, policy.Bypass, everyoneRule()) }},
		{"dry-run deny (wrong secret)", ReasonWrongSecret, func(h *hostile) { h.app.DryRun = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostile(t)
			h.app.ServiceTokenHeader = "x-gatehouse-credentials"
			c.set(h)
			h.touchApp(h.app)
			h.publish()
			secret := h.alphaSecret
			if c.want == ReasonWrongSecret {
				secret = h.betaSecret
			}
			req := httpReq("app.example.com", "/", "x-gatehouse-credentials",
				`{"cf-access-client-id":"`+h.alpha.ClientID+`","cf-access-client-secret":"`+secret+`"}`)
			resp := h.check(req)
			if reasonOf(resp) != c.want.String() || resp.GetStatus().GetCode() != 0 {
				t.Fatalf("reason %s, status %v; want %s and OK", reasonOf(resp), resp.GetStatus(), c.want)
			}
			rm := resp.GetOkResponse().GetHeadersToRemove()
			if !containsFold(rm, headerClientSecret) || !containsFold(rm, headerAssertion) {
				t.Fatalf("headers_to_remove = %v: the standard secret or the assertion is not removed", rm)
			}
			if !containsFold(rm, "x-gatehouse-credentials") {
				t.Fatalf("headers_to_remove = %v: the application's service_token_header, which carries the "+
					"client secret, would reach the upstream", rm)
			}
		})
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// TestHostileHeaderMapNilAndEmpty: nil entries, empty keys and values, and
// a header_map with only junk never confuse the parser.
func TestHostileHeaderMapNilAndEmpty(t *testing.T) {
	h := newHostile(t)
	req := rawReq("app.example.com", "/", headerClientID, h.alpha.ClientID, headerClientSecret, h.alphaSecret)
	hm := req.Attributes.Request.Http.HeaderMap
	hm.Headers = append([]*corev3.HeaderValue{nil, {}, {Key: headerClientID}, {Key: "", RawValue: []byte("x")}}, hm.Headers...)
	hm.Headers = append(hm.Headers, nil, &corev3.HeaderValue{Key: headerClientSecret, Value: "  "})
	jwt, _ := wantAllowToken(t, h.check(req))
	h.verifyJWT(jwt, h.app, h.alpha)
	// Over gRPC a nil entry arrives as an empty one.
	req.Attributes.Request.Http.HeaderMap.Headers = slicesDeleteNil(hm.Headers)
	resp, err := grpcClient(t, h.srv).Check(context.Background(), req)
	if err != nil {
		t.Fatalf("gRPC: %v", err)
	}
	wantAllowToken(t, resp)
}

func slicesDeleteNil(in []*corev3.HeaderValue) []*corev3.HeaderValue {
	var out []*corev3.HeaderValue
	for _, v := range in {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}
