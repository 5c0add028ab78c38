package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// maxVerifyErrors caps how many problems Verify reports.
const maxVerifyErrors = 20

// Verify checks a data file that no server has open (a backup, or the live
// file with the server stopped): bbolt's page-level consistency check
// (tx.Check), then that it is a gatehouse store of a supported schema, that
// every record decodes and sits under its own key, and that every index
// entry and record agree. It opens the file read-only and never creates it.
// Problems are reported as one ErrCorrupt error listing up to 20 of them.
func Verify(path string) error { return verify(path, DefaultLockTimeout) }

func verify(path string, lockTimeout time.Duration) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: data file %s is a directory", ErrDataPath, path)
	}
	bdb, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer bdb.Close()

	var problems []error
	add := func(err error) {
		if len(problems) < maxVerifyErrors {
			problems = append(problems, err)
		}
	}
	err = bdb.View(func(btx *bolt.Tx) error {
		// Drain the channel fully: Check's goroutine stops only at its end.
		for err := range btx.Check() {
			add(err)
		}
		if len(problems) > 0 {
			return nil // records on broken pages are not worth walking
		}
		if btx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("%w: %s has no meta bucket", ErrNotStore, path)
		}
		_, version, err := initMeta(btx, path)
		if err != nil {
			return err
		}
		for _, name := range allBuckets {
			if version < 2 && slices.ContainsFunc(sinceSchema2, func(b []byte) bool { return bytes.Equal(b, name) }) {
				continue // built when a server opens the file
			}
			if btx.Bucket(name) == nil {
				add(fmt.Errorf("bucket %s is missing", name))
			}
		}
		if len(problems) > 0 {
			return nil
		}
		checkRecords(&Tx{btx: btx}, version, add)
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, errors.Join(problems...))
	}
	return nil
}

// checkRecords reports every record that does not decode or is not under
// its own id, and every index entry that disagrees with the records.
func checkRecords(tx *Tx, version uint64, add func(error)) {
	// Each record kind: decode every record, check its key, and collect the
	// index entries it implies; then compare with the index buckets.
	type index struct {
		bucket []byte
		want   map[string]string // index key -> record id
	}
	// keyed returns a record's id and, for each index, its keys there.
	check := func(name []byte, indexes []index, keyed func(raw []byte, key string) (id string, idx [][]string, err error)) {
		c := tx.bucket(name).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id, keys, err := keyed(v, string(k))
			if err != nil {
				add(err)
				continue
			}
			if id != string(k) {
				add(fmt.Errorf("%s record under key %q has id %q", name, k, id))
			}
			for i := range indexes {
				for _, key := range keys[i] {
					indexes[i].want[key] = id
				}
			}
		}
		for _, ix := range indexes {
			got := make(map[string]string)
			c := tx.bucket(ix.bucket).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				got[string(k)] = string(v)
				if want, ok := ix.want[string(k)]; !ok || want != string(v) {
					add(fmt.Errorf("%s entry %q -> %q matches no record", ix.bucket, printable(ix.bucket, k), v))
				}
			}
			for k, id := range ix.want {
				if _, ok := got[k]; !ok {
					add(fmt.Errorf("%s has no entry for %s %q", ix.bucket, name, id))
				}
			}
		}
	}
	newIndex := func(b []byte) index { return index{bucket: b, want: make(map[string]string)} }

	check(bucketTokens, []index{newIndex(bucketTokenNames), newIndex(bucketTokenClientIDs)},
		func(raw []byte, key string) (string, [][]string, error) {
			t, err := decode[tokens.ServiceToken](raw, "token", key)
			if err != nil {
				return "", nil, err
			}
			return t.ID, [][]string{{t.Name}, {t.ClientID}}, nil
		})
	apps := make(map[string]bool)
	check(bucketApps, []index{newIndex(bucketAppNames), newIndex(bucketAppAUDs)},
		func(raw []byte, key string) (string, [][]string, error) {
			a, err := decode[policy.Application](raw, "application", key)
			if err != nil {
				return "", nil, err
			}
			apps[a.ID] = true
			return a.ID, [][]string{{a.Name}, {a.AUD}}, nil
		})
	var policyIndexes []index
	if version >= 2 {
		policyIndexes = []index{newIndex(bucketAppPolicies), newIndex(bucketTokenPolicies)}
	}
	check(bucketPolicies, policyIndexes, func(raw []byte, key string) (string, [][]string, error) {
		p, err := decode[policy.Policy](raw, "policy", key)
		if err != nil {
			return "", nil, err
		}
		if !apps[p.ApplicationID] {
			add(fmt.Errorf("policy %q belongs to missing application %q", p.ID, p.ApplicationID))
		}
		app, toks := policyIndexKeys(p)
		keys := [][]string{{string(app)}, nil}
		for _, k := range toks {
			keys[1] = append(keys[1], string(k))
		}
		return p.ID, keys, nil
	})
	check(bucketSigningKeys, nil, func(raw []byte, key string) (string, [][]string, error) {
		k, err := decode[tokens.SealedKey](raw, "signing key", key)
		if err != nil {
			return "", nil, err
		}
		return k.KID, nil, nil
	})
	check(bucketAdminKeys, []index{newIndex(bucketAdminKeyDigests)},
		func(raw []byte, key string) (string, [][]string, error) {
			k, err := decode[AdminKey](raw, "admin key", key)
			if err != nil {
				return "", nil, err
			}
			return k.ID, [][]string{{string(k.Digest)}}, nil
		})
	if err := tx.ForEachAudit(time.Time{}, func(*AuditEvent) error { return nil }); err != nil {
		add(err)
	}
}

// printable keeps secret digests out of messages.
func printable(bucket, key []byte) string {
	if string(bucket) == string(bucketAdminKeyDigests) {
		return "<digest>"
	}
	return string(key)
}
