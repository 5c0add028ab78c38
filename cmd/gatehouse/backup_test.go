package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestBackup(t *testing.T) {
	f := startFake(t)
	want := bytes.Repeat([]byte("bbolt page "), 20000) // > one chunk
	f.backup = func(s adminv1.AdminService_BackupServer) error {
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			if err := s.Send(&adminv1.BackupChunk{Data: rest[:n]}); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "gatehouse.db")
	r := f.run(t, "", "backup", "--out", out).ok(t)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("backup file: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if r.stdout != "Wrote a 220000-byte backup to "+out+".\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("left behind: %v", names)
	}

	r = f.run(t, "", "backup", "--out", out, "-o", "json").ok(t)
	var res struct {
		Out   string `json:"out"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Out != out || res.Bytes != int64(len(want)) {
		t.Fatalf("json %q: %v", r.stdout, err)
	}

	// A stream that fails half-way leaves the previous backup untouched and
	// no temporary file.
	f.backup = func(s adminv1.AdminService_BackupServer) error {
		s.Send(&adminv1.BackupChunk{Data: []byte("partial")})
		return status.Error(codes.Internal, "disk on fire")
	}
	f.run(t, "", "backup", "--out", out).fails(t, exitError, "disk on fire (Internal)")
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("a failed backup replaced the previous one")
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("left behind: %v", names)
	}

	// An empty stream is an error, not an empty backup.
	f.backup = func(adminv1.AdminService_BackupServer) error { return nil }
	empty := filepath.Join(dir, "empty.db")
	f.run(t, "", "backup", "--out", empty).fails(t, exitError, "empty backup")
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("empty backup written: %v", err)
	}

	f.run(t, "", "backup").fails(t, exitUsage, "--out is required")
	f.run(t, "", "backup", "--out", filepath.Join(dir, "no", "such", "dir.db")).fails(t, exitError, "no such file or directory")
}
