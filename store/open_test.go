package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestOpenCreatesStore(t *testing.T) {
	dir := t.TempDir()
	path := FilePath(dir)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	st := mustLoad(t, db)
	if st.Rev != 0 || len(st.Tokens)+len(st.Apps)+len(st.Policies)+len(st.SigningKeys) != 0 {
		t.Errorf("new store state = %+v, want empty at rev 0", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %o, want 600", mode)
	}
	// Inspect the file with bbolt directly: the layout doc.go promises.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(btx *bolt.Tx) error {
		for _, name := range allBuckets {
			if btx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		meta := btx.Bucket(bucketMeta)
		if v, ok := readU64(meta.Get(keySchemaVersion)); !ok || v != SchemaVersion {
			t.Errorf("schema_version = %x, want %d", meta.Get(keySchemaVersion), SchemaVersion)
		}
		if v, ok := readU64(meta.Get(keyRev)); !ok || v != 0 {
			t.Errorf("rev = %x, want 0", meta.Get(keyRev))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeBolt makes a bbolt file by hand, for files Open must refuse.
func writeBolt(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to open
		want    error
		wantMsg string
	}{{
		name:    "empty path",
		setup:   func(*testing.T, string) string { return "" },
		want:    ErrDataPath,
		wantMsg: "data file path is empty",
	}, {
		name:    "data dir missing",
		setup:   func(_ *testing.T, dir string) string { return filepath.Join(dir, "nope", FileName) },
		want:    ErrDataPath,
		wantMsg: "does not exist",
	}, {
		name: "data dir is a file",
		setup: func(t *testing.T, dir string) string {
			f := filepath.Join(dir, "data")
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, FileName)
		},
		want:    ErrDataPath,
		wantMsg: "is not a directory",
	}, {
		name: "data file is a directory",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, FileName)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		},
		want:    ErrDataPath,
		wantMsg: "is a directory",
	}, {
		name: "newer schema",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, FileName)
			writeBolt(t, p, func(btx *bolt.Tx) error {
				meta, err := btx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				if err := meta.Put(keySchemaVersion, u64(7)); err != nil {
					return err
				}
				return meta.Put(keyRev, u64(3))
			})
			return p
		},
		want:    ErrNewerSchema,
		wantMsg: fmt.Sprintf("store schema version 7 is newer than this gatehouse supports (%d): upgrade gatehouse", SchemaVersion),
	}, {
		name: "bbolt file of another program",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, FileName)
			writeBolt(t, p, func(btx *bolt.Tx) error {
				_, err := btx.CreateBucket([]byte("widgets"))
				return err
			})
			return p
		},
		want:    ErrNotStore,
		wantMsg: "without gatehouse metadata (buckets: widgets)",
	}, {
		name: "not a bbolt file",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, FileName)
			if err := os.WriteFile(p, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		},
		want:    ErrNotStore,
		wantMsg: "is not a bbolt file",
	}, {
		name: "meta without schema version",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, FileName)
			writeBolt(t, p, func(btx *bolt.Tx) error {
				_, err := btx.CreateBucket(bucketMeta)
				return err
			})
			return p
		},
		want:    ErrCorrupt,
		wantMsg: "schema_version is missing",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			db, err := Open(path, fast)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open error = %v, want errors.Is %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestOpenNewerSchemaLeavesFileAlone(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	writeBolt(t, p, func(btx *bolt.Tx) error {
		meta, err := btx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keySchemaVersion, u64(SchemaVersion+1)); err != nil {
			return err
		}
		return meta.Put(keyRev, u64(3))
	})
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	after, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("Open of a newer-schema file modified it")
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	first, err := Open(path, fast)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if want := "data file " + path + " is locked by another gatehouse process"; err.Error() != want {
		t.Errorf("second Open error = %q, want %q", err, want)
	}
	// Verify takes a shared lock: refused too while a server holds the file.
	if err := verify(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("Verify on an open store = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	second.Close()
}

func TestReopenKeepsRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(newToken(i)) })
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := subscribe(db)
	if rev := mustLoad(t, db).Rev; rev != 3 {
		t.Fatalf("rev after reopen = %d, want 3", rev)
	}
	// The hub must continue at rev 4, not wait for a rev 1 that never comes.
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(newToken(9)) })
	if c := log.last(t); c.Rev != 4 {
		t.Errorf("first change after reopen has rev %d, want 4", c.Rev)
	}
}

// TestReleaseMappedPages: after the kernel is told to drop the mapped pages,
// every record still reads back (from the page cache), and writes go on.
func TestReleaseMappedPages(t *testing.T) {
	db := openTest(t, Options{NoSync: true})
	var want []*tokens.ServiceToken
	for i := range 500 {
		tok := newToken(i)
		if err := db.Update(func(tx *Tx) error { return tx.PutToken(tok) }); err != nil {
			t.Fatal(err)
		}
		want = append(want, tok)
	}
	if _, err := db.Load(); err != nil {
		t.Fatal(err)
	}
	if err := db.ReleaseMappedPages(); err != nil {
		t.Fatalf("ReleaseMappedPages: %v", err)
	}
	st, err := db.Load()
	if err != nil || len(st.Tokens) != len(want) {
		t.Fatalf("after release: %d tokens, %v", len(st.Tokens), err)
	}
	for _, tok := range want {
		var got *tokens.ServiceToken
		err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.Token(tok.ID)
			return err
		})
		if err != nil || got.Name != tok.Name {
			t.Fatalf("token %s after release: %v %v", tok.Name, got, err)
		}
	}
	extra := newToken(500)
	if err := db.Update(func(tx *Tx) error { return tx.PutToken(extra) }); err != nil {
		t.Fatal(err)
	}
}
