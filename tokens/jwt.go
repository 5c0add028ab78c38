package tokens

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// JWTLeeway is the clock skew allowed when checking exp, nbf and iat.
	JWTLeeway = 30 * time.Second
	// MaxJWTLen bounds the JWTs Verify will parse; gatehouse's are well under
	// 1 KiB. Longer input is rejected before any decoding.
	MaxJWTLen = 8 << 10
)

// Errors returned by KeySet.Verify (and, for ErrJWTClaims, KeySet.Sign). The
// wrapping error adds detail; it never contains the token.
var (
	// ErrJWTMalformed means the token is not three base64url segments of a
	// JSON header, JSON claims and a signature, or is too long.
	ErrJWTMalformed = errors.New("session JWT is malformed")
	// ErrJWTUnknownKID means the header names no kid, or one that is not in
	// the key set (or whose key has been removed).
	ErrJWTUnknownKID = errors.New("session JWT has a missing or unknown kid")
	// ErrJWTAlg means the header's alg is not the algorithm of the key its
	// kid names ("none", HS256, or another key's algorithm).
	ErrJWTAlg = errors.New("session JWT algorithm does not match its key")
	// ErrJWTSignature means the signature does not verify with the kid's key.
	ErrJWTSignature = errors.New("session JWT signature is invalid")
	// ErrJWTExpired means exp has passed (by more than JWTLeeway).
	ErrJWTExpired = errors.New("session JWT has expired")
	// ErrJWTNotYetValid means nbf or iat is in the future (by more than
	// JWTLeeway).
	ErrJWTNotYetValid = errors.New("session JWT is not valid yet")
	// ErrJWTIssuer means iss is not the expected issuer.
	ErrJWTIssuer = errors.New("session JWT issuer is wrong")
	// ErrJWTClaims means a required claim is missing or has the wrong type.
	ErrJWTClaims = errors.New("session JWT claims are invalid")
)

// Claims are a session JWT's claims, as Cloudflare Access puts them in a
// service token's application token.
type Claims struct {
	Issuer                         string   // "iss": the team domain URL
	Audience                       []string // "aud": the application's AUD tag
	IssuedAt, NotBefore, ExpiresAt time.Time
	Type                           string // "type": "app"
	CommonName                     string // "common_name": the client id
	Subject                        string // "sub": "" for service tokens
	ServiceTokenID                 string // "service_token_id": the token's id
	ServiceTokenName               string // "service_token_name"
}

// signedClaims is the JSON form Sign writes: aud always an array, sub always
// present (Cloudflare sends "" for service tokens).
type signedClaims struct {
	Issuer           string           `json:"iss"`
	Audience         []string         `json:"aud"`
	IssuedAt         *jwt.NumericDate `json:"iat"`
	NotBefore        *jwt.NumericDate `json:"nbf"`
	ExpiresAt        *jwt.NumericDate `json:"exp"`
	Type             string           `json:"type"`
	CommonName       string           `json:"common_name"`
	Subject          string           `json:"sub"`
	ServiceTokenID   string           `json:"service_token_id"`
	ServiceTokenName string           `json:"service_token_name"`
}

// parsedClaims is what Verify decodes; aud may be a string or an array
// (RFC 7519 §4.1.3).
type parsedClaims struct {
	Issuer           string           `json:"iss"`
	Audience         jwt.ClaimStrings `json:"aud"`
	IssuedAt         *jwt.NumericDate `json:"iat"`
	NotBefore        *jwt.NumericDate `json:"nbf"`
	ExpiresAt        *jwt.NumericDate `json:"exp"`
	Type             string           `json:"type"`
	CommonName       string           `json:"common_name"`
	Subject          string           `json:"sub"`
	ServiceTokenID   string           `json:"service_token_id"`
	ServiceTokenName string           `json:"service_token_name"`
}

func (c *parsedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *parsedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *parsedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c *parsedClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *parsedClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *parsedClaims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

// Sign signs c with the key active at c.IssuedAt (ActiveAt). The header is
// {"alg","kid","typ":"JWT"}.
// Issuer, IssuedAt and ExpiresAt (after IssuedAt) are required; a zero
// NotBefore becomes IssuedAt. Times are written in whole seconds. Signing
// costs from tens of microseconds (EdDSA, ES256) to a millisecond or more
// (RS256): callers reuse a JWT while its claims stay valid.
func (ks *KeySet) Sign(c *Claims) (string, error) {
	switch {
	case c.Issuer == "":
		return "", fmt.Errorf("%w: iss is empty", ErrJWTClaims)
	case c.IssuedAt.IsZero():
		return "", fmt.Errorf("%w: iat is not set", ErrJWTClaims)
	case c.ExpiresAt.IsZero():
		return "", fmt.Errorf("%w: exp is not set", ErrJWTClaims)
	case !c.ExpiresAt.After(c.IssuedAt):
		return "", fmt.Errorf("%w: exp is not after iat", ErrJWTClaims)
	}
	active := ks.ActiveAt(c.IssuedAt)
	if active == nil {
		return "", ErrNoActiveKey
	}
	nbf := c.NotBefore
	if nbf.IsZero() {
		nbf = c.IssuedAt
	}
	aud := c.Audience
	if aud == nil {
		aud = []string{}
	}
	payload, err := json.Marshal(&signedClaims{
		Issuer:           c.Issuer,
		Audience:         aud,
		IssuedAt:         jwt.NewNumericDate(c.IssuedAt),
		NotBefore:        jwt.NewNumericDate(nbf),
		ExpiresAt:        jwt.NewNumericDate(c.ExpiresAt),
		Type:             c.Type,
		CommonName:       c.CommonName,
		Subject:          c.Subject,
		ServiceTokenID:   c.ServiceTokenID,
		ServiceTokenName: c.ServiceTokenName,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrJWTClaims, err)
	}
	e := ks.byKID[active.KID]
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(e.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, e.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := e.method.Sign(string(buf), active.Signer)
	if err != nil {
		return "", fmt.Errorf("signing session JWT with kid %s: %w", active.KID, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// lookup is the jwt key function of the key Verify chose from the kid:
// it checks that the header the library decoded names the same kid (JSON
// decoders can disagree on a header like {"kid":"a","KID":"b"}) and, again,
// the algorithm.
func (e *keyEntry) lookup(t *jwt.Token) (any, error) {
	if kid, _ := t.Header["kid"].(string); kid != e.key.KID {
		return nil, fmt.Errorf("%w: the header's kid is ambiguous", ErrJWTUnknownKID)
	}
	if t.Method.Alg() != string(e.key.Alg) {
		return nil, fmt.Errorf("%w: header alg is %q, the key's is %s", ErrJWTAlg, t.Method.Alg(), e.key.Alg)
	}
	return e.verifyKey, nil
}

// peekKID returns the kid of a JWT's header segment, so that Verify can
// pick the key, and with it the only algorithm, before parsing.
func peekKID(token string) (string, error) {
	dot := strings.IndexByte(token, '.')
	if dot < 0 {
		return "", fmt.Errorf("%w: not three segments", ErrJWTMalformed)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token[:dot])
	if err != nil {
		return "", fmt.Errorf("%w: header is not base64url", ErrJWTMalformed)
	}
	var h struct {
		KID any `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("%w: header is not a JSON object", ErrJWTMalformed)
	}
	kid, ok := h.KID.(string)
	if !ok || kid == "" {
		return "", fmt.Errorf("%w: the header has no kid", ErrJWTUnknownKID)
	}
	return kid, nil
}

// Verify checks a session JWT and returns its claims. The header's kid
// (required) picks the key, and that key's parser admits only that key's
// algorithm (jwt.WithValidMethods), so "none", HMAC and cross-algorithm
// forgeries fail. Then exp (required), nbf and iat are checked against now
// with JWTLeeway, and iss must equal issuer. It does not check aud or
// whether the token was revoked: callers do. Errors wrap the ErrJWT*
// sentinels and never contain the token.
func (ks *KeySet) Verify(token, issuer string, now time.Time) (*Claims, error) {
	if len(token) > MaxJWTLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrJWTMalformed, MaxJWTLen)
	}
	if issuer == "" {
		return nil, fmt.Errorf("%w: no issuer to check against", ErrJWTIssuer)
	}
	kid, err := peekKID(token)
	if err != nil {
		return nil, err
	}
	e := ks.byKID[kid]
	if e == nil {
		return nil, ErrJWTUnknownKID
	}
	// A key past RemoveAfter only signed JWTs that have expired, whatever
	// they claim.
	if k := e.key; !k.RemoveAfter.IsZero() && !now.Before(k.RemoveAfter) {
		return nil, fmt.Errorf("%w: the key was removed", ErrJWTUnknownKID)
	}
	var pc parsedClaims
	t, err := e.parser.ParseWithClaims(token, &pc, e.keyFunc)
	if err != nil {
		return nil, e.parseError(t, err)
	}
	if pc.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: exp is missing", ErrJWTClaims)
	}
	v := jwt.NewValidator(
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(JWTLeeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(issuer),
	)
	if err := v.Validate(&pc); err != nil {
		return nil, claimsError(err)
	}
	c := &Claims{
		Issuer:           pc.Issuer,
		Audience:         []string(pc.Audience),
		ExpiresAt:        pc.ExpiresAt.Time,
		Type:             pc.Type,
		CommonName:       pc.CommonName,
		Subject:          pc.Subject,
		ServiceTokenID:   pc.ServiceTokenID,
		ServiceTokenName: pc.ServiceTokenName,
	}
	if pc.IssuedAt != nil {
		c.IssuedAt = pc.IssuedAt.Time
	}
	if pc.NotBefore != nil {
		c.NotBefore = pc.NotBefore.Time
	}
	return c, nil
}

// parseError maps a jwt parse error to our sentinels.
func (e *keyEntry) parseError(t *jwt.Token, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrJWTMalformed, err)
	case errors.Is(err, ErrJWTUnknownKID), errors.Is(err, ErrJWTAlg):
		return keyFuncCause(err)
	case t == nil || t.Method == nil:
		// alg missing or not a registered algorithm.
		return fmt.Errorf("%w: %v", ErrJWTAlg, err)
	case t.Method.Alg() != string(e.key.Alg):
		// Rejected by WithValidMethods.
		return fmt.Errorf("%w: header alg is %q, the key's is %s", ErrJWTAlg, t.Method.Alg(), e.key.Alg)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrJWTSignature
	}
	return fmt.Errorf("%w: %v", ErrJWTMalformed, err)
}

// keyFuncCause returns the error lookup returned, without the jwt library's
// "token is unverifiable: error while executing keyfunc" wrapping (which
// joins its sentinel and the cause with several %w, the cause last).
func keyFuncCause(err error) error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := u.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1]
		}
	}
	return err
}

// claimsError maps a jwt validation error to our sentinels, most telling
// first.
func claimsError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrJWTExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fmt.Errorf("%w: nbf is in the future", ErrJWTNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: iat is in the future", ErrJWTNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrJWTIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// exp is checked before; the only other required claim is iss.
		return fmt.Errorf("%w: iss is missing", ErrJWTIssuer)
	}
	return fmt.Errorf("%w: %v", ErrJWTClaims, err)
}
