package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// SigningKeys returns every stored session-JWT signing key (sealed), oldest
// first (by CreatedAt, then kid).
func (tx *Tx) SigningKeys() ([]*tokens.SealedKey, error) {
	var keys []*tokens.SealedKey
	if err := forEach(tx, bucketSigningKeys, "signing key", func(k *tokens.SealedKey) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b *tokens.SealedKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return keys, nil
}

// SigningKey returns the signing key with that kid.
func (tx *Tx) SigningKey(kid string) (*tokens.SealedKey, error) {
	return get[tokens.SealedKey](tx, bucketSigningKeys, "signing key", kid)
}

// PutSigningKey creates or replaces the signing key with k.KID and marks
// the Change's SigningKeysChanged.
func (tx *Tx) PutSigningKey(k *tokens.SealedKey) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: signing key is nil", ErrInvalid)
	case k.KID == "":
		return fmt.Errorf("%w: signing key kid is empty", ErrInvalid)
	case len(k.Sealed) == 0:
		return fmt.Errorf("%w: signing key %s: sealed private key is empty", ErrInvalid, k.KID)
	}
	data, err := encode(k)
	if err != nil {
		return fmt.Errorf("encode signing key %s: %w", k.KID, err)
	}
	if err := tx.bucket(bucketSigningKeys).Put([]byte(k.KID), data); err != nil {
		return err
	}
	tx.rec.keys = true
	return nil
}

// DeleteSigningKey deletes the signing key with that kid.
func (tx *Tx) DeleteSigningKey(kid string) error {
	b := tx.bucket(bucketSigningKeys)
	if b.Get([]byte(kid)) == nil {
		return fmt.Errorf("signing key %q: %w", kid, ErrNotFound)
	}
	if err := b.Delete([]byte(kid)); err != nil {
		return err
	}
	tx.rec.keys = true
	return nil
}

// AdminKey is an admin API key. Only the digest (tokens.Digest of the
// "ghak_" secret) is stored.
type AdminKey struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Digest   []byte `json:"digest"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// CreatedAt is when the key was made; RevokedAt, when non-zero, is when
	// it stopped being accepted (kept for the audit trail).
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// AdminKey returns the admin key with that id.
func (tx *Tx) AdminKey(id string) (*AdminKey, error) {
	return get[AdminKey](tx, bucketAdminKeys, "admin key", id)
}

// AdminKeys returns every admin key, revoked ones included, oldest first.
func (tx *Tx) AdminKeys() ([]*AdminKey, error) {
	var keys []*AdminKey
	if err := forEach(tx, bucketAdminKeys, "admin key", func(k *AdminKey) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b *AdminKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// AdminKeyByDigest returns the admin key whose secret has digest d,
// revoked or not (the caller checks RevokedAt). The lookup is a B-tree
// search on a SHA-256 digest of a 256-bit random secret, so its timing
// reveals nothing usable about the secret; the error never includes d.
func (tx *Tx) AdminKeyByDigest(d [32]byte) (*AdminKey, error) {
	id := tx.bucket(bucketAdminKeyDigests).Get(d[:])
	if id == nil {
		return nil, fmt.Errorf("admin key: %w", ErrNotFound)
	}
	raw := tx.bucket(bucketAdminKeys).Get(id)
	if raw == nil {
		return nil, fmt.Errorf("%w: admin key digest index points to missing admin key %q", ErrCorrupt, id)
	}
	return decode[AdminKey](raw, "admin key", string(id))
}

// PutAdminKey creates or replaces the admin key with k.ID, keeping the
// digest index. Admin keys are not part of a Change.
func (tx *Tx) PutAdminKey(k *AdminKey) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: admin key is nil", ErrInvalid)
	case k.ID == "":
		return fmt.Errorf("%w: admin key id is empty", ErrInvalid)
	case len(k.Digest) != 32:
		return fmt.Errorf("%w: admin key %s: digest is %d bytes, want 32", ErrInvalid, k.ID, len(k.Digest))
	}
	records, digests := tx.bucket(bucketAdminKeys), tx.bucket(bucketAdminKeyDigests)
	if other := digests.Get(k.Digest); other != nil && string(other) != k.ID {
		return fmt.Errorf("admin key %s: %w (by admin key %s)", k.ID, ErrDigestTaken, other)
	}
	var old *AdminKey
	if raw := records.Get([]byte(k.ID)); raw != nil {
		var err error
		if old, err = decode[AdminKey](raw, "admin key", k.ID); err != nil {
			return err
		}
	}
	data, err := encode(k)
	if err != nil {
		return fmt.Errorf("encode admin key %s: %w", k.ID, err)
	}
	if old != nil && string(old.Digest) != string(k.Digest) {
		if err := digests.Delete(old.Digest); err != nil {
			return err
		}
	}
	if err := records.Put([]byte(k.ID), data); err != nil {
		return err
	}
	return digests.Put(k.Digest, []byte(k.ID))
}

// DeleteAdminKey deletes the admin key and its digest index entry.
// Revoking (setting RevokedAt) is usually what an operator wants instead.
func (tx *Tx) DeleteAdminKey(id string) error {
	old, err := tx.AdminKey(id)
	if err != nil {
		return err
	}
	if err := tx.bucket(bucketAdminKeyDigests).Delete(old.Digest); err != nil {
		return err
	}
	return tx.bucket(bucketAdminKeys).Delete([]byte(id))
}
