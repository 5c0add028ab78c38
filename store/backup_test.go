package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// fill writes one of everything, in separate transactions.
func fill(t *testing.T, db *DB) {
	t.Helper()
	mustUpdate(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutToken(newToken(1)), tx.PutToken(newToken(2)))
	})
	mustUpdate(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutApp(newApp(1)), tx.PutPolicy(newPolicy(1, newApp(1).ID, newToken(1).ID)))
	})
	mustUpdate(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutSigningKey(newSealedKey(1)), tx.PutAdminKey(newAdminKey(1)),
			tx.AppendAudit(&AuditEvent{Time: t0, AdminKey: newAdminKey(1).ID, Method: "/x", Outcome: "ok"}))
	})
}

func TestCloseReopenFindsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, Options{}) // fsync on
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	before := mustLoad(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	after := mustLoad(t, db)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("state after reopen differs:\nbefore %+v\nafter  %+v", before, after)
	}
	if after.Rev != 3 || len(after.Tokens) != 2 || len(after.Apps) != 1 || len(after.Policies) != 1 || len(after.SigningKeys) != 1 {
		t.Errorf("reopened state = %+v", after)
	}
	err = db.View(func(tx *Tx) error {
		k, err := tx.AdminKeyByDigest([32]byte(newAdminKey(1).Digest))
		if err != nil || k.ID != newAdminKey(1).ID {
			t.Errorf("AdminKeyByDigest after reopen = %+v, %v", k, err)
		}
		n := 0
		if err := tx.ForEachAudit(time.Time{}, func(*AuditEvent) error { n++; return nil }); err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("%d audit events after reopen, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupUnderConcurrentWrites takes backups while writers run; each
// backup must be a consistent store: it verifies, opens, and holds exactly
// as many tokens as its revision says were written.
func TestBackupUnderConcurrentWrites(t *testing.T) {
	db := openTest(t, Options{})
	dir := t.TempDir()
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if err := db.Batch(func(tx *Tx) error { return tx.PutToken(newToken(w*1_000_000 + i)) }); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	for written.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	var paths []string
	for i := range 3 {
		p := filepath.Join(dir, "backup-"+string(rune('a'+i))+".db")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Backup(f)
		if err != nil {
			t.Fatalf("Backup: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(p); fi.Size() != n {
			t.Errorf("Backup returned %d bytes, file has %d", n, fi.Size())
		}
		paths = append(paths, p)
	}
	stop.Store(true)
	wg.Wait()

	for _, p := range paths {
		if err := Verify(p); err != nil {
			t.Errorf("Verify(%s): %v", filepath.Base(p), err)
		}
		b, err := Open(p, fast)
		if err != nil {
			t.Fatalf("Open backup: %v", err)
		}
		st := mustLoad(t, b)
		if st.Rev == 0 || uint64(len(st.Tokens)) != st.Rev {
			t.Errorf("backup %s: rev %d with %d tokens, want equal and > 0", filepath.Base(p), st.Rev, len(st.Tokens))
		}
		b.Close()
	}
}

func TestVerify(t *testing.T) {
	good := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), FileName)
		db, err := Open(path, fast)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, db)
		db.Close()
		return path
	}
	// raw edits the file behind the store's back.
	raw := func(path string, fn func(*bolt.Tx) error) error {
		bdb, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			return err
		}
		defer bdb.Close()
		return bdb.Update(fn)
	}
	tests := []struct {
		name    string
		corrupt func(*bolt.Tx) error
		want    error
		wantMsg string
	}{
		{"good", nil, nil, ""},
		{"dangling name index", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketTokenNames).Put([]byte("ghost"), []byte("no-such-id"))
		}, ErrCorrupt, `token_names entry "ghost"`},
		{"missing client id index", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketTokenClientIDs).Delete([]byte(newToken(1).ClientID))
		}, ErrCorrupt, "token_client_ids has no entry for tokens " + `"` + newToken(1).ID},
		{"undecodable record", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketApps).Put([]byte(newApp(1).ID), []byte("{not json"))
		}, ErrCorrupt, "application " + `"` + newApp(1).ID},
		{"record under the wrong key", func(btx *bolt.Tx) error {
			b := btx.Bucket(bucketTokens)
			return b.Put([]byte("other-key"), b.Get([]byte(newToken(2).ID)))
		}, ErrCorrupt, `under key "other-key"`},
		{"orphan policy", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketPolicies).Put([]byte("p"), []byte(`{"id":"p","application_id":"gone"}`))
		}, ErrCorrupt, `missing application "gone"`},
		{"digest index never printed", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketAdminKeyDigests).Put([]byte("0123456789abcdef0123456789abcdef"), []byte("x"))
		}, ErrCorrupt, "<digest>"},
		{"missing bucket", func(btx *bolt.Tx) error { return btx.DeleteBucket(bucketAudit) }, ErrCorrupt, "bucket audit is missing"},
		{"policy missing from the token index", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketTokenPolicies).Delete(refKey(newToken(1).ID, newPolicy(1, "", "").ID))
		}, ErrCorrupt, "token_policies has no entry for policies " + `"` + newPolicy(1, "", "").ID},
		{"dangling application index entry", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketAppPolicies).Put(refKey(newApp(1).ID, "no-such-policy"), []byte("no-such-policy"))
		}, ErrCorrupt, "app_policies entry"},
		{"missing policy index bucket", func(btx *bolt.Tx) error { return btx.DeleteBucket(bucketTokenPolicies) }, ErrCorrupt, "bucket token_policies is missing"},
		{"newer schema", func(btx *bolt.Tx) error {
			return btx.Bucket(bucketMeta).Put(keySchemaVersion, u64(SchemaVersion+1))
		}, ErrNewerSchema, fmt.Sprintf("version %d", SchemaVersion+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := good(t)
			if tt.corrupt != nil {
				if err := raw(path, tt.corrupt); err != nil {
					t.Fatal(err)
				}
			}
			err := Verify(path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Verify = %v, want %v containing %q", err, tt.want, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("Verify printed a digest: %v", err)
			}
		})
	}

	t.Run("missing file is not created", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), FileName)
		if err := Verify(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Verify(missing) = %v, want ErrNotExist", err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Error("Verify created the file")
		}
	})
	t.Run("not a bbolt file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(p, []byte(strings.Repeat("garbage", 2000)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Verify(p); !errors.Is(err, ErrNotStore) {
			t.Errorf("Verify(garbage) = %v, want ErrNotStore", err)
		}
	})
}

// TestLoadManyTokens covers Load's parallel decoding: order and contents
// must be those of a plain ForEachToken, and a bad record must be named.
func TestLoadManyTokens(t *testing.T) {
	db := openTest(t, fast)
	const n = 2100 // two decoding workers (one per 2048 records)
	mustUpdate(t, db, func(tx *Tx) error {
		for i := range n {
			if err := tx.PutToken(newToken(i)); err != nil {
				return err
			}
		}
		return nil
	})
	st := mustLoad(t, db)
	var want []*tokens.ServiceToken
	err := db.View(func(tx *Tx) error {
		return tx.ForEachToken(func(tok *tokens.ServiceToken) error { want = append(want, tok); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tokens) != n || !reflect.DeepEqual(st.Tokens, want) {
		t.Fatalf("Load returned %d tokens, different from ForEachToken's %d", len(st.Tokens), len(want))
	}
	bad := newToken(n - 10).ID
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketTokens).Put([]byte(bad), []byte(`{"id": 42}`))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load with a bad record = %v, want ErrCorrupt naming %s", err, bad)
	}
}
