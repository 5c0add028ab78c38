package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testAud    = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
	testIssuer = "http://127.0.0.1:9003"
)

// testKey is a signing key of the test's own "gatehouse": the private half signs, the public half
// is published in the JWKS the test server serves.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	signer crypto.Signer
	jwk    map[string]string
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newRSAKey(t testing.TB, kid string) *testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: jwt.SigningMethodRS256, signer: k, jwk: map[string]string{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
	}}
}

func newECKey(t testing.TB, kid string) *testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: jwt.SigningMethodES256, signer: k, jwk: map[string]string{
		"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
		"x": b64(pt[1:33]), "y": b64(pt[33:]),
	}}
}

func newEdKey(t testing.TB, kid string) *testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{kid: kid, method: jwt.SigningMethodEdDSA, signer: priv, jwk: map[string]string{
		"kty": "OKP", "kid": kid, "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": b64(pub),
	}}
}

// sign makes a token like gatehouse's: header alg, kid, typ; claims as given.
func (k *testKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves a JWKS document the test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []*testKey
	status int
	hits   atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		doc := map[string][]map[string]string{"keys": {}}
		for _, k := range s.keys {
			doc["keys"] = append(doc["keys"], k.jwk)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...*testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newVerifier(srv *jwksServer, clk *clock) *Verifier {
	return &Verifier{
		Keys:      NewKeySet(srv.URL, clk.Now),
		Audiences: []string{testAud},
		Issuer:    testIssuer,
		Now:       clk.Now,
	}
}

// claimsAt returns gatehouse-style service-token claims issued at now.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"aud":         []string{testAud},
		"iss":         testIssuer,
		"iat":         now.Unix(),
		"nbf":         now.Unix(),
		"exp":         now.Add(time.Hour).Unix(),
		"type":        "app",
		"sub":         "",
		"common_name": "0123456789abcdef0123456789abcdef.access",
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestVerify(t *testing.T) {
	rsaKey, ecKey, edKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1"), newEdKey(t, "ed-1")
	strayKey := newECKey(t, "stray") // never published
	srv := newJWKSServer(t, rsaKey, ecKey, edKey)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	now := clk.Now()
	base := claimsAt(now)

	hs256 := func() string { // alg confusion: HMAC keyed with the RSA public key's bytes
		der, _ := x509.MarshalPKIXPublicKey(rsaKey.signer.Public())
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, base)
		tok.Header["kid"] = rsaKey.kid
		s, _ := tok.SignedString(der)
		return s
	}()
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, base)
		tok.Header["kid"] = rsaKey.kid
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	ecWithRSAKid := func() string { // signed by the EC key, claims to be the RSA key
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, base)
		tok.Header["kid"] = rsaKey.kid
		s, _ := tok.SignedString(ecKey.signer)
		return s
	}()
	noKid := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, base).SignedString(rsaKey.signer)
		return s
	}()
	forged := func() string { // valid header and claims of a token, signature of another
		a := strings.Split(rsaKey.sign(t, base), ".")
		b := strings.Split(rsaKey.sign(t, with(base, "common_name", "someone-else")), ".")
		return a[0] + "." + b[1] + "." + a[2]
	}()

	cases := []struct {
		name    string
		token   string
		auds    []string // overrides the verifier's audiences when set
		issuer  *string  // overrides the verifier's issuer when set
		wantErr error
		reason  string
	}{
		{name: "valid RS256", token: rsaKey.sign(t, base)},
		{name: "valid ES256", token: ecKey.sign(t, base)},
		{name: "valid EdDSA", token: edKey.sign(t, base)},
		{name: "aud as a string", token: rsaKey.sign(t, with(base, "aud", testAud))},
		{name: "one of several accepted audiences", token: rsaKey.sign(t, base), auds: []string{"other-app", testAud}},
		{name: "issuer not configured", token: rsaKey.sign(t, with(base, "iss", "http://elsewhere")), issuer: new(string)},
		{name: "expired within leeway", token: rsaKey.sign(t, with(base, "exp", now.Add(-20*time.Second).Unix()))},
		{name: "nbf within leeway", token: rsaKey.sign(t, with(base, "nbf", now.Add(20*time.Second).Unix()))},

		{name: "missing header", token: "", wantErr: ErrNoToken, reason: "missing"},
		{name: "wrong audience", token: rsaKey.sign(t, with(base, "aud", []string{"another-app"})), wantErr: jwt.ErrTokenInvalidAudience, reason: "audience"},
		{name: "no audience", token: rsaKey.sign(t, with(base, "aud", nil)), wantErr: jwt.ErrTokenRequiredClaimMissing, reason: "required claim"},
		{name: "wrong issuer", token: rsaKey.sign(t, with(base, "iss", "http://elsewhere")), wantErr: jwt.ErrTokenInvalidIssuer, reason: "issuer"},
		{name: "expired", token: rsaKey.sign(t, with(base, "exp", now.Add(-31*time.Second).Unix())), wantErr: jwt.ErrTokenExpired, reason: "expired"},
		{name: "no exp", token: rsaKey.sign(t, with(base, "exp", nil)), wantErr: jwt.ErrTokenRequiredClaimMissing, reason: "required claim"},
		{name: "not yet valid", token: rsaKey.sign(t, with(base, "nbf", now.Add(31*time.Second).Unix())), wantErr: jwt.ErrTokenNotValidYet, reason: "not valid yet"},
		{name: "alg none", token: none, wantErr: jwt.ErrTokenSignatureInvalid, reason: "algorithm"},
		{name: "HS256 with the public key as secret", token: hs256, wantErr: jwt.ErrTokenSignatureInvalid, reason: "algorithm"},
		{name: "alg of another key type", token: ecWithRSAKid, wantErr: ErrAlgMismatch, reason: "algorithm does not match"},
		{name: "no kid", token: noKid, wantErr: ErrNoKID, reason: "no kid"},
		{name: "forged signature", token: forged, wantErr: jwt.ErrTokenSignatureInvalid, reason: "signature"},
		{name: "unknown kid", token: strayKey.sign(t, base), wantErr: ErrUnknownKID, reason: "unknown signing key"},
		{name: "garbage", token: "not.a.jwt", wantErr: jwt.ErrTokenMalformed, reason: "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(srv, clk)
			if tc.auds != nil {
				v.Audiences = tc.auds
			}
			if tc.issuer != nil {
				v.Issuer = *tc.issuer
			}
			claims, err := v.Verify(context.Background(), tc.token)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims["common_name"] != base["common_name"] {
					t.Errorf("claims = %v", claims)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
			if claims != nil {
				t.Errorf("claims returned with an error: %v", claims)
			}
			if r := Reason(err); !strings.Contains(r, tc.reason) {
				t.Errorf("Reason = %q, want it to mention %q", r, tc.reason)
			}
		})
	}
}

// TestUnknownKIDRefetch covers key rotation: an unknown kid triggers exactly one refetch, further
// unknown kids within MinRefreshInterval trigger none, and a key published later is found once the
// interval has passed.
func TestUnknownKIDRefetch(t *testing.T) {
	oldKey, newKey := newEdKey(t, "old"), newEdKey(t, "new")
	srv := newJWKSServer(t, oldKey)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newVerifier(srv, clk)
	ctx := context.Background()

	if _, err := v.Verify(ctx, oldKey.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("first verification: %d fetches, want 1", got)
	}

	// Within MinRefreshInterval of the first fetch an unknown kid causes no fetch at all.
	tok := newKey.sign(t, claimsAt(clk.Now()))
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("right after a fetch: %v, want ErrUnknownKID", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("right after a fetch: %d fetches, want 1", got)
	}

	// Later, still not published: one refetch, then nothing for MinRefreshInterval.
	clk.Advance(MinRefreshInterval)
	for i := range 5 {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKID) {
			t.Fatalf("attempt %d: %v, want ErrUnknownKID", i, err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("after unknown kids: %d fetches, want 2 (one refetch)", got)
	}

	// Rotation: gatehouse publishes the new key.
	srv.set(http.StatusOK, oldKey, newKey)
	clk.Advance(MinRefreshInterval - time.Second)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("before the interval: %v, want ErrUnknownKID (rate-limited)", err)
	}
	clk.Advance(time.Second)
	if _, err := v.Verify(ctx, newKey.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("after rotation: %d fetches, want 3", got)
	}
	// The old key still verifies (it is still published), without a fetch.
	if _, err := v.Verify(ctx, oldKey.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("known kid: %d fetches, want still 3", got)
	}
}

// TestStaleKeysRefreshed: a key removed from the JWKS stops verifying once the cache is older than
// MaxKeyAge, and a failed refresh keeps the cached keys.
func TestStaleKeysRefreshed(t *testing.T) {
	a, b := newRSAKey(t, "a"), newRSAKey(t, "b")
	srv := newJWKSServer(t, a, b)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newVerifier(srv, clk)
	ctx := context.Background()
	if _, err := v.Verify(ctx, a.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatal(err)
	}

	// The JWKS endpoint fails: cached keys keep working after MaxKeyAge.
	srv.set(http.StatusInternalServerError)
	clk.Advance(MaxKeyAge + time.Second)
	if _, err := v.Verify(ctx, a.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatalf("JWKS down, cached key: %v", err)
	}

	// Key a is withdrawn; the next stale lookup (after the rate limit) refreshes and drops it.
	srv.set(http.StatusOK, b)
	clk.Advance(MinRefreshInterval)
	hits := srv.hits.Load()
	if _, err := v.Verify(ctx, a.sign(t, claimsAt(clk.Now()))); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("withdrawn key: %v, want ErrUnknownKID", err)
	}
	if _, err := v.Verify(ctx, b.sign(t, claimsAt(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := srv.hits.Load() - hits; got != 1 {
		t.Fatalf("%d fetches for the refresh, want 1", got)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	k := newEdKey(t, "k")
	srv := newJWKSServer(t, k)
	srv.set(http.StatusServiceUnavailable)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newVerifier(srv, clk)
	_, err := v.Verify(context.Background(), k.sign(t, claimsAt(clk.Now())))
	if !errors.Is(err, ErrJWKS) {
		t.Fatalf("Verify = %v, want ErrJWKS", err)
	}
	if Reason(err) != "signing keys unavailable" {
		t.Errorf("Reason = %q", Reason(err))
	}
	if err := v.Keys.Refresh(context.Background()); !errors.Is(err, ErrJWKS) {
		t.Errorf("Refresh = %v, want ErrJWKS", err)
	}
}

// TestConcurrentUnknownKID: many requests with unknown kids at once cause one fetch, not one each.
func TestConcurrentUnknownKID(t *testing.T) {
	k, stray := newEdKey(t, "k"), newEdKey(t, "stray")
	srv := newJWKSServer(t, k)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v := newVerifier(srv, clk)
	good, bad := k.sign(t, claimsAt(clk.Now())), stray.sign(t, claimsAt(clk.Now()))
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			tok := good
			if i%2 == 1 {
				tok = bad
			}
			_, err := v.Verify(context.Background(), tok)
			if (err == nil) != (i%2 == 0) {
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d fetches, want 1", got)
	}
}

func TestParseJWKS(t *testing.T) {
	rsaKey, ecKey, edKey := newRSAKey(t, "rsa"), newECKey(t, "ec"), newEdKey(t, "ed")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	noAlg := map[string]string{}
	for k, v := range edKey.jwk {
		noAlg[k] = v
	}
	noAlg["kid"], noAlg["alg"] = "ed-no-alg", ""
	docKeys := []map[string]string{
		rsaKey.jwk, ecKey.jwk, edKey.jwk, noAlg,
		{"kty": "oct", "kid": "hmac", "k": b64([]byte("secret"))},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": rsaKey.jwk["n"], "e": rsaKey.jwk["e"]},
		{"kty": "RSA", "kid": "weak", "n": b64(weak.N.Bytes()), "e": "AQAB"},
		{"kty": "RSA", "kid": "rsa-as-es256", "alg": "ES256", "n": rsaKey.jwk["n"], "e": rsaKey.jwk["e"]},
		{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(append(make([]byte, 31), 1))},
		{"kty": "EC", "kid": "p384", "crv": "P-384", "x": ecKey.jwk["x"], "y": ecKey.jwk["y"]},
		{"kty": "OKP", "kid": "short", "crv": "Ed25519", "x": b64(make([]byte, 16))},
		{"kty": "RSA", "n": rsaKey.jwk["n"], "e": "AQAB"}, // no kid
	}
	data, _ := json.Marshal(map[string]any{"keys": docKeys})
	keys, err := ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rsa": "RS256", "ec": "ES256", "ed": "EdDSA", "ed-no-alg": "EdDSA"}
	if len(keys) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(keys), len(want), keys)
	}
	for kid, alg := range want {
		if keys[kid].alg != alg {
			t.Errorf("kid %s: alg %q, want %q", kid, keys[kid].alg, alg)
		}
	}

	for _, bad := range []string{``, `[]`, `{"keys": 1}`, `{}`, `{"keys": [}`} {
		if _, err := ParseJWKS([]byte(bad)); !errors.Is(err, ErrJWKS) {
			t.Errorf("ParseJWKS(%q) = %v, want ErrJWKS", bad, err)
		}
	}
}

func TestTokenFrom(t *testing.T) {
	cases := []struct {
		values  []string
		want    string
		wantErr error
	}{
		{nil, "", ErrNoToken},
		{[]string{""}, "", ErrNoToken},
		{[]string{"a.b.c"}, "a.b.c", nil},
		{[]string{"a.b.c", "d.e.f"}, "", ErrManyTokens},
	}
	for _, tc := range cases {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("cf-access-jwt-assertion", v)
		}
		got, err := TokenFrom(h)
		if got != tc.want || !errors.Is(err, tc.wantErr) {
			t.Errorf("TokenFrom(%q) = %q, %v; want %q, %v", tc.values, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzParseJWKS: whatever the JWKS endpoint returns, parsing never panics and every key it keeps
// has a kid and one of the accepted algorithms.
func FuzzParseJWKS(f *testing.F) {
	// A valid Ed25519 key.
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	// RSA with an oversized exponent and a broken modulus.
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQABAQAB"}]}`))
	// EC with coordinates of the wrong length.
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AA","y":"AA"}]}`))
	// Not a JWKS at all.
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.key == nil {
				t.Fatalf("kept key %q without kid or key", kid)
			}
			switch k.alg {
			case "RS256", "ES256", "EdDSA":
			default:
				t.Fatalf("kid %q: alg %q", kid, k.alg)
			}
		}
	})
}
