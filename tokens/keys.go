package tokens

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// DefaultKeyRotation is how often the session signing key is replaced,
	// Cloudflare's default of six weeks.
	DefaultKeyRotation = 6 * 7 * 24 * time.Hour
	// MaxSessionDuration is the longest a session JWT may live (Cloudflare's
	// maximum, one month); application and policy sessions are capped to it.
	// A retired signing key is kept this long so that every JWT it signed
	// can still be verified until it expires.
	MaxSessionDuration = 730 * time.Hour

	// MasterKeySize is the size of the key that seals signing keys.
	MasterKeySize = 32

	// rsaBits is the size of generated RS256 keys.
	rsaBits = 2048
	// certValidityYears is how long a signing key's self-signed certificate
	// is valid. Nothing checks it (clients match on kid), but Cloudflare
	// clients parse public_cert, and an expired certificate would alarm.
	certValidityYears = 10
	// certCommonName is the subject of every signing key's certificate.
	certCommonName = "gatehouse session signing key"
)

// Alg is a session JWT signing algorithm, named as in a JWT's "alg" header.
type Alg string

// Supported algorithms.
const (
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256 and a 2048-bit key, what
	// Cloudflare Access uses; the default, for clients that expect it.
	AlgRS256 Alg = "RS256"
	// AlgES256 is ECDSA on P-256 with SHA-256: much faster to sign.
	AlgES256 Alg = "ES256"
	// AlgEdDSA is Ed25519 (RFC 8037).
	AlgEdDSA Alg = "EdDSA"
	// DefaultAlg is the algorithm used when none is given.
	DefaultAlg = AlgRS256

	// RS256, ES256 and EdDSA are short names for the same algorithms.
	RS256 = AlgRS256
	ES256 = AlgES256
	EdDSA = AlgEdDSA
)

// Errors about signing keys.
var (
	// ErrAlgUnknown means an algorithm is not one of RS256, ES256, EdDSA.
	ErrAlgUnknown = errors.New("signing algorithm must be RS256, ES256 or EdDSA")
	// ErrMasterKeySize means a master key is not MasterKeySize bytes.
	ErrMasterKeySize = errors.New("master key must be 32 bytes")
	// ErrKeyUnseal means a sealed signing key could not be decrypted: the
	// master key is not the one it was sealed with, or the record was
	// altered.
	ErrKeyUnseal = errors.New("cannot unseal signing key: wrong master key or altered record")
	// ErrKeyInvalid means a signing key (or its record) is inconsistent: its
	// kid, algorithm, public key, private key or certificate disagree.
	ErrKeyInvalid = errors.New("signing key is invalid")
	// ErrKeyPublicOnly means a private-key operation was asked of a key that
	// has only its public half.
	ErrKeyPublicOnly = errors.New("signing key has no private key")
	// ErrNoActiveKey means a KeySet has no key that may sign.
	ErrNoActiveKey = errors.New("no active signing key")
)

// ParseAlg parses an algorithm name as given on a command line or in an API
// request, ignoring case; "" is DefaultAlg.
func ParseAlg(s string) (Alg, error) {
	if s == "" {
		return DefaultAlg, nil
	}
	for _, a := range [...]Alg{AlgRS256, AlgES256, AlgEdDSA} {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: got %q", ErrAlgUnknown, s)
}

// Valid reports whether a is a supported algorithm.
func (a Alg) Valid() bool { return a == AlgRS256 || a == AlgES256 || a == AlgEdDSA }

// method returns the jwt signing method for a, nil if a is not valid.
func (a Alg) method() jwt.SigningMethod {
	switch a {
	case AlgRS256:
		return jwt.SigningMethodRS256
	case AlgES256:
		return jwt.SigningMethodES256
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA
	}
	return nil
}

// matches reports whether pub is the kind of public key a uses.
func (a Alg) matches(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return a == AlgRS256 && k.N != nil && k.N.BitLen() >= rsaBits
	case *ecdsa.PublicKey:
		return a == AlgES256 && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return a == AlgEdDSA && len(k) == ed25519.PublicKeySize
	}
	return false
}

// SigningKey is a session JWT signing key.
type SigningKey struct {
	// KID is the key id: 64 lowercase hex, the SHA-256 of the public key's
	// SubjectPublicKeyInfo DER (a stable function of the key, like the kid
	// Cloudflare publishes).
	KID string
	Alg Alg
	// Signer is the private key; nil for a public-only key.
	Signer crypto.Signer
	Public crypto.PublicKey
	// CertDER is a self-signed X.509 certificate for the key, published as
	// Cloudflare's public_cert(s).
	CertDER []byte
	// CreatedAt is when the key was generated. ActiveFrom is when it may
	// start signing (zero: at once); a rotated-in key is published in the
	// JWKS from CreatedAt but signs only from ActiveFrom, so that verifiers
	// holding a cached JWKS have fetched it before they meet its kid.
	// RetiredAt is when it stops signing (zero: never; it may lie in the
	// future, when a rotation has scheduled the hand-over). RemoveAfter is
	// when it may be forgotten because every JWT it signed has expired
	// (zero: keep it).
	CreatedAt, ActiveFrom, RetiredAt, RemoveAfter time.Time
}

// SignsAt reports whether the key may sign at now: it has a private key,
// its ActiveFrom has come and its RetiredAt has not.
func (k *SigningKey) SignsAt(now time.Time) bool {
	return k.Signer != nil && signsAt(k.ActiveFrom, k.RetiredAt, now)
}

// SignsAt is SigningKey.SignsAt for the stored form.
func (s *SealedKey) SignsAt(now time.Time) bool { return signsAt(s.ActiveFrom, s.RetiredAt, now) }

// Pending reports whether the key is published but not yet signing.
func (s *SealedKey) Pending(now time.Time) bool {
	return now.Before(s.ActiveFrom) && (s.RetiredAt.IsZero() || s.ActiveFrom.Before(s.RetiredAt))
}

func signsAt(activeFrom, retiredAt, now time.Time) bool {
	return !now.Before(activeFrom) && (retiredAt.IsZero() || now.Before(retiredAt))
}

// KeyID returns the kid of a public key: the lowercase hex SHA-256 of its
// SubjectPublicKeyInfo DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKeyInvalid, err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// GenerateSigningKey generates a key for alg ("" = DefaultAlg) with its kid
// and a self-signed certificate valid from now for ten years.
func GenerateSigningKey(alg Alg, now time.Time) (*SigningKey, error) {
	if alg == "" {
		alg = DefaultAlg
	}
	var signer crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		signer, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case AlgES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: got %q", ErrAlgUnknown, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	pub := signer.Public()
	kid, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	cert, err := selfSignedCert(signer, now)
	if err != nil {
		return nil, err
	}
	return &SigningKey{KID: kid, Alg: alg, Signer: signer, Public: pub, CertDER: cert, CreatedAt: now}, nil
}

func selfSignedCert(signer crypto.Signer, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // positive, non-zero
		Subject:               pkix.Name{CommonName: certCommonName},
		NotBefore:             now,
		NotAfter:              now.AddDate(certValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("creating signing key certificate: %w", err)
	}
	return der, nil
}

// check verifies that k is self-consistent: known alg matching the public key,
// kid derived from it, private key (if any) and certificate for the same key.
func (k *SigningKey) check() error {
	if !k.Alg.Valid() {
		return fmt.Errorf("%w: kid %q: %w: got %q", ErrKeyInvalid, k.KID, ErrAlgUnknown, k.Alg)
	}
	if !k.Alg.matches(k.Public) {
		return fmt.Errorf("%w: kid %q: public key is %T, not an %s key", ErrKeyInvalid, k.KID, k.Public, k.Alg)
	}
	kid, err := KeyID(k.Public)
	if err != nil {
		return err
	}
	if kid != k.KID {
		return fmt.Errorf("%w: kid %q is not the SHA-256 of its public key", ErrKeyInvalid, k.KID)
	}
	if k.Signer != nil && !publicEqual(k.Signer.Public(), k.Public) {
		return fmt.Errorf("%w: kid %q: private key does not match the public key", ErrKeyInvalid, k.KID)
	}
	cert, err := x509.ParseCertificate(k.CertDER)
	if err != nil {
		return fmt.Errorf("%w: kid %q: certificate: %v", ErrKeyInvalid, k.KID, err)
	}
	if !publicEqual(cert.PublicKey, k.Public) {
		return fmt.Errorf("%w: kid %q: certificate is for another key", ErrKeyInvalid, k.KID)
	}
	return nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// SealedKey is the store's record of a signing key: the PKCS#8 private key
// sealed with AES-256-GCM under the master key, with the kid as additional
// data, so the store never holds a private key in clear and a sealed key
// cannot be passed off under another kid.
//
// Sealed is: version byte 0x01, 12-byte random nonce, then the GCM
// ciphertext and tag.
type SealedKey struct {
	KID         string    `json:"kid"`
	Alg         Alg       `json:"alg"`
	Sealed      []byte    `json:"sealed"`
	CertDER     []byte    `json:"cert_der"`
	CreatedAt   time.Time `json:"created_at"`
	ActiveFrom  time.Time `json:"active_from,omitzero"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
	RemoveAfter time.Time `json:"remove_after,omitzero"`
}

const sealVersion = 1

// NewMasterKey returns a new random master key for Seal and Open.
func NewMasterKey() ([]byte, error) {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return k, nil
}

func newGCM(master []byte) (cipher.AEAD, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("%w: got %d bytes", ErrMasterKeySize, len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts k's private key under master for storage.
func Seal(master []byte, k *SigningKey) (*SealedKey, error) {
	if k.Signer == nil {
		return nil, fmt.Errorf("%w: kid %q", ErrKeyPublicOnly, k.KID)
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	aead, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	plain, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %v", ErrKeyInvalid, k.KID, err)
	}
	defer clear(plain)
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	out = aead.Seal(out, out[1:], plain, []byte(k.KID))
	return &SealedKey{
		KID:         k.KID,
		Alg:         k.Alg,
		Sealed:      out,
		CertDER:     slices.Clone(k.CertDER),
		CreatedAt:   k.CreatedAt,
		ActiveFrom:  k.ActiveFrom,
		RetiredAt:   k.RetiredAt,
		RemoveAfter: k.RemoveAfter,
	}, nil
}

// Open decrypts a sealed key with master and checks that what it holds is
// the key its kid, algorithm and certificate say. A wrong master key (or an
// altered record) gives ErrKeyUnseal.
func Open(master []byte, s *SealedKey) (*SigningKey, error) {
	aead, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(s.Sealed) < 1+ns+aead.Overhead() || s.Sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: kid %q: sealed data is not in a known format", ErrKeyUnseal, s.KID)
	}
	plain, err := aead.Open(nil, s.Sealed[1:1+ns], s.Sealed[1+ns:], []byte(s.KID))
	if err != nil {
		return nil, fmt.Errorf("%w (kid %q)", ErrKeyUnseal, s.KID)
	}
	defer clear(plain)
	priv, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: sealed private key: %v", ErrKeyInvalid, s.KID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: kid %q: sealed private key is %T", ErrKeyInvalid, s.KID, priv)
	}
	k := &SigningKey{
		KID:         s.KID,
		Alg:         s.Alg,
		Signer:      signer,
		Public:      signer.Public(),
		CertDER:     slices.Clone(s.CertDER),
		CreatedAt:   s.CreatedAt,
		ActiveFrom:  s.ActiveFrom,
		RetiredAt:   s.RetiredAt,
		RemoveAfter: s.RemoveAfter,
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// KeyPrePublish is how long a rotated-in signing key is published before it
// signs: twice the JWKS documents' Cache-Control max-age (5 minutes) and
// Envoy jwt_authn's cache_duration in envoy/envoy-jwt-authn.yaml, so a
// verifier that caches the JWKS has fetched the new key before it meets a
// JWT signed with it.
const KeyPrePublish = 10 * time.Minute

// RotateKeys returns the keys to store after a rotation: a new key for alg
// first, published now and signing from the whole second after
// now+prePublish (at once if prePublish is not positive), then the current
// keys, where the key signing now retires at that moment with RemoveAfter
// maxSession later, a key still waiting to sign from an earlier rotation is
// dropped (it has signed nothing, and the new rotation supersedes it), and
// keys whose RemoveAfter has come are dropped. Exactly one key signs at any
// time. current is not modified (the keys in it may belong to a live
// KeySet): changed keys are copies.
func RotateKeys(current []*SigningKey, alg Alg, maxSession, prePublish time.Duration, now time.Time) (next []*SigningKey, added *SigningKey, err error) {
	if maxSession <= 0 {
		return nil, nil, fmt.Errorf("%w: maximum session duration must be positive, got %s", ErrKeyInvalid, maxSession)
	}
	added, err = GenerateSigningKey(alg, now)
	if err != nil {
		return nil, nil, err
	}
	handover := now
	if prePublish > 0 {
		// A whole second, like JWT times: the key active at a JWT's iat
		// is then the key active when it was minted.
		handover = now.Add(prePublish).Truncate(time.Second).Add(time.Second)
		added.ActiveFrom = handover
	}
	next = append(make([]*SigningKey, 0, len(current)+1), added)
	for _, k := range current {
		switch {
		case !k.RemoveAfter.IsZero() && !now.Before(k.RemoveAfter):
			continue // every JWT it signed has expired
		case now.Before(k.ActiveFrom):
			continue // pending: superseded before it signed anything
		case k.RetiredAt.IsZero() || k.RetiredAt.After(now):
			c := *k
			c.RetiredAt = handover
			c.RemoveAfter = handover.Add(maxSession)
			k = &c
		}
		next = append(next, k)
	}
	return next, added, nil
}

// KeySet is an immutable set of signing keys: the active one signs session
// JWTs, all of them verify. Its JWKS documents are computed once, at
// construction, so serving them costs nothing.
type KeySet struct {
	keys    []*SigningKey // newest first
	signers []*SigningKey // the keys with a private key, newest first
	byKID   map[string]*keyEntry

	jwks, certs []byte
}

// keyEntry is what Sign and Verify need about one key, computed once.
type keyEntry struct {
	key    *SigningKey
	method jwt.SigningMethod
	// header is the base64url JSON header of JWTs this key signs.
	header string
	// verifyKey is the public key in the form the jwt method expects.
	verifyKey any
	// parser admits only this key's algorithm (jwt.WithValidMethods), so a
	// kid pins its algorithm; it is reused by every Verify.
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
}

// NewKeySet builds a KeySet. Every key must be self-consistent (kid = hash
// of its public key, algorithm matching it, certificate for it) and kids
// unique. Every key verifies; which one signs depends on the time
// (ActiveAt). A set may have no key that can sign (it then only verifies).
func NewKeySet(keys []*SigningKey) (*KeySet, error) {
	ks := &KeySet{
		keys:  slices.Clone(keys),
		byKID: make(map[string]*keyEntry, len(keys)),
	}
	for i, k := range ks.keys {
		if k == nil {
			return nil, fmt.Errorf("%w: key %d is nil", ErrKeyInvalid, i)
		}
		if err := k.check(); err != nil {
			return nil, err
		}
		if _, dup := ks.byKID[k.KID]; dup {
			return nil, fmt.Errorf("%w: kid %q appears twice", ErrKeyInvalid, k.KID)
		}
		hdr, err := json.Marshal(struct {
			Alg string `json:"alg"`
			KID string `json:"kid"`
			Typ string `json:"typ"`
		}{string(k.Alg), k.KID, "JWT"})
		if err != nil {
			return nil, err
		}
		e := &keyEntry{
			key:       k,
			method:    k.Alg.method(),
			header:    base64.RawURLEncoding.EncodeToString(hdr),
			verifyKey: k.Public,
			// Claims are validated after the signature, against the
			// caller's clock (see Verify).
			parser: jwt.NewParser(
				jwt.WithValidMethods([]string{string(k.Alg)}),
				jwt.WithStrictDecoding(),
				jwt.WithoutClaimsValidation(),
			),
		}
		e.keyFunc = e.lookup
		ks.byKID[k.KID] = e
	}
	slices.SortStableFunc(ks.keys, func(a, b *SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.KID, b.KID)
	})
	for _, k := range ks.keys {
		if k.Signer != nil {
			ks.signers = append(ks.signers, k)
		}
	}

	var err error
	if ks.jwks, ks.certs, err = ks.documents(); err != nil {
		return nil, err
	}
	return ks, nil
}

// ActiveAt returns the key that signs at now: the newest one, by
// CreatedAt, with a private key whose ActiveFrom has come and RetiredAt has
// not; nil if there is none. It allocates nothing (it runs on every minted
// JWT's cache lookup).
func (ks *KeySet) ActiveAt(now time.Time) *SigningKey {
	for _, k := range ks.signers {
		if k.SignsAt(now) {
			return k
		}
	}
	return nil
}

// Keys returns all keys, newest first. The keys must not be modified.
func (ks *KeySet) Keys() []*SigningKey { return slices.Clone(ks.keys) }

// Key returns the key with the given kid, or nil.
func (ks *KeySet) Key(kid string) *SigningKey {
	if e := ks.byKID[kid]; e != nil {
		return e.key
	}
	return nil
}

// JWKS returns the JSON Web Key Set of all keys (RFC 7517): {"keys":[...]},
// the active key first. The bytes are shared: do not modify them.
func (ks *KeySet) JWKS() []byte { return ks.jwks }

// CloudflareCerts returns the document Cloudflare Access serves at
// /cdn-cgi/access/certs: {"keys":[JWK...], "public_cert":{"kid","cert"},
// "public_certs":[{"kid","cert"}...]} with PEM certificates; public_cert is
// the newest signing key's (the active key's, or during a rotation's
// pre-publication the one about to sign).
// The bytes are shared: do not modify them.
func (ks *KeySet) CloudflareCerts() []byte { return ks.certs }

// jwk is a public JSON Web Key (RFC 7517, 7518 §6, 8037 §2).
type jwk struct {
	KTY string `json:"kty"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// RSA
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// EC and OKP
	CRV string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

func newJWK(k *SigningKey) (jwk, error) {
	j := jwk{KID: k.KID, Alg: string(k.Alg), Use: "sig"}
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		j.KTY = "RSA"
		j.N = b64(pub.N.Bytes())
		j.E = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		// Uncompressed point: 0x04 || X || Y, each 32 bytes (left-padded),
		// as RFC 7518 §6.2.1.2 requires.
		pt, err := pub.Bytes()
		if err != nil || len(pt) != 65 {
			return j, fmt.Errorf("%w: kid %q: EC point: %v", ErrKeyInvalid, k.KID, err)
		}
		j.KTY, j.CRV = "EC", "P-256"
		j.X, j.Y = b64(pt[1:33]), b64(pt[33:])
	case ed25519.PublicKey:
		j.KTY, j.CRV = "OKP", "Ed25519"
		j.X = b64(pub)
	default:
		return j, fmt.Errorf("%w: kid %q: unsupported public key %T", ErrKeyInvalid, k.KID, pub)
	}
	return j, nil
}

type pemCert struct {
	KID  string `json:"kid"`
	Cert string `json:"cert"`
}

// documents renders the JWKS and Cloudflare certs documents.
func (ks *KeySet) documents() (jwks, certs []byte, err error) {
	// The newest key that can sign first (the active key, or during a
	// rotation's pre-publication the one about to sign: Cloudflare's single
	// public_cert names it), then the others newest first.
	order := make([]*SigningKey, 0, len(ks.keys))
	if len(ks.signers) > 0 {
		order = append(order, ks.signers[0])
	}
	for _, k := range ks.keys {
		if len(ks.signers) == 0 || k != ks.signers[0] {
			order = append(order, k)
		}
	}
	keys := make([]jwk, 0, len(order))
	pems := make([]pemCert, 0, len(order))
	for _, k := range order {
		j, err := newJWK(k)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, j)
		pems = append(pems, pemCert{
			KID:  k.KID,
			Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.CertDER})),
		})
	}
	if jwks, err = json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{keys}); err != nil {
		return nil, nil, err
	}
	doc := struct {
		Keys        []jwk     `json:"keys"`
		PublicCert  *pemCert  `json:"public_cert,omitempty"`
		PublicCerts []pemCert `json:"public_certs"`
	}{Keys: keys, PublicCerts: pems}
	if len(pems) > 0 {
		doc.PublicCert = &pems[0]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, nil, err
	}
	return jwks, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
