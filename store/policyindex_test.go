package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// policyIDs lists the ids fn yields.
func policyIDs(t *testing.T, db *DB, each func(*Tx, func(*policy.Policy) error) error) []string {
	t.Helper()
	var ids []string
	if err := db.View(func(tx *Tx) error {
		return each(tx, func(p *policy.Policy) error {
			ids = append(ids, p.ID)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func byApp(id string) func(*Tx, func(*policy.Policy) error) error {
	return func(tx *Tx, fn func(*policy.Policy) error) error { return tx.ForEachPolicy(id, fn) }
}

func naming(id string) func(*Tx, func(*policy.Policy) error) error {
	return func(tx *Tx, fn func(*policy.Policy) error) error { return tx.ForEachPolicyNaming(id, fn) }
}

func wantIDs(t *testing.T, what string, got []string, want ...*policy.Policy) {
	t.Helper()
	var ids []string
	for _, p := range want {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("%s: %v, want %v", what, got, ids)
	}
}

// TestPolicyIndexes: the application and token indexes follow every put,
// replacement and deletion of a policy, and DeleteApp.
func TestPolicyIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, fast)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	appA, appB := newApp(1), newApp(2)
	t1, t2, t3 := newToken(1), newToken(2), newToken(3)
	p1 := newPolicy(1, appA.ID, t1.ID)
	p2 := newPolicy(2, appA.ID, t1.ID)
	p2.Require = []policy.Rule{{ServiceToken: &policy.ServiceTokenRule{TokenID: t2.ID}}}
	p2.Exclude = append(p2.Exclude, policy.Rule{ServiceToken: &policy.ServiceTokenRule{TokenID: t1.ID}}) // named twice
	p3 := newPolicy(3, appB.ID, t2.ID)
	mustUpdate(t, db, func(tx *Tx) error {
		return errors.Join(tx.PutToken(t1), tx.PutToken(t2), tx.PutToken(t3), tx.PutApp(appA), tx.PutApp(appB),
			tx.PutPolicy(p1), tx.PutPolicy(p2), tx.PutPolicy(p3))
	})
	wantIDs(t, "app A", policyIDs(t, db, byApp(appA.ID)), p1, p2)
	wantIDs(t, "app B", policyIDs(t, db, byApp(appB.ID)), p3)
	wantIDs(t, "all", policyIDs(t, db, byApp("")), p1, p2, p3)
	wantIDs(t, "naming t1", policyIDs(t, db, naming(t1.ID)), p1, p2)
	wantIDs(t, "naming t2", policyIDs(t, db, naming(t2.ID)), p2, p3)
	wantIDs(t, "naming t3", policyIDs(t, db, naming(t3.ID)))
	wantIDs(t, "unknown app", policyIDs(t, db, byApp("no-such-app")))

	// Replace p2: it names t3 only, and moves to app B.
	p2b := newPolicy(2, appB.ID, t3.ID)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutPolicy(p2b) })
	wantIDs(t, "naming t1 after replace", policyIDs(t, db, naming(t1.ID)), p1)
	wantIDs(t, "naming t2 after replace", policyIDs(t, db, naming(t2.ID)), p3)
	wantIDs(t, "naming t3 after replace", policyIDs(t, db, naming(t3.ID)), p2b)
	wantIDs(t, "app A after replace", policyIDs(t, db, byApp(appA.ID)), p1)
	wantIDs(t, "app B after replace", policyIDs(t, db, byApp(appB.ID)), p2b, p3)

	mustUpdate(t, db, func(tx *Tx) error { return tx.DeletePolicy(p1.ID) })
	wantIDs(t, "naming t1 after delete", policyIDs(t, db, naming(t1.ID)))
	wantIDs(t, "app A after delete", policyIDs(t, db, byApp(appA.ID)))

	// fn may change policies while the index is walked.
	mustUpdate(t, db, func(tx *Tx) error {
		return tx.ForEachPolicy(appB.ID, func(p *policy.Policy) error { return tx.DeletePolicy(p.ID) })
	})
	wantIDs(t, "app B after deleting during the walk", policyIDs(t, db, byApp(appB.ID)))

	mustUpdate(t, db, func(tx *Tx) error { return tx.PutPolicy(newPolicy(4, appB.ID, t2.ID)) })
	mustUpdate(t, db, func(tx *Tx) error { return tx.DeleteApp(appB.ID) })
	wantIDs(t, "naming t2 after DeleteApp", policyIDs(t, db, naming(t2.ID)))
	db.Close()
	if err := Verify(path); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestMigrateSchema1: a schema-1 file (no policy indexes) verifies as it
// is, and the first Open builds the indexes and records schema 2, in one
// transaction.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, fast)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	p2 := newPolicy(2, newApp(1).ID, newToken(2).ID)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutPolicy(p2) })
	db.Close()

	// Make it what gatehouse schema 1 wrote.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(btx *bolt.Tx) error {
		for _, b := range sinceSchema2 {
			if err := btx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return btx.Bucket(bucketMeta).Put(keySchemaVersion, u64(1))
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	if err := Verify(path); err != nil {
		t.Fatalf("Verify of a schema-1 file: %v", err)
	}

	db, err = Open(path, fast)
	if err != nil {
		t.Fatalf("Open of a schema-1 file: %v", err)
	}
	wantIDs(t, "naming token 1", policyIDs(t, db, naming(newToken(1).ID)), newPolicy(1, "", ""))
	wantIDs(t, "naming token 2", policyIDs(t, db, naming(newToken(2).ID)), p2)
	wantIDs(t, "app 1", policyIDs(t, db, byApp(newApp(1).ID)), newPolicy(1, "", ""), p2)
	if err := db.View(func(tx *Tx) error {
		if v, _ := readU64(tx.bucket(bucketMeta).Get(keySchemaVersion)); v != SchemaVersion {
			t.Errorf("schema version after Open: %d, want %d", v, SchemaVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := Verify(path); err != nil {
		t.Fatalf("Verify after migration: %v", err)
	}
}
