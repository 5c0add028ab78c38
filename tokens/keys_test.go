package tokens

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fixture keys are generated once per test binary: RSA key generation is
// slow, under -race especially.
var (
	fixtureMu   sync.Mutex
	fixtureKeys = map[string]*SigningKey{}
)

// fixtureKey returns the shared key called name ("RS256", "RS256-other",
// "ES256", ...; the part before "-" is the algorithm). Callers must copy a
// key before changing it.
func fixtureKey(tb testing.TB, name string) *SigningKey {
	tb.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if k := fixtureKeys[name]; k != nil {
		return k
	}
	alg := Alg(name)
	if i := bytes.IndexByte([]byte(name), '-'); i >= 0 {
		alg = Alg(name[:i])
	}
	k, err := GenerateSigningKey(alg, t0)
	if err != nil {
		tb.Fatal(err)
	}
	fixtureKeys[name] = k
	return k
}

func copyKey(k *SigningKey) *SigningKey { c := *k; return &c }

func mustKeySet(tb testing.TB, keys ...*SigningKey) *KeySet {
	tb.Helper()
	ks, err := NewKeySet(keys)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

var allAlgs = []Alg{AlgRS256, AlgES256, AlgEdDSA}

func TestGenerateSigningKey(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			k := fixtureKey(t, string(alg))
			der, err := x509.MarshalPKIXPublicKey(k.Public)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(der)
			if k.KID != hex.EncodeToString(sum[:]) || len(k.KID) != 64 {
				t.Errorf("KID %q is not the hex SHA-256 of the SPKI DER", k.KID)
			}
			if k.Alg != alg || !k.CreatedAt.Equal(t0) || !k.RetiredAt.IsZero() || !k.RemoveAfter.IsZero() {
				t.Errorf("key fields: %+v", k)
			}
			switch pub := k.Public.(type) {
			case *rsa.PublicKey:
				if alg != AlgRS256 || pub.N.BitLen() != 2048 || pub.E != 65537 {
					t.Errorf("RSA key: %d bits, e=%d", pub.N.BitLen(), pub.E)
				}
			case *ecdsa.PublicKey:
				if alg != AlgES256 || pub.Curve != elliptic.P256() {
					t.Error("EC key is not P-256")
				}
			case ed25519.PublicKey:
				if alg != AlgEdDSA {
					t.Error("Ed25519 key for", alg)
				}
			default:
				t.Fatalf("public key is %T", pub)
			}
			if !publicEqual(k.Signer.Public(), k.Public) {
				t.Error("Signer and Public differ")
			}
			cert, err := x509.ParseCertificate(k.CertDER)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.CommonName != "gatehouse session signing key" {
				t.Errorf("certificate CN %q", cert.Subject.CommonName)
			}
			if !cert.NotBefore.Equal(t0) || !cert.NotAfter.Equal(t0.AddDate(10, 0, 0)) {
				t.Errorf("certificate valid %v to %v", cert.NotBefore, cert.NotAfter)
			}
			if !publicEqual(cert.PublicKey, k.Public) {
				t.Error("certificate is for another key")
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Errorf("certificate is not self-signed: %v", err)
			}
		})
	}
}

func TestGenerateSigningKeyDefaultAndUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("generates an RSA key")
	}
	k, err := GenerateSigningKey("", t0)
	if err != nil {
		t.Fatal(err)
	}
	if k.Alg != AlgRS256 {
		t.Errorf("default alg = %s, want RS256", k.Alg)
	}
	for _, a := range []Alg{"HS256", "none", "rs256", "PS256"} {
		if _, err := GenerateSigningKey(a, t0); !errors.Is(err, ErrAlgUnknown) {
			t.Errorf("GenerateSigningKey(%q) = %v", a, err)
		}
	}
}

func TestParseAlg(t *testing.T) {
	tests := []struct {
		in   string
		want Alg
		ok   bool
	}{
		{"", AlgRS256, true},
		{"RS256", AlgRS256, true},
		{"rs256", AlgRS256, true},
		{"ES256", AlgES256, true},
		{"eddsa", AlgEdDSA, true},
		{"HS256", "", false},
		{"none", "", false},
		{"ES384", "", false},
	}
	for _, tt := range tests {
		got, err := ParseAlg(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseAlg(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrAlgUnknown) {
			t.Errorf("ParseAlg(%q) error %v is not ErrAlgUnknown", tt.in, err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	master, err := NewMasterKey()
	if err != nil || len(master) != 32 {
		t.Fatalf("NewMasterKey = %d bytes, %v", len(master), err)
	}
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			k := copyKey(fixtureKey(t, string(alg)))
			k.RetiredAt, k.RemoveAfter = t0.Add(time.Hour), t0.Add(2*time.Hour)
			sk, err := Seal(master, k)
			if err != nil {
				t.Fatal(err)
			}
			pkcs8, _ := x509.MarshalPKCS8PrivateKey(k.Signer)
			if bytes.Contains(sk.Sealed, pkcs8) || bytes.Contains(sk.Sealed, pkcs8[len(pkcs8)-32:]) {
				t.Fatal("the sealed record holds the private key in clear")
			}
			// Through the store's JSON encoding.
			b, err := json.Marshal(sk)
			if err != nil {
				t.Fatal(err)
			}
			var rec SealedKey
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			got, err := Open(master, &rec)
			if err != nil {
				t.Fatal(err)
			}
			if got.KID != k.KID || got.Alg != alg || !publicEqual(got.Public, k.Public) || !bytes.Equal(got.CertDER, k.CertDER) ||
				!got.CreatedAt.Equal(k.CreatedAt) || !got.RetiredAt.Equal(k.RetiredAt) || !got.RemoveAfter.Equal(k.RemoveAfter) {
				t.Errorf("Open gave %+v, want %+v", got, k)
			}
			// The opened key signs what the original verifies.
			got.RetiredAt, got.RemoveAfter = time.Time{}, time.Time{}
			tok, err := mustKeySet(t, got).Sign(testClaims(t0))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mustKeySet(t, fixtureKey(t, string(alg))).Verify(tok, testIssuer, t0); err != nil {
				t.Errorf("a JWT signed by the opened key does not verify: %v", err)
			}
			// Sealing twice gives different ciphertexts (random nonce).
			sk2, _ := Seal(master, k)
			if bytes.Equal(sk.Sealed, sk2.Sealed) {
				t.Error("two seals are identical")
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	master, _ := NewMasterKey()
	k := fixtureKey(t, "ES256")
	other := fixtureKey(t, "EdDSA")
	sk, err := Seal(master, k)
	if err != nil {
		t.Fatal(err)
	}
	otherSealed, _ := Seal(master, other)
	wrongMaster, _ := NewMasterKey()

	tests := []struct {
		name   string
		master []byte
		edit   func(s *SealedKey)
		want   error
	}{
		{"wrong master key", wrongMaster, nil, ErrKeyUnseal},
		{"short master key", master[:16], nil, ErrMasterKeySize},
		{"no master key", nil, nil, ErrMasterKeySize},
		{"flipped ciphertext bit", master, func(s *SealedKey) { s.Sealed[40] ^= 1 }, ErrKeyUnseal},
		{"flipped nonce bit", master, func(s *SealedKey) { s.Sealed[3] ^= 1 }, ErrKeyUnseal},
		{"truncated", master, func(s *SealedKey) { s.Sealed = s.Sealed[:20] }, ErrKeyUnseal},
		{"empty", master, func(s *SealedKey) { s.Sealed = nil }, ErrKeyUnseal},
		{"unknown version", master, func(s *SealedKey) { s.Sealed[0] = 2 }, ErrKeyUnseal},
		{"moved under another kid", master, func(s *SealedKey) { s.KID = other.KID }, ErrKeyUnseal},
		{"another key's ciphertext", master, func(s *SealedKey) { s.Sealed = otherSealed.Sealed }, ErrKeyUnseal},
		{"wrong alg", master, func(s *SealedKey) { s.Alg = AlgEdDSA }, ErrKeyInvalid},
		{"unknown alg", master, func(s *SealedKey) { s.Alg = "HS256" }, ErrKeyInvalid},
		{"another key's certificate", master, func(s *SealedKey) { s.CertDER = other.CertDER }, ErrKeyInvalid},
		{"no certificate", master, func(s *SealedKey) { s.CertDER = nil }, ErrKeyInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := *sk
			s.Sealed = bytes.Clone(sk.Sealed)
			if tt.edit != nil {
				tt.edit(&s)
			}
			got, err := Open(tt.master, &s)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Open = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	if _, err := Seal(master[:31], k); !errors.Is(err, ErrMasterKeySize) {
		t.Errorf("Seal with a 31-byte master key = %v", err)
	}
	pub := copyKey(k)
	pub.Signer = nil
	if _, err := Seal(master, pub); !errors.Is(err, ErrKeyPublicOnly) {
		t.Errorf("Seal(public-only key) = %v", err)
	}
}

func TestNewKeySetActive(t *testing.T) {
	a := copyKey(fixtureKey(t, "ES256"))
	a.CreatedAt, a.RetiredAt, a.RemoveAfter = t0, t0.Add(time.Hour), t0.Add(800*time.Hour)
	b := copyKey(fixtureKey(t, "EdDSA"))
	b.CreatedAt = t0.Add(time.Hour)
	c := copyKey(fixtureKey(t, "ES256-other"))
	c.CreatedAt, c.Signer = t0.Add(2*time.Hour), nil // newest, but public only

	in := []*SigningKey{a, c, b}
	ks := mustKeySet(t, in...)
	if got := ks.ActiveAt(t0.Add(2 * time.Hour)); got != b {
		t.Errorf("ActiveAt = %v, want the newest unretired key with a private key", got)
	}
	keys := ks.Keys()
	if len(keys) != 3 || keys[0] != c || keys[1] != b || keys[2] != a {
		t.Error("Keys is not newest first")
	}
	keys[0] = nil
	if ks.Keys()[0] != c || in[1] != c {
		t.Error("Keys or NewKeySet shares its slice")
	}
	if ks.Key(a.KID) != a || ks.Key("nope") != nil {
		t.Error("Key(kid) lookup")
	}
	var doc struct{ Keys []struct{ KID string } }
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.KID)
	}
	if want := []string{b.KID, c.KID, a.KID}; !slices.Equal(kids, want) {
		t.Errorf("JWKS order %v, want active first then newest first", kids)
	}

	tok, err := ks.Sign(testClaims(t0))
	if err != nil {
		t.Fatal(err)
	}
	if kid := jwtHeader(t, tok)["kid"]; kid != b.KID {
		t.Errorf("signed with kid %v, want the active key", kid)
	}

	// All retired: no active key; verifying still works.
	b2 := copyKey(b)
	b2.RetiredAt = t0.Add(3 * time.Hour)
	none := mustKeySet(t, a, b2)
	if none.ActiveAt(t0.Add(3*time.Hour)) != nil {
		t.Error("a set of retired keys has an active key")
	}
	if _, err := none.Sign(testClaims(t0.Add(3 * time.Hour))); !errors.Is(err, ErrNoActiveKey) {
		t.Errorf("Sign without an active key = %v", err)
	}
	if _, err := none.Verify(tok, testIssuer, t0); err != nil {
		t.Errorf("a retired key no longer verifies: %v", err)
	}

	empty := mustKeySet(t)
	if string(empty.JWKS()) != `{"keys":[]}` || empty.ActiveAt(t0) != nil {
		t.Errorf("empty set JWKS = %s", empty.JWKS())
	}
	if string(empty.CloudflareCerts()) != `{"keys":[],"public_certs":[]}` {
		t.Errorf("empty set certs = %s", empty.CloudflareCerts())
	}
	if _, err := empty.Verify(tok, testIssuer, t0); err == nil {
		t.Error("an empty set verified a JWT")
	}
}

func TestNewKeySetInvalid(t *testing.T) {
	es := fixtureKey(t, "ES256")
	ed := fixtureKey(t, "EdDSA")
	edit := func(f func(k *SigningKey)) *SigningKey { k := copyKey(es); f(k); return k }
	tests := []struct {
		name string
		keys []*SigningKey
	}{
		{"nil key", []*SigningKey{nil}},
		{"duplicate kid", []*SigningKey{es, copyKey(es)}},
		{"kid not of the key", []*SigningKey{edit(func(k *SigningKey) { k.KID = ed.KID })}},
		{"empty kid", []*SigningKey{edit(func(k *SigningKey) { k.KID = "" })}},
		{"uppercase kid", []*SigningKey{edit(func(k *SigningKey) { k.KID = string(bytes.ToUpper([]byte(k.KID))) })}},
		{"alg of another key type", []*SigningKey{edit(func(k *SigningKey) { k.Alg = AlgRS256 })}},
		{"unknown alg", []*SigningKey{edit(func(k *SigningKey) { k.Alg = "HS256" })}},
		{"no public key", []*SigningKey{edit(func(k *SigningKey) { k.Public = nil })}},
		{"private key of another key", []*SigningKey{edit(func(k *SigningKey) { k.Signer = fixtureKey(t, "ES256-other").Signer })}},
		{"certificate of another key", []*SigningKey{edit(func(k *SigningKey) { k.CertDER = ed.CertDER })}},
		{"no certificate", []*SigningKey{edit(func(k *SigningKey) { k.CertDER = nil })}},
	}
	for _, tt := range tests {
		if _, err := NewKeySet(tt.keys); !errors.Is(err, ErrKeyInvalid) {
			t.Errorf("%s: NewKeySet = %v, want ErrKeyInvalid", tt.name, err)
		}
	}
}

// testJWK is a JWK as a relying party decodes it.
type testJWK struct {
	KTY string `json:"kty"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	CRV string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("JWK member is not unpadded base64url: %v", err)
	}
	return b
}

// publicFromJWK rebuilds a public key from a JWK alone (RFC 7518 §6,
// RFC 8037 §2), as a relying party would.
func publicFromJWK(t *testing.T, j testJWK) crypto.PublicKey {
	t.Helper()
	if j.Use != "sig" || j.KID == "" {
		t.Errorf("JWK use %q kid %q", j.Use, j.KID)
	}
	switch j.KTY {
	case "RSA":
		if j.Alg != "RS256" || j.X != "" || j.CRV != "" {
			t.Errorf("RSA JWK: %+v", j)
		}
		n := b64(t, j.N)
		e := b64(t, j.E)
		if n[0] == 0 || e[0] == 0 {
			t.Error("RSA JWK integers have leading zeros")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	case "EC":
		x, y := b64(t, j.X), b64(t, j.Y)
		if j.Alg != "ES256" || j.CRV != "P-256" || len(x) != 32 || len(y) != 32 {
			t.Fatalf("EC JWK: alg %s crv %s, x %d bytes, y %d bytes", j.Alg, j.CRV, len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "OKP":
		x := b64(t, j.X)
		if j.Alg != "EdDSA" || j.CRV != "Ed25519" || len(x) != ed25519.PublicKeySize || j.Y != "" {
			t.Fatalf("OKP JWK: %+v", j)
		}
		return ed25519.PublicKey(x)
	}
	t.Fatalf("JWK kty %q", j.KTY)
	return nil
}

// TestJWKSVerifiesJWT gives a relying party nothing but the JWKS bytes: it
// rebuilds each public key and checks a signed JWT with the jwt library.
func TestJWKSVerifiesJWT(t *testing.T) {
	var keys []*SigningKey
	for i, alg := range allAlgs {
		k := copyKey(fixtureKey(t, string(alg)))
		k.CreatedAt = t0.Add(time.Duration(i) * time.Hour)
		keys = append(keys, k)
	}
	ks := mustKeySet(t, keys...)
	var doc struct {
		Keys []testJWK `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 3 {
		t.Fatalf("JWKS has %d keys", len(doc.Keys))
	}
	for _, j := range doc.Keys {
		pub := publicFromJWK(t, j)
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(der); j.KID != hex.EncodeToString(sum[:]) {
			t.Errorf("JWK kid %s is not the SHA-256 of its key", j.KID)
		}
		// Sign with this key alone, verify with only the rebuilt key.
		signer := copyKey(ks.Key(j.KID))
		signer.CreatedAt, signer.RetiredAt = t0, time.Time{}
		tok, err := mustKeySet(t, signer).Sign(testClaims(t0))
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
			if tk.Header["kid"] != j.KID {
				return nil, errors.New("kid mismatch")
			}
			return pub, nil
		}, jwt.WithValidMethods([]string{j.Alg}), jwt.WithTimeFunc(func() time.Time { return t0 }), jwt.WithIssuer(testIssuer))
		if err != nil || !parsed.Valid {
			t.Errorf("%s: a JWT does not verify with the key rebuilt from the JWKS: %v", j.Alg, err)
		}
	}
}

// TestJWKECPadding checks that EC coordinates with leading zero bytes are
// padded to 32 bytes (RFC 7518 §6.2.1.2), which a naive big.Int encoding
// gets wrong for about one key in 128.
func TestJWKECPadding(t *testing.T) {
	var priv *ecdsa.PrivateKey
	for range 20000 {
		p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := p.PublicKey.Bytes()
		if pt[1] == 0 || pt[33] == 0 {
			priv = p
			break
		}
	}
	if priv == nil {
		t.Fatal("no P-256 key with a short coordinate found")
	}
	kid, err := KeyID(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfSignedCert(priv, t0)
	if err != nil {
		t.Fatal(err)
	}
	k := &SigningKey{KID: kid, Alg: AlgES256, Signer: priv, Public: priv.Public(), CertDER: cert, CreatedAt: t0}
	var doc struct {
		Keys []testJWK `json:"keys"`
	}
	if err := json.Unmarshal(mustKeySet(t, k).JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if !publicEqual(publicFromJWK(t, doc.Keys[0]), k.Public) {
		t.Error("the JWK is not the key")
	}
}

func TestCloudflareCerts(t *testing.T) {
	old := copyKey(fixtureKey(t, "ES256"))
	old.RetiredAt, old.RemoveAfter = t0.Add(time.Hour), t0.Add(800*time.Hour)
	active := copyKey(fixtureKey(t, "RS256"))
	active.CreatedAt = t0.Add(time.Hour)
	ks := mustKeySet(t, old, active)

	var doc struct {
		Keys       []testJWK `json:"keys"`
		PublicCert struct {
			KID  string `json:"kid"`
			Cert string `json:"cert"`
		} `json:"public_cert"`
		PublicCerts []struct {
			KID  string `json:"kid"`
			Cert string `json:"cert"`
		} `json:"public_certs"`
	}
	if err := json.Unmarshal(ks.CloudflareCerts(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 || doc.Keys[0].KID != active.KID || doc.Keys[0].KTY != "RSA" {
		t.Errorf("keys: %+v", doc.Keys)
	}
	for _, j := range doc.Keys {
		publicFromJWK(t, j)
	}
	parsePEM := func(s string) *x509.Certificate {
		t.Helper()
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("cert is not one PEM certificate: %q", s)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if doc.PublicCert.KID != active.KID || !publicEqual(parsePEM(doc.PublicCert.Cert).PublicKey, active.Public) {
		t.Error("public_cert is not the active key's certificate")
	}
	if len(doc.PublicCerts) != 2 {
		t.Fatalf("public_certs has %d entries", len(doc.PublicCerts))
	}
	for _, pc := range doc.PublicCerts {
		k := ks.Key(pc.KID)
		if k == nil || !publicEqual(parsePEM(pc.Cert).PublicKey, k.Public) {
			t.Errorf("public_certs entry %s is not its key's certificate", pc.KID)
		}
	}
	// The JWKS document is the "keys" part of the certs document.
	var jwks struct {
		Keys []testJWK `json:"keys"`
	}
	json.Unmarshal(ks.JWKS(), &jwks)
	if !slices.Equal(jwks.Keys, doc.Keys) {
		t.Error("JWKS keys differ from CloudflareCerts keys")
	}
}

func TestRotateKeys(t *testing.T) {
	k0, err := GenerateSigningKey(AlgES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	oldJWT, err := mustKeySet(t, k0).Sign(testClaims(t0))
	if err != nil {
		t.Fatal(err)
	}

	t1 := t0.Add(DefaultKeyRotation)
	next, added, err := RotateKeys([]*SigningKey{k0}, AlgEdDSA, MaxSessionDuration, 0, t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 2 || next[0] != added || added.Alg != AlgEdDSA || !added.CreatedAt.Equal(t1) || !added.RetiredAt.IsZero() {
		t.Fatalf("RotateKeys: %d keys, added %+v", len(next), added)
	}
	r0 := next[1]
	if r0 == k0 || r0.KID != k0.KID || !r0.RetiredAt.Equal(t1) || !r0.RemoveAfter.Equal(t1.Add(MaxSessionDuration)) {
		t.Errorf("retired key: %+v", r0)
	}
	if !k0.RetiredAt.IsZero() || !k0.RemoveAfter.IsZero() {
		t.Error("RotateKeys modified its input")
	}
	ks1 := mustKeySet(t, next...)
	if ks1.ActiveAt(t1) != added {
		t.Error("the new key is not active")
	}
	// A JWT signed before the rotation still verifies.
	if _, err := ks1.Verify(oldJWT, testIssuer, t0.Add(time.Hour)); err != nil {
		t.Errorf("old JWT after rotation: %v", err)
	}

	// A second rotation keeps the first retired key's RemoveAfter.
	t2 := t1.Add(time.Hour)
	next2, added2, err := RotateKeys(next, AlgES256, MaxSessionDuration, 0, t2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next2) != 3 || next2[0] != added2 || next2[2] != r0 || !next2[1].RetiredAt.Equal(t2) {
		t.Fatalf("second rotation: %d keys", len(next2))
	}

	// Once RemoveAfter comes, a set still holding the key refuses its JWTs,
	// and the next rotation drops it.
	t3 := r0.RemoveAfter
	if _, err := mustKeySet(t, next2...).Verify(oldJWT, testIssuer, t3); !errors.Is(err, ErrJWTUnknownKID) {
		t.Errorf("JWT of a removable key = %v, want ErrJWTUnknownKID", err)
	}
	next3, _, err := RotateKeys(next2, AlgES256, MaxSessionDuration, 0, t3)
	if err != nil {
		t.Fatal(err)
	}
	if len(next3) != 3 || slices.ContainsFunc(next3, func(k *SigningKey) bool { return k.KID == k0.KID }) {
		t.Errorf("third rotation kept the removable key (%d keys)", len(next3))
	}
	if _, err := mustKeySet(t, next3...).Verify(oldJWT, testIssuer, t0.Add(time.Hour)); !errors.Is(err, ErrJWTUnknownKID) {
		t.Errorf("JWT of a dropped key = %v", err)
	}

	if _, _, err := RotateKeys(next, AlgES256, 0, 0, t1); err == nil {
		t.Error("RotateKeys with no session bound: no error")
	}
	if _, _, err := RotateKeys(next, "HS256", MaxSessionDuration, 0, t1); !errors.Is(err, ErrAlgUnknown) {
		t.Errorf("RotateKeys(HS256) = %v", err)
	}
}

// TestRotateKeysPrePublish: a rotated-in key is published at once but signs
// only from the whole second after now+prePublish, when the key signing
// until then retires; exactly one key signs at every moment; a rotation
// during pre-publication retires the pending key before it ever signs.
func TestRotateKeysPrePublish(t *testing.T) {
	k0, err := GenerateSigningKey(AlgES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(DefaultKeyRotation).Add(250 * time.Millisecond)
	next, k1, err := RotateKeys([]*SigningKey{k0}, AlgES256, MaxSessionDuration, KeyPrePublish, t1)
	if err != nil {
		t.Fatal(err)
	}
	handover := t1.Add(KeyPrePublish).Truncate(time.Second).Add(time.Second)
	if !k1.ActiveFrom.Equal(handover) || !k1.RetiredAt.IsZero() {
		t.Fatalf("new key: active from %v (want %v), retired %v", k1.ActiveFrom, handover, k1.RetiredAt)
	}
	if r0 := next[1]; !r0.RetiredAt.Equal(handover) || !r0.RemoveAfter.Equal(handover.Add(MaxSessionDuration)) {
		t.Fatalf("old key: retired %v, remove after %v; want %v and %v later", r0.RetiredAt, r0.RemoveAfter, handover, MaxSessionDuration)
	}
	ks := mustKeySet(t, next...)
	var jwks struct{ Keys []struct{ KID string } }
	if err := json.Unmarshal(ks.JWKS(), &jwks); err != nil || len(jwks.Keys) != 2 || jwks.Keys[0].KID != k1.KID {
		t.Fatalf("JWKS during pre-publication: %s (%v), want the new key first and the old one", ks.JWKS(), err)
	}
	for _, tc := range []struct {
		at   time.Time
		want *SigningKey
	}{
		{t1, next[1]},
		{handover.Add(-time.Nanosecond), next[1]},
		{handover, k1},
		{handover.Add(DefaultKeyRotation), k1},
	} {
		if got := ks.ActiveAt(tc.at); got == nil || got.KID != tc.want.KID {
			t.Errorf("ActiveAt(%v) = %v, want %s", tc.at.Sub(t1), got, tc.want.KID)
		}
		jwt, err := ks.Sign(testClaims(tc.at.Truncate(time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(t, jwt); kid != tc.want.KID {
			t.Errorf("JWT issued at %v signed by %s, want %s", tc.at.Sub(t1), kid, tc.want.KID)
		}
	}
	if n := signersAt(next, t1); n != 1 {
		t.Errorf("%d keys sign at the rotation", n)
	}

	// Rotating again during pre-publication: k1, which has not signed, is
	// dropped; k0 signs until the new hand-over.
	t2 := t1.Add(time.Minute)
	next2, k2, err := RotateKeys(next, AlgES256, MaxSessionDuration, KeyPrePublish, t2)
	if err != nil {
		t.Fatal(err)
	}
	handover2 := t2.Add(KeyPrePublish).Truncate(time.Second).Add(time.Second)
	for _, k := range next2 {
		if k.KID == k1.KID {
			t.Errorf("the superseded pending key is still there (retired %v, active from %v)", k.RetiredAt, k.ActiveFrom)
		}
	}
	ks2 := mustKeySet(t, next2...)
	for _, at := range []time.Time{t2, handover, handover2.Add(-time.Nanosecond), handover2, handover2.Add(time.Hour)} {
		if n := signersAt(next2, at); n != 1 {
			t.Errorf("%d keys sign at %v", n, at.Sub(t2))
		}
		want := k2.KID
		if at.Before(handover2) {
			want = k0.KID
		}
		if got := ks2.ActiveAt(at); got == nil || got.KID != want {
			t.Errorf("ActiveAt(%v) = %v, want %s", at.Sub(t2), got, want)
		}
	}
}

func signersAt(keys []*SigningKey, at time.Time) int {
	n := 0
	for _, k := range keys {
		if k.SignsAt(at) {
			n++
		}
	}
	return n
}

// kidOf reads the kid from a JWT's header, unverified.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ KID string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}
