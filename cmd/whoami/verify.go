package main

// This file is the worked example of how an origin behind gatehouse (or Cloudflare Access)
// validates the session JWT in the cf-access-jwt-assertion header, using nothing but the JWKS URL:
//
//  1. Fetch the JWKS document and cache its keys by kid. Refetch when a token names a kid the
//     cache does not know (after a key rotation), but at most once per 30s so garbage tokens cannot
//     turn the origin into a JWKS-fetching amplifier.
//  2. Parse the token with the algorithm pinned to the key its kid names: a token cannot choose
//     "none", or HS256 with the public key as HMAC secret, or any algorithm its key was not made for.
//  3. Check exp and nbf (30s leeway for clock skew), aud (must contain this application's AUD
//     tag), and iss when configured.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// HeaderJWT is where gatehouse (and Cloudflare Access) put the session JWT.
const HeaderJWT = "Cf-Access-Jwt-Assertion"

// Defaults of the verifier.
const (
	// FetchTimeout bounds one JWKS fetch.
	FetchTimeout = 5 * time.Second
	// MinRefreshInterval is the shortest time between two JWKS fetches.
	MinRefreshInterval = 30 * time.Second
	// MaxKeyAge is how long a fetched JWKS is used before it is refreshed on the next request,
	// so a key removed from the JWKS (say, after an emergency rotation) stops verifying.
	MaxKeyAge = 10 * time.Minute
	// Leeway is the clock skew tolerated on exp and nbf.
	Leeway = 30 * time.Second
	// maxJWKSBytes caps the JWKS document we are willing to read.
	maxJWKSBytes = 1 << 20
)

var (
	// ErrNoToken means the request carries no cf-access-jwt-assertion header.
	ErrNoToken = errors.New("missing cf-access-jwt-assertion header")
	// ErrUnknownKID means the token's kid is not in the JWKS (even after a refetch).
	ErrUnknownKID = errors.New("unknown signing key id")
	// ErrManyTokens means the request carries several cf-access-jwt-assertion headers: something
	// on the way appended instead of replacing, and guessing which one counts is unsafe.
	ErrManyTokens = errors.New("more than one cf-access-jwt-assertion header")
	// ErrNoKID means the token header has no kid, so no key can be chosen.
	ErrNoKID = errors.New("token header has no kid")
	// ErrAlgMismatch means the token's alg is not the algorithm of the key its kid names.
	ErrAlgMismatch = errors.New("token algorithm does not match its key")
	// ErrJWKS means the JWKS document could not be fetched or parsed.
	ErrJWKS = errors.New("cannot load JWKS")
)

// publicKey is one verification key from the JWKS with the one algorithm it may verify.
type publicKey struct {
	alg string
	key crypto.PublicKey
}

// KeySet fetches a JWKS document over HTTP and caches its keys by kid.
// It is safe for concurrent use; requests for known kids never wait for a fetch.
type KeySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetchMu   sync.Mutex // serialises fetches
	lastFetch time.Time  // last fetch attempt, successful or not; under fetchMu

	mu      sync.RWMutex
	keys    map[string]publicKey // kid -> key, replaced whole on each successful fetch
	fetched time.Time            // when keys was fetched
}

// NewKeySet returns a KeySet for the JWKS at url. now is the clock (time.Now in production).
func NewKeySet(url string, now func() time.Time) *KeySet {
	return &KeySet{url: url, client: &http.Client{Timeout: FetchTimeout}, now: now}
}

// Key returns the key for kid, fetching the JWKS when kid is unknown or the cache is old (both
// rate-limited to one fetch per MinRefreshInterval).
func (s *KeySet) Key(ctx context.Context, kid string) (publicKey, error) {
	s.mu.RLock()
	k, ok := s.keys[kid]
	stale := s.now().Sub(s.fetched) > MaxKeyAge
	s.mu.RUnlock()
	switch {
	case ok && !stale:
		return k, nil
	case ok:
		// Known but old: one caller refreshes, the others go on with the cached key.
		if s.fetchMu.TryLock() {
			s.refreshLocked(ctx)
			s.fetchMu.Unlock()
		}
	default:
		s.fetchMu.Lock()
		s.refreshLocked(ctx)
		s.fetchMu.Unlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if s.keys == nil {
		return publicKey{}, fmt.Errorf("%w from %s", ErrJWKS, s.url)
	}
	return publicKey{}, fmt.Errorf("%w %q", ErrUnknownKID, kid)
}

// Refresh fetches the JWKS now, whatever the rate limit (used once at startup).
func (s *KeySet) Refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.lastFetch = time.Time{}
	return s.refreshLocked(ctx)
}

// refreshLocked fetches unless the last attempt was less than MinRefreshInterval ago. On failure
// the cached keys stay. The caller holds fetchMu.
func (s *KeySet) refreshLocked(ctx context.Context) error {
	now := s.now()
	if !s.lastFetch.IsZero() && now.Sub(s.lastFetch) < MinRefreshInterval {
		return nil
	}
	s.lastFetch = now
	// Not cancelled with the request that triggered it: the fetch is bounded by FetchTimeout, and
	// an impatient client must not waste the one fetch allowed per MinRefreshInterval.
	keys, err := s.fetch(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, now
	s.mu.Unlock()
	return nil
}

func (s *KeySet) fetch(ctx context.Context) (map[string]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %s", ErrJWKS, s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrJWKS, maxJWKSBytes)
	}
	return ParseJWKS(body)
}

// jwk is the subset of a JSON Web Key (RFC 7517, 7518, 8037) a verifier needs.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`   // RSA modulus
	E   string `json:"e"`   // RSA exponent
	Crv string `json:"crv"` // EC / OKP curve
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a {"keys":[...]} document. Keys that are not for signatures, have no kid, or are
// of a type or algorithm this verifier does not accept are skipped, not fatal: a JWKS may carry
// keys for other consumers. A malformed document is an error.
func ParseJWKS(data []byte) (map[string]publicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrJWKS)
	}
	keys := make(map[string]publicKey, len(doc.Keys))
	for _, j := range doc.Keys {
		if j.Kid == "" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		if k, err := j.publicKey(); err == nil {
			keys[j.Kid] = k
		}
	}
	return keys, nil
}

// publicKey converts the JWK, pinning its algorithm: the JWK's alg when present (it must fit the
// key type), else the one algorithm this verifier accepts for that key type.
func (j jwk) publicKey() (publicKey, error) {
	b64 := base64.RawURLEncoding.DecodeString
	switch {
	case j.Kty == "RSA" && (j.Alg == "" || j.Alg == "RS256"):
		n, err := b64(j.N)
		if err != nil {
			return publicKey{}, err
		}
		e, err := b64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("bad RSA exponent")
		}
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if k.N.BitLen() < 2048 || k.E < 3 || k.E%2 == 0 {
			return publicKey{}, errors.New("weak RSA key")
		}
		return publicKey{alg: "RS256", key: k}, nil
	case j.Kty == "EC" && j.Crv == "P-256" && (j.Alg == "" || j.Alg == "ES256"):
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("bad P-256 coordinates")
		}
		// ParseUncompressedPublicKey rejects points that are not on the curve.
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: "ES256", key: k}, nil
	case j.Kty == "OKP" && j.Crv == "Ed25519" && (j.Alg == "" || j.Alg == "EdDSA"):
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return publicKey{}, errors.New("bad Ed25519 key")
		}
		return publicKey{alg: "EdDSA", key: ed25519.PublicKey(x)}, nil
	}
	return publicKey{}, fmt.Errorf("unsupported key kty=%q crv=%q alg=%q", j.Kty, j.Crv, j.Alg)
}

// TokenFrom returns the session JWT of a request: exactly one non-empty cf-access-jwt-assertion
// header. (The CF_Authorization cookie gatehouse may also set is for the client to present later;
// the header is injected into every allowed request, so it is what an origin checks.)
func TokenFrom(h http.Header) (string, error) {
	switch vals := h.Values(HeaderJWT); {
	case len(vals) > 1:
		return "", ErrManyTokens
	case len(vals) == 0 || vals[0] == "":
		return "", ErrNoToken
	default:
		return vals[0], nil
	}
}

// Verifier checks session JWTs against a KeySet.
type Verifier struct {
	Keys      *KeySet
	Audiences []string // the token's aud must contain one of these; empty = any (insecure)
	Issuer    string   // when set, iss must equal it
	Now       func() time.Time
}

// Verify returns the claims of a valid token, or an error wrapping ErrNoToken, ErrNoKID,
// ErrUnknownKID, ErrAlgMismatch, ErrJWKS or one of jwt's (ErrTokenExpired,
// ErrTokenInvalidAudience, ...).
func (v *Verifier) Verify(ctx context.Context, token string) (jwt.MapClaims, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	opts := []jwt.ParserOption{
		// Only asymmetric algorithms: "none" and HS256 are refused before any key is looked up.
		jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA"}),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(v.Now),
		jwt.WithExpirationRequired(),
	}
	if len(v.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(v.Audiences...))
	}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, ErrNoKID
		}
		k, err := v.Keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		// The algorithm is the key's, not the token's choice.
		if t.Method.Alg() != k.alg {
			return nil, fmt.Errorf("%w: token says %s, key %q is %s", ErrAlgMismatch, t.Method.Alg(), kid, k.alg)
		}
		return k.key, nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// Reason is the short, non-secret explanation of a verification error returned to the client.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoToken):
		return "missing cf-access-jwt-assertion header"
	case errors.Is(err, ErrManyTokens):
		return "more than one cf-access-jwt-assertion header"
	case errors.Is(err, ErrNoKID):
		return "token has no kid"
	case errors.Is(err, ErrUnknownKID):
		return "unknown signing key"
	case errors.Is(err, ErrAlgMismatch):
		return "algorithm does not match the signing key"
	case errors.Is(err, ErrJWKS):
		return "signing keys unavailable"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature or algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "audience not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "issuer not accepted"
	}
	return "invalid token"
}
