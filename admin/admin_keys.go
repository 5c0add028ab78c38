package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// bootstrapKeyName names the admin key EnsureAdminKey creates.
const bootstrapKeyName = "bootstrap"

// CreateAdminKey creates an admin key; the response is the only place the
// key ever appears.
func (s *Server) CreateAdminKey(ctx context.Context, req *adminv1.CreateAdminKeyRequest) (*adminv1.AdminKey, error) {
	const method = "CreateAdminKey"
	if err := checkName("name", req.GetName()); err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	k, key, err := newAdminKey(req.GetName(), req.GetReadOnly(), now)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	err = s.store.Update(func(tx *store.Tx) error {
		if err := putNewAdminKey(tx, k); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(k.ID, k.Name), accessOf(k))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(k.ID, k.Name))
	return adminKeyProto(k, key), nil
}

// ListAdminKeys lists the admin keys, revoked ones included, by name.
func (s *Server) ListAdminKeys(ctx context.Context, req *adminv1.ListAdminKeysRequest) (*adminv1.ListAdminKeysResponse, error) {
	var keys []*store.AdminKey
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		keys, err = adminKeys(tx)
		return err
	})
	if err != nil {
		return nil, s.toStatus("ListAdminKeys", err)
	}
	slices.SortFunc(keys, func(a, b *store.AdminKey) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	resp := &adminv1.ListAdminKeysResponse{AdminKeys: make([]*adminv1.AdminKey, 0, len(keys))}
	for _, k := range keys {
		resp.AdminKeys = append(resp.AdminKeys, adminKeyProto(k, ""))
	}
	return resp, nil
}

// RevokeAdminKey revokes an admin key (by id or name) from the next call on.
// The last read-write key cannot be revoked.
func (s *Server) RevokeAdminKey(ctx context.Context, req *adminv1.RevokeAdminKeyRequest) (*adminv1.AdminKey, error) {
	const method = "RevokeAdminKey"
	if req.GetId() == "" {
		return nil, s.toStatus(method, invalidf("id", "required: an admin key id or name"))
	}
	now := s.now()
	var k *store.AdminKey
	err := s.store.Update(func(tx *store.Tx) error {
		keys, err := adminKeys(tx)
		if err != nil {
			return err
		}
		k = findAdminKey(keys, req.GetId())
		switch {
		case k == nil:
			return fmt.Errorf("admin key %s: %w", quote(req.GetId()), store.ErrNotFound)
		case !k.RevokedAt.IsZero():
			return fmt.Errorf("admin key %q: %w", k.Name, ErrAlreadyRevoked)
		case !k.ReadOnly && countUsable(keys) == 1:
			return fmt.Errorf("cannot revoke admin key %q: %w", k.Name, ErrLastAdminKey)
		}
		k.RevokedAt = now
		if err := tx.PutAdminKey(k); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(k.ID, k.Name), accessOf(k))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(k.ID, k.Name))
	return adminKeyProto(k, ""), nil
}

// EnsureAdminKey creates the first admin key when the store has no usable
// read-write one: it stores the key's digest (name "bootstrap") and writes
// the key to path, mode 0600, never over an existing file. The key is not
// logged; the caller tells the operator where it is.
func EnsureAdminKey(st Store, path string, now time.Time) (created bool, err error) {
	var usable int
	err = st.View(func(tx *store.Tx) error {
		keys, err := adminKeys(tx)
		usable = countUsable(keys)
		return err
	})
	if err != nil || usable > 0 {
		return false, err
	}
	if _, err := os.Lstat(path); err == nil {
		return false, fmt.Errorf("%s: %w, but the store has no usable admin key: move it away to create a new one", path, ErrAdminKeyFileExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	k, key, err := newAdminKey(bootstrapKeyName, false, now)
	if err != nil {
		return false, err
	}
	// The file first: once the store holds the digest, the key must be on
	// disk. If storing fails, the file is removed again.
	if err := writeKeyFile(path, key); err != nil {
		return false, err
	}
	err = st.Update(func(tx *store.Tx) error {
		keys, err := adminKeys(tx)
		if err != nil {
			return err
		}
		if countUsable(keys) > 0 {
			return errBootstrapRace
		}
		if err := putNewAdminKey(tx, k); err != nil {
			return err
		}
		return appendAudit(tx, &store.AuditEvent{Time: now, AdminKey: systemActor, Method: "EnsureAdminKey",
			Object: objectName(k.ID, k.Name), Outcome: outcomeOK, Message: "first admin key, written to " + path})
	})
	if err != nil {
		os.Remove(path)
		if errors.Is(err, errBootstrapRace) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// errBootstrapRace: another writer created an admin key between
// EnsureAdminKey's check and its transaction.
var errBootstrapRace = errors.New("an admin key appeared meanwhile")

// writeKeyFile writes key to path, mode 0600, failing if path exists: it
// writes a temporary file in the same directory, syncs it, and hard-links it
// into place (a link, unlike a rename, never replaces a file), then syncs the
// directory.
func writeKeyFile(path, key string) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write admin key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	// CreateTemp makes the file 0600 already; Chmod states the intent and
	// does not depend on it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write admin key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write admin key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write admin key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write admin key file: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrAdminKeyFileExists)
		}
		return fmt.Errorf("write admin key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// newAdminKey makes a key and its record (digest only).
func newAdminKey(name string, readOnly bool, now time.Time) (*store.AdminKey, string, error) {
	key, err := tokens.NewSecret(tokens.AdminKeyPrefix)
	if err != nil {
		return nil, "", fmt.Errorf("generate admin key: %w", err)
	}
	d := tokens.Digest(key)
	return &store.AdminKey{
		ID:        tokens.NewID(),
		Name:      name,
		Digest:    d[:],
		ReadOnly:  readOnly,
		CreatedAt: now,
	}, key, nil
}

// putNewAdminKey stores k, refusing a name that a usable key has.
func putNewAdminKey(tx *store.Tx, k *store.AdminKey) error {
	keys, err := adminKeys(tx)
	if err != nil {
		return err
	}
	for _, o := range keys {
		if o.Name == k.Name && o.RevokedAt.IsZero() {
			return invalid("name", taken(store.ErrNameTaken, "an admin key named %q already exists", k.Name))
		}
	}
	return tx.PutAdminKey(k)
}

// findAdminKey finds a key by id, else the usable key with that name, else
// a revoked one with that name.
func findAdminKey(keys []*store.AdminKey, ref string) *store.AdminKey {
	var byName *store.AdminKey
	for _, k := range keys {
		switch {
		case k.ID == ref:
			return k
		case k.Name == ref && (byName == nil || (k.RevokedAt.IsZero() && !byName.RevokedAt.IsZero())):
			byName = k
		}
	}
	return byName
}

// countUsable counts the read-write keys not revoked.
func countUsable(keys []*store.AdminKey) int {
	n := 0
	for _, k := range keys {
		if !k.ReadOnly && k.RevokedAt.IsZero() {
			n++
		}
	}
	return n
}

func accessOf(k *store.AdminKey) string {
	if k.ReadOnly {
		return "read-only"
	}
	return "read-write"
}

// adminKeys returns every admin key record.
func adminKeys(tx *store.Tx) ([]*store.AdminKey, error) {
	return tx.AdminKeys()
}
