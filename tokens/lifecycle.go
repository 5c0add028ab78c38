package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Rotation grace bounds: Cloudflare's dashboard offers "keep the current
// secret valid for" 1 hour to 30 days, or revoke immediately (grace 0).
const (
	MinGrace = time.Hour
	MaxGrace = 720 * time.Hour
)

// ErrGraceRange means a rotation grace period is neither 0 (revoke the old
// secret at once) nor between MinGrace and MaxGrace.
var ErrGraceRange = errors.New("rotation grace period must be 0 or between 1h and 720h")

// DummyDigest is a digest no secret is known to hash to. When a client id is
// unknown, callers still compare the presented digest with it (for example
// through the Verify of a token whose digests are DummyDigest), so that an
// unknown client id costs the same time as a wrong secret.
var DummyDigest = sha256.Sum256([]byte("gatehouse.secret.v1 dummy digest: no secret hashes to this"))

// New creates an enabled token with a fresh id, client id and secret. The
// secret is returned once and only its digest is kept. d is the token's
// lifetime (Forever for none).
func New(name string, d Duration, now time.Time) (*ServiceToken, string, error) {
	if err := ValidateName(name); err != nil {
		return nil, "", err
	}
	if d < 0 {
		return nil, "", fmt.Errorf("duration: %w", ErrDurationNotPos)
	}
	clientID, err := NewClientID()
	if err != nil {
		return nil, "", err
	}
	secret, err := NewSecret(SecretPrefix)
	if err != nil {
		return nil, "", err
	}
	t := newToken(name, clientID, secret, d, now)
	return t, secret, nil
}

// Import creates an enabled token around an existing client id and secret,
// for example one issued by Cloudflare Access (a 64-hex secret) or exported
// from another gatehouse (a ghst_ secret). The secret is checked, hashed and
// not kept.
func Import(name, clientID, secret string, d Duration, now time.Time) (*ServiceToken, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if !ValidClientID(clientID) {
		return nil, ErrClientIDMalformed
	}
	if err := CheckSecret(secret, SecretPrefix, true); err != nil {
		return nil, err
	}
	if d < 0 {
		return nil, fmt.Errorf("duration: %w", ErrDurationNotPos)
	}
	t := newToken(name, clientID, secret, d, now)
	t.Imported = true
	return t, nil
}

func newToken(name, clientID, secret string, d Duration, now time.Time) *ServiceToken {
	digest := Digest(secret)
	t := &ServiceToken{
		ID:            NewID(),
		Name:          name,
		ClientID:      clientID,
		SecretDigest:  digest[:],
		SecretVersion: 1,
		Enabled:       true,
		CreatedAt:     now,
		Duration:      d,
	}
	t.Refresh(now)
	return t
}

// Refresh restarts the token's lifetime: ExpiresAt = now + Duration, or zero
// if the token lasts forever. The secret does not change.
func (t *ServiceToken) Refresh(now time.Time) {
	if t.Duration == Forever {
		t.ExpiresAt = time.Time{}
	} else {
		t.ExpiresAt = now.Add(time.Duration(t.Duration))
	}
	t.UpdatedAt = now
}

// SetDuration changes the token's lifetime and, as Cloudflare does on an
// update, restarts it from now. d should be Forever or positive (as
// ParseDuration returns); a negative d makes the token expired at once.
func (t *ServiceToken) SetDuration(d Duration, now time.Time) {
	t.Duration = d
	t.Refresh(now)
}

// Rotate gives the token a new secret, returned once, and bumps
// SecretVersion. With grace 0 the old secret stops working at once;
// otherwise it keeps working until now+grace, MinGrace ≤ grace ≤ MaxGrace.
// Only the secret just replaced is kept: a secret still in its grace period
// from an earlier rotation stops working. A disabled token keeps no previous
// secret (disabling ends the grace period), so rotating one drops the old
// secret whatever the grace. The expiry does not change.
func (t *ServiceToken) Rotate(grace time.Duration, now time.Time) (string, error) {
	if grace != 0 && (grace < MinGrace || grace > MaxGrace) {
		return "", fmt.Errorf("%w: got %s", ErrGraceRange, shortDuration(grace))
	}
	secret, err := NewSecret(SecretPrefix)
	if err != nil {
		return "", err
	}
	digest := Digest(secret)
	if grace == 0 || !t.Enabled {
		t.PreviousSecretDigest = nil
		t.PreviousSecretExpiresAt = time.Time{}
	} else {
		t.PreviousSecretDigest = t.SecretDigest
		t.PreviousSecretExpiresAt = now.Add(grace)
	}
	t.SecretDigest = digest[:]
	t.SecretVersion++
	t.UpdatedAt = now
	return secret, nil
}

// SetEnabled enables or disables the token. Disabling also ends a rotation
// grace period for good: the previous secret is forgotten, so enabling the
// token again brings back only the current secret.
func (t *ServiceToken) SetEnabled(on bool, now time.Time) {
	t.Enabled = on
	if !on {
		t.PreviousSecretDigest = nil
		t.PreviousSecretExpiresAt = time.Time{}
	}
	t.UpdatedAt = now
}

// Expired reports whether the token has expired at now. A token expires at
// ExpiresAt exactly; one with a zero ExpiresAt never does.
func (t *ServiceToken) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// VerifyResult is the outcome of ServiceToken.Verify. Its String form is the
// reason written to logs and metrics.
type VerifyResult uint8

// Verify outcomes. The zero value is a failure.
const (
	// VerifyWrongSecret: the digest matches neither the current secret nor
	// a previous secret still in its grace period.
	VerifyWrongSecret VerifyResult = iota
	// VerifyOK: the current secret, on an enabled, unexpired token.
	VerifyOK
	// VerifyOKPrevious: the previous secret, within its rotation grace period.
	VerifyOKPrevious
	// VerifyExpired: a right secret, on an expired token.
	VerifyExpired
	// VerifyDisabled: a right secret, on a disabled token.
	VerifyDisabled
)

var verifyResultNames = [...]string{
	VerifyWrongSecret: "wrong_secret",
	VerifyOK:          "ok",
	VerifyOKPrevious:  "ok_previous_secret",
	VerifyExpired:     "expired",
	VerifyDisabled:    "disabled",
}

// String returns the log reason: "ok", "ok_previous_secret",
// "wrong_secret", "expired" or "disabled".
func (r VerifyResult) String() string {
	if int(r) < len(verifyResultNames) {
		return verifyResultNames[r]
	}
	return fmt.Sprintf("VerifyResult(%d)", uint8(r))
}

// OK reports whether the secret was accepted (current or previous).
func (r VerifyResult) OK() bool { return r == VerifyOK || r == VerifyOKPrevious }

// Verify checks the digest of a presented secret (Digest of it, after
// CheckSecret) against the token at now.
//
// It always compares the digest with both the current and the previous
// secret digests in constant time, and combines the results without an
// early return, so the time taken does not tell which (if any) matched. A
// previous secret counts only while now is before PreviousSecretExpiresAt.
//
// A wrong secret is reported as such whatever the token's state, so that
// only a holder of a right secret learns the token is disabled or expired.
// Otherwise disabled wins over expired.
func (t *ServiceToken) Verify(digest *[32]byte, now time.Time) VerifyResult {
	if digest == nil {
		digest = &DummyDigest
	}
	cur := subtle.ConstantTimeCompare(digest[:], t.SecretDigest)
	prev := subtle.ConstantTimeCompare(digest[:], t.PreviousSecretDigest)
	inGrace := 0
	if now.Before(t.PreviousSecretExpiresAt) {
		inGrace = 1
	}
	prev &= inGrace
	switch {
	case cur|prev == 0:
		return VerifyWrongSecret
	case !t.Enabled:
		return VerifyDisabled
	case t.Expired(now):
		return VerifyExpired
	case cur == 1:
		return VerifyOK
	default:
		return VerifyOKPrevious
	}
}
