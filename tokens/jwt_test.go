package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer = "https://team.gatehouse.example"
	testAUD    = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
)

// testClaims are a service token's session claims issued at now, valid 24h.
func testClaims(now time.Time) *Claims {
	return &Claims{
		Issuer:           testIssuer,
		Audience:         []string{testAUD},
		IssuedAt:         now,
		ExpiresAt:        now.Add(24 * time.Hour),
		Type:             "app",
		CommonName:       "88bf3b6d86161464f6509f7219099e57.access",
		ServiceTokenID:   "0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d",
		ServiceTokenName: "ci-deploy",
	}
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	return decodeSegment(t, strings.Split(tok, ".")[0])
}

func TestSignVerify(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			k := fixtureKey(t, string(alg))
			ks := mustKeySet(t, k)
			now := t0.Add(1500 * time.Millisecond) // a fraction: written as whole seconds
			c := testClaims(now)
			tok, err := ks.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("JWT has %d segments", len(parts))
			}
			if h := decodeSegment(t, parts[0]); !maps.Equal(h, map[string]any{"alg": string(alg), "kid": k.KID, "typ": "JWT"}) {
				t.Errorf("header = %v", h)
			}
			p := decodeSegment(t, parts[1])
			wantKeys := []string{"aud", "common_name", "exp", "iat", "iss", "nbf", "service_token_id", "service_token_name", "sub", "type"}
			if got := slices.Sorted(maps.Keys(p)); !slices.Equal(got, wantKeys) {
				t.Errorf("claims %v, want %v", got, wantKeys)
			}
			if aud, ok := p["aud"].([]any); !ok || len(aud) != 1 || aud[0] != testAUD {
				t.Errorf("aud = %#v, want a one-element array", p["aud"])
			}
			if p["sub"] != "" || p["type"] != "app" || p["iss"] != testIssuer || p["common_name"] != c.CommonName {
				t.Errorf("claims = %v", p)
			}
			unix := float64(t0.Unix() + 1)
			if p["iat"] != unix || p["nbf"] != unix || p["exp"] != unix+86400 {
				t.Errorf("iat %v nbf %v exp %v, want whole seconds %v", p["iat"], p["nbf"], p["exp"], unix)
			}

			got, err := ks.Verify(tok, testIssuer, now)
			if err != nil {
				t.Fatal(err)
			}
			want := *c
			want.IssuedAt = now.Truncate(time.Second)
			want.NotBefore = want.IssuedAt
			want.ExpiresAt = want.ExpiresAt.Truncate(time.Second)
			if !claimsEqual(got, &want) {
				t.Errorf("Verify = %+v, want %+v", got, want)
			}
		})
	}
}

func claimsEqual(a, b *Claims) bool {
	return a.Issuer == b.Issuer && slices.Equal(a.Audience, b.Audience) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.NotBefore.Equal(b.NotBefore) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.Type == b.Type && a.CommonName == b.CommonName && a.Subject == b.Subject &&
		a.ServiceTokenID == b.ServiceTokenID && a.ServiceTokenName == b.ServiceTokenName
}

func TestSignClaimsErrors(t *testing.T) {
	ks := mustKeySet(t, fixtureKey(t, "EdDSA"))
	tests := []struct {
		name string
		edit func(c *Claims)
	}{
		{"no issuer", func(c *Claims) { c.Issuer = "" }},
		{"no iat", func(c *Claims) { c.IssuedAt = time.Time{} }},
		{"no exp", func(c *Claims) { c.ExpiresAt = time.Time{} }},
		{"exp before iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) }},
		{"exp equals iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt }},
	}
	for _, tt := range tests {
		c := testClaims(t0)
		tt.edit(c)
		if _, err := ks.Sign(c); !errors.Is(err, ErrJWTClaims) {
			t.Errorf("%s: Sign = %v, want ErrJWTClaims", tt.name, err)
		}
	}
	// An explicit nbf is kept; a nil audience is an empty array.
	c := testClaims(t0)
	c.NotBefore, c.Audience = t0.Add(time.Minute), nil
	tok, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	p := decodeSegment(t, strings.Split(tok, ".")[1])
	if p["nbf"] != float64(t0.Unix()+60) {
		t.Errorf("nbf = %v", p["nbf"])
	}
	if aud, ok := p["aud"].([]any); !ok || len(aud) != 0 {
		t.Errorf("aud = %#v, want []", p["aud"])
	}
}

// craft builds a JWT from raw header and claims; sign gets the signing
// input and returns the signature (nil: empty signature).
func craft(t *testing.T, header, claims map[string]any, sign func(string) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	ss := enc(header) + "." + enc(claims)
	var sig []byte
	if sign != nil {
		sig = sign(ss)
	}
	return ss + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func signWith(t *testing.T, m jwt.SigningMethod, key any) func(string) []byte {
	return func(ss string) []byte {
		sig, err := m.Sign(ss, key)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func hs256(secret []byte) func(string) []byte {
	return func(ss string) []byte {
		h := hmac.New(sha256.New, secret)
		h.Write([]byte(ss))
		return h.Sum(nil)
	}
}

// TestVerifyForgeries has one row per way to forge or misuse a session JWT.
func TestVerifyForgeries(t *testing.T) {
	now := t0
	rs := fixtureKey(t, "RS256")
	rsOther := fixtureKey(t, "RS256-other")
	es := fixtureKey(t, "ES256")
	esRetired := copyKey(es)
	esRetired.RetiredAt, esRetired.RemoveAfter = t0.Add(-time.Hour), t0.Add(time.Hour)
	rsRemoved := copyKey(rs)
	rsRemoved.RetiredAt, rsRemoved.RemoveAfter = t0.Add(-2*time.Hour), t0

	rsOnly := mustKeySet(t, rs)
	mixed := mustKeySet(t, rs, esRetired)
	removed := mustKeySet(t, rsRemoved)

	claims := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{
			"iss": testIssuer, "aud": []string{testAUD},
			"iat": now.Unix() - 60, "nbf": now.Unix() - 60, "exp": now.Unix() + 3600,
			"type": "app", "common_name": "88bf3b6d86161464f6509f7219099e57.access", "sub": "",
			"service_token_id": "0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d", "service_token_name": "ci-deploy",
		}
		if edit != nil {
			edit(m)
		}
		return m
	}
	hdr := func(alg, kid string) map[string]any { return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"} }
	rsSign := signWith(t, jwt.SigningMethodRS256, rs.Signer)
	esSign := signWith(t, jwt.SigningMethodES256, es.Signer)
	valid := craft(t, hdr("RS256", rs.KID), claims(nil), rsSign)
	parts := strings.Split(valid, ".")

	rawSig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	pubDER, _ := x509.MarshalPKIXPublicKey(rs.Public)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tampered := claims(func(m map[string]any) { m["common_name"] = "ffffffffffffffffffffffffffffffff.access" })
	tamperedPayload := strings.Split(craft(t, hdr("RS256", rs.KID), tampered, nil), ".")[1]

	// The last base64 character of a 256-byte signature carries 4 unused
	// bits; setting one gives another encoding of the same signature.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	nonCanonical := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])

	// encoding/json matches struct fields case-insensitively (last wins) but
	// keeps map keys apart: the two views of this header disagree on the kid.
	ambiguousHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + rsOther.KID + `","Kid":"` + rs.KID + `"}`))
	ambiguousKID := ambiguousHeader + "." + parts[1] + "."
	ambiguousKID += base64.RawURLEncoding.EncodeToString(rsSign(ambiguousHeader + "." + parts[1]))

	tests := []struct {
		name  string
		set   *KeySet
		token string
		iss   string
		want  error // nil: valid
	}{
		{"valid", rsOnly, valid, testIssuer, nil},
		{"valid in a mixed set", mixed, valid, testIssuer, nil},
		{"valid ES256 under its own kid", mixed, craft(t, hdr("ES256", es.KID), claims(nil), esSign), testIssuer, nil},
		{"aud as a single string", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["aud"] = testAUD }), rsSign), testIssuer, nil},

		{"alg none", rsOnly, craft(t, hdr("none", rs.KID), claims(nil), nil), testIssuer, ErrJWTAlg},
		{"alg none, signed", rsOnly, craft(t, hdr("none", rs.KID), claims(nil), rsSign), testIssuer, ErrJWTAlg},
		{"HS256 keyed with the RSA public key PEM", rsOnly, craft(t, hdr("HS256", rs.KID), claims(nil), hs256(pubPEM)), testIssuer, ErrJWTAlg},
		{"HS256 keyed with the RSA public key DER", mixed, craft(t, hdr("HS256", rs.KID), claims(nil), hs256(pubDER)), testIssuer, ErrJWTAlg},
		{"ES256 token under an RS256 kid", rsOnly, craft(t, hdr("ES256", rs.KID), claims(nil), esSign), testIssuer, ErrJWTAlg},
		{"ES256 token under an RS256 kid, ES256 key in set", mixed, craft(t, hdr("ES256", rs.KID), claims(nil), esSign), testIssuer, ErrJWTAlg},
		{"RS256 token under an ES256 kid", mixed, craft(t, hdr("RS256", es.KID), claims(nil), rsSign), testIssuer, ErrJWTAlg},
		{"PS256 (RSA-PSS) with the RSA key", rsOnly, craft(t, hdr("PS256", rs.KID), claims(nil), signWith(t, jwt.SigningMethodPS256, rs.Signer)), testIssuer, ErrJWTAlg},
		{"alg missing", rsOnly, craft(t, map[string]any{"kid": rs.KID}, claims(nil), rsSign), testIssuer, ErrJWTAlg},
		{"alg unknown", rsOnly, craft(t, hdr("XX256", rs.KID), claims(nil), rsSign), testIssuer, ErrJWTAlg},

		{"unknown kid", rsOnly, craft(t, hdr("RS256", rsOther.KID), claims(nil), signWith(t, jwt.SigningMethodRS256, rsOther.Signer)), testIssuer, ErrJWTUnknownKID},
		{"missing kid", rsOnly, craft(t, map[string]any{"alg": "RS256", "typ": "JWT"}, claims(nil), rsSign), testIssuer, ErrJWTUnknownKID},
		{"empty kid", rsOnly, craft(t, hdr("RS256", ""), claims(nil), rsSign), testIssuer, ErrJWTUnknownKID},
		{"kid not a string", rsOnly, craft(t, map[string]any{"alg": "RS256", "kid": 1}, claims(nil), rsSign), testIssuer, ErrJWTUnknownKID},
		{"kid of a removed key", removed, valid, testIssuer, ErrJWTUnknownKID},
		{"kid twice, differing in case", rsOnly, ambiguousKID, testIssuer, ErrJWTUnknownKID},

		{"signature by another key under the same kid", rsOnly, craft(t, hdr("RS256", rs.KID), claims(nil), signWith(t, jwt.SigningMethodRS256, rsOther.Signer)), testIssuer, ErrJWTSignature},
		{"tampered payload", rsOnly, parts[0] + "." + tamperedPayload + "." + parts[2], testIssuer, ErrJWTSignature},
		{"signature truncated", rsOnly, parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(rawSig[:len(rawSig)-1]), testIssuer, ErrJWTSignature},
		{"signature empty", rsOnly, parts[0] + "." + parts[1] + ".", testIssuer, ErrJWTSignature},

		{"expired beyond leeway", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["exp"] = now.Unix() - 31 }), rsSign), testIssuer, ErrJWTExpired},
		{"expired exactly the leeway ago", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["exp"] = now.Unix() - 30 }), rsSign), testIssuer, ErrJWTExpired},
		{"expired within leeway", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["exp"] = now.Unix() - 29 }), rsSign), testIssuer, nil},
		{"nbf in the future", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["nbf"] = now.Unix() + 31 }), rsSign), testIssuer, ErrJWTNotYetValid},
		{"nbf within leeway", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["nbf"] = now.Unix() + 29 }), rsSign), testIssuer, nil},
		{"iat in the future", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["iat"] = now.Unix() + 120 }), rsSign), testIssuer, ErrJWTNotYetValid},
		{"wrong issuer", rsOnly, valid, "https://other.gatehouse.example", ErrJWTIssuer},
		{"issuer with a trailing slash", rsOnly, valid, testIssuer + "/", ErrJWTIssuer},
		{"no issuer to check", rsOnly, valid, "", ErrJWTIssuer},
		{"iss missing", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { delete(m, "iss") }), rsSign), testIssuer, ErrJWTIssuer},
		{"exp missing", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { delete(m, "exp") }), rsSign), testIssuer, ErrJWTClaims},
		{"exp not a number", rsOnly, craft(t, hdr("RS256", rs.KID), claims(func(m map[string]any) { m["exp"] = "tomorrow" }), rsSign), testIssuer, ErrJWTMalformed},

		{"empty", rsOnly, "", testIssuer, ErrJWTMalformed},
		{"two segments", rsOnly, parts[0] + "." + parts[1], testIssuer, ErrJWTMalformed},
		{"four segments", rsOnly, valid + ".x", testIssuer, ErrJWTMalformed},
		{"padded base64", rsOnly, valid + "==", testIssuer, ErrJWTMalformed},
		{"non-canonical base64 signature", rsOnly, nonCanonical, testIssuer, ErrJWTMalformed},
		{"header not JSON", rsOnly, base64.RawURLEncoding.EncodeToString([]byte("{alg")) + "." + parts[1] + "." + parts[2], testIssuer, ErrJWTMalformed},
		{"claims not JSON", rsOnly, parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[]")) + "." + parts[2], testIssuer, ErrJWTMalformed},
		{"too long", rsOnly, valid + strings.Repeat("A", MaxJWTLen), testIssuer, ErrJWTMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.set.Verify(tt.token, tt.iss, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want valid", err)
				}
				if c.CommonName != "88bf3b6d86161464f6509f7219099e57.access" || !slices.Equal(c.Audience, []string{testAUD}) {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.want)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error contains the token")
			}
		})
	}
}

// FuzzVerifyJWT checks that Verify never panics, classifies every failure
// with a sentinel, and accepts nothing but the JWTs actually signed.
func FuzzVerifyJWT(f *testing.F) {
	rs := fixtureKey(f, "RS256")
	ed := copyKey(fixtureKey(f, "EdDSA"))
	ed.CreatedAt = t0.Add(time.Hour)
	edRetired := copyKey(ed)
	edRetired.RetiredAt = t0.Add(2 * time.Hour)

	rsJWT, err := mustKeySet(f, rs).Sign(testClaims(t0))
	if err != nil {
		f.Fatal(err)
	}
	edJWT, err := mustKeySet(f, ed).Sign(testClaims(t0))
	if err != nil {
		f.Fatal(err)
	}
	ks := mustKeySet(f, rs, edRetired)
	signed := map[string]bool{rsJWT: true, edJWT: true}
	parts := strings.Split(rsJWT, ".")

	f.Add(rsJWT)                                     // valid RS256
	f.Add(edJWT)                                     // valid EdDSA
	f.Add(rsJWT[:len(rsJWT)-1])                      // truncated signature
	f.Add(parts[0] + "." + parts[1] + ".")           // no signature
	f.Add(parts[0] + ".e30." + parts[2])             // claims {}
	f.Add("eyJhbGciOiJub25lIn0.e30.")                // alg none
	f.Add("")                                        // empty
	f.Add("..")                                      // empty segments
	f.Add("a.b.c")                                   // not base64 JSON
	f.Add(strings.Repeat("eyJ", 100) + ".e30.AAAA")  // long garbage header
	f.Add(rsJWT + "=")                               // padding
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6IjEifQ.e30.") // HS256 with kid "1"
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ks.Verify(token, testIssuer, t0)
		if err == nil {
			if !signed[token] || c == nil {
				t.Fatalf("Verify accepted a JWT nobody signed: %q", token)
			}
			return
		}
		for _, s := range []error{ErrJWTMalformed, ErrJWTUnknownKID, ErrJWTAlg, ErrJWTSignature, ErrJWTExpired, ErrJWTNotYetValid, ErrJWTIssuer, ErrJWTClaims} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("Verify error %v wraps no sentinel", err)
	})
}

// TestKeySetConcurrentUse signs and verifies from several goroutines: the
// KeySet and its reused parsers must be safe to share (run with -race).
func TestKeySetConcurrentUse(t *testing.T) {
	ks := mustKeySet(t, fixtureKey(t, "EdDSA"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for range 20 {
				tok, err := ks.Sign(testClaims(t0))
				if err == nil {
					_, err = ks.Verify(tok, testIssuer, t0)
				}
				if err == nil {
					_, err = ks.Verify(tok+"x", testIssuer, t0)
					if err == nil {
						err = errors.New("a tampered JWT verified")
					} else {
						err = nil
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
