package tokens

import "time"

// ServiceToken is a stored service token: everything about it but the
// secret itself, of which only a digest is kept.
//
// The JSON encoding is the store's record format; field names follow
// Cloudflare Access's API where one exists.
type ServiceToken struct {
	ID       string `json:"id"`        // UUID
	Name     string `json:"name"`      // unique, 1–255 printable characters
	ClientID string `json:"client_id"` // 32 lowercase hex + ".access"

	// SecretDigest is Digest(secret) of the current secret.
	SecretDigest []byte `json:"secret_digest"`
	// SecretVersion starts at 1 and grows by one on each rotation.
	SecretVersion int64 `json:"client_secret_version"`
	// PreviousSecretDigest is the digest of the secret that the last rotation
	// replaced; it is accepted until PreviousSecretExpiresAt (exclusive).
	PreviousSecretDigest    []byte    `json:"previous_secret_digest,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previous_client_secret_expires_at,omitzero"`

	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt is zero for a token that never expires (Duration == Forever).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Duration is the token's lifetime, used by refresh; Forever (0) means
	// it never expires.
	Duration   Duration  `json:"duration"`
	LastSeenAt time.Time `json:"last_seen_at,omitzero"`
	// Imported is true for a token whose secret was brought in from elsewhere
	// (for example a Cloudflare 64-hex secret).
	Imported bool `json:"imported,omitempty"`
}

// Clone returns a deep copy.
func (t *ServiceToken) Clone() *ServiceToken {
	c := *t
	c.SecretDigest = append([]byte(nil), t.SecretDigest...)
	if t.PreviousSecretDigest != nil {
		c.PreviousSecretDigest = append([]byte(nil), t.PreviousSecretDigest...)
	}
	return &c
}
