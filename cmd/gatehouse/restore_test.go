package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
)

// local runs a local command (restore, store verify): no server, no key.
func local(t *testing.T, args ...string) result {
	t.Helper()
	return invocation{}.exec(t, args...)
}

// copyFile copies src to dst with mode 0600.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestoreUnderWriteLoad takes an online backup through the admin
// API while four clients create tokens, restores it with "gatehouse
// restore" into a new data dir, starts a server there and finds every token
// acknowledged before the backup began, with a secret that still
// authenticates.
func TestBackupRestoreUnderWriteLoad(t *testing.T) {
	src := startInProcess(t, nil)
	client, ctx := src.adminClient(t)
	createAnyTokenApp(t, client, ctx, "restored", "restored.test")

	var (
		mu      sync.Mutex
		acked   []*adminv1.ServiceToken
		stop    atomic.Bool
		writers sync.WaitGroup
		n       atomic.Int64
	)
	for w := range 4 {
		writers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				tok, err := client.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("w%d-%04d", w, i)})
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, tok)
				mu.Unlock()
				n.Add(1)
			}
		})
	}
	for n.Load() < 40 {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := append([]*adminv1.ServiceToken(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "backup.db")
	stream, err := client.Backup(ctx, &adminv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeBackup(stream, out); err != nil {
		t.Fatal(err)
	}
	for n.Load() < int64(len(before))+40 { // writes went on during and after the backup
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	writers.Wait()
	if err := src.shutdown(); err != nil {
		t.Fatal(err)
	}

	local(t, "store", "verify", out).ok(t)

	// Without the source's master key the backup's signing keys are sealed
	// shut: restore refuses and leaves nothing behind.
	dst := t.TempDir()
	local(t, "restore", "--data-dir", dst, out).fails(t, exitError, "master.key does not exist")
	if names := entries(t, dst); len(names) != 0 {
		t.Fatalf("a refused restore left %v", names)
	}
	copyFile(t, src.cfg.MasterKeyFile, filepath.Join(dst, "master.key"))
	r := local(t, "restore", "--data-dir", dst, out).ok(t)
	if !strings.Contains(r.stdout, "Restored "+out) || !strings.Contains(r.stdout, "1 applications, 1 policies") {
		t.Errorf("restore said %q", r.stdout)
	}

	// The bootstrap admin key is the source's: copy it as an operator would.
	copyFile(t, src.cfg.AdminKeyFile, filepath.Join(dst, "admin.key"))
	got := startInProcess(t, nil, func(c *serveConfig) { c.DataDir = dst })
	client, ctx = got.adminClient(t)
	authz := authv3.NewAuthorizationClient(dial(t, got.authzAddr))
	for _, tok := range before {
		if _, err := client.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: tok.GetId()}); err != nil {
			t.Errorf("token %s acknowledged before the backup is missing after restore: %v", tok.GetName(), err)
			continue
		}
		resp, err := authz.Check(context.Background(), checkReq("restored.test", "/",
			"cf-access-client-id", tok.GetClientId(), "cf-access-client-secret", tok.GetClientSecret()))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Errorf("token %s does not authenticate after restore: %s", tok.GetName(), resp.GetDeniedResponse().GetBody())
		}
	}
}

// TestRestoreRefusals: each way a restore can go wrong is refused with a
// precise message and changes nothing.
func TestRestoreRefusals(t *testing.T) {
	src := startInProcess(t, nil)
	srcDB := store.FilePath(src.cfg.DataDir)
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(backup, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.db.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A live server's file is locked: verify and restore both say so.
	local(t, "store", "verify", srcDB).fails(t, exitError, "locked by another gatehouse process")
	local(t, "restore", "--data-dir", src.cfg.DataDir, "--force", backup).fails(t, exitError, "in use by a running gatehouse server")

	newDir := func() string {
		d := t.TempDir()
		copyFile(t, src.cfg.MasterKeyFile, filepath.Join(d, "master.key"))
		return d
	}

	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not bbolt ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDir()
	local(t, "restore", "--data-dir", d, garbage).fails(t, exitError, "cannot be restored", "not a bbolt file")
	local(t, "restore", "--data-dir", d, filepath.Join(d, "missing.db")).fails(t, exitError, "cannot be restored", "no such file")
	local(t, "store", "verify", garbage).fails(t, exitError, "not a bbolt file")
	local(t, "restore", "--data-dir", d).fails(t, exitUsage)

	// Another server's master key cannot unseal the backup's signing keys.
	other := startInProcess(t, nil)
	d = t.TempDir()
	copyFile(t, other.cfg.MasterKeyFile, filepath.Join(d, "master.key"))
	local(t, "restore", "--data-dir", d, backup).fails(t, exitError, "cannot unseal signing key")
	if names := entries(t, d); len(names) != 1 {
		t.Fatalf("a refused restore left %v", names)
	}

	// An existing data file needs --force, and is then kept aside.
	d = newDir()
	local(t, "restore", "--data-dir", d, backup).ok(t)
	local(t, "restore", "--data-dir", d, backup).fails(t, exitError, "already exists; give --force")
	r := local(t, "restore", "--data-dir", d, "--force", backup).ok(t)
	if !strings.Contains(r.stdout, "previous data file is kept as "+store.FilePath(d)+".pre-restore-") {
		t.Errorf("stdout %q", r.stdout)
	}
	local(t, "store", "verify", "--data-dir", d).ok(t)
	var kept int
	for _, name := range entries(t, d) {
		if strings.HasPrefix(name, store.FileName+".pre-restore-") {
			kept++
		}
		if strings.Contains(name, ".restore-") {
			t.Errorf("temporary file %s left behind", name)
		}
	}
	if kept != 1 {
		t.Errorf("%d previous data files kept, want 1: %v", kept, entries(t, d))
	}
	if fi, err := os.Stat(store.FilePath(d)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}
