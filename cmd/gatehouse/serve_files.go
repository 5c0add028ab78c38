package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func encodeMasterKey(key []byte) string { return hex.EncodeToString(key) }

func decodeMasterKey(b []byte) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, errors.New("not 64 hex characters (a 32-byte key)")
	}
	return key, nil
}

// writeFileAtomic writes data to a temporary file in the same directory,
// fsyncs it, sets mode, and renames it into place, so a crash never leaves a
// half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// registerAdminKey stores the digest of key as an admin key named name if
// the store has no admin key yet. It reports whether it did.
func registerAdminKey(db *store.DB, name, key string, now time.Time) (bool, error) {
	if err := tokens.CheckSecret(key, tokens.AdminKeyPrefix, false); err != nil {
		return false, fmt.Errorf("not a gatehouse admin key: %w", err)
	}
	registered := false
	err := db.Update(func(tx *store.Tx) error {
		registered = false
		keys, err := tx.AdminKeys()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			return nil
		}
		d := tokens.Digest(key)
		registered = true
		return tx.PutAdminKey(&store.AdminKey{ID: tokens.NewID(), Name: name, Digest: d[:], CreatedAt: now})
	})
	return registered, err
}
