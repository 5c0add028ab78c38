package admin_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/gatehouse-dev/gatehouse/admin"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	revoked, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: "old"}); err != nil {
		t.Fatal(err)
	}
	unknown, err := tokens.NewSecret(tokens.AdminKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	tokSecret := e.createToken("t", "").ClientSecret
	md := func(kv ...string) context.Context {
		return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
	}
	tests := []struct {
		name   string
		ctx    context.Context
		msg    string
		secret string // must not be echoed
	}{
		{"no metadata", context.Background(), "missing", ""},
		{"basic scheme", md("authorization", "Basic "+e.key), "Bearer", e.key},
		{"no scheme", md("authorization", e.key), "Bearer", e.key},
		{"empty bearer", md("authorization", "Bearer "), "empty", ""},
		{"malformed key", md("authorization", "Bearer ghak_short"), "malformed", "ghak_short"},
		{"key with a flipped character", md("authorization", "Bearer "+flip(e.key)), "malformed", flip(e.key)},
		{"client secret as key", md("authorization", "Bearer "+tokSecret), "malformed", tokSecret},
		{"unknown key", md("authorization", "Bearer "+unknown), "not recognised", unknown},
		{"revoked key", md("authorization", "Bearer "+revoked.Key), "revoked", revoked.Key},
		{"two values", md("authorization", "Bearer "+e.key, "authorization", "Bearer "+e.key), "more than one", e.key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.ListServiceTokens(tt.ctx, &adminv1.ListServiceTokensRequest{})
			wantStatus(t, err, codes.Unauthenticated, tt.msg)
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("message echoes the key: %v", err)
			}
			_, err = e.client.CreateServiceToken(tt.ctx, &adminv1.CreateServiceTokenRequest{Name: "x-" + tt.name})
			wantStatus(t, err, codes.Unauthenticated)
			stream, err := e.client.Backup(tt.ctx, &adminv1.BackupRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			wantStatus(t, err, codes.Unauthenticated)
		})
	}
	// The scheme is case-insensitive (RFC 9110).
	if _, err := e.client.ListServiceTokens(md("authorization", "bearer "+e.key), &adminv1.ListServiceTokensRequest{}); err != nil {
		t.Fatalf("lower-case bearer: %v", err)
	}
	// Health is not an admin method: no key needed.
	if _, err := e.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without a key: %v", err)
	}
}

// flip changes one character in the middle of key, keeping it the same
// length and alphabet, so only the checksum catches it.
func flip(key string) string {
	b := []byte(key)
	i := len(tokens.AdminKeyPrefix) + 10
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func TestReadOnlyKey(t *testing.T) {
	e := newEnv(t)
	ro, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "viewer", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.createToken("t", "")
	app := e.createApp("app", "app.example.com")
	ctx := withKey(ro.Key)

	reads := map[string]func() error{
		"ListServiceTokens": func() error {
			_, err := e.client.ListServiceTokens(ctx, &adminv1.ListServiceTokensRequest{})
			return err
		},
		"GetServiceToken": func() error {
			_, err := e.client.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: tok.Id})
			return err
		},
		"ListApplications": func() error {
			_, err := e.client.ListApplications(ctx, &adminv1.ListApplicationsRequest{})
			return err
		},
		"GetApplication": func() error {
			_, err := e.client.GetApplication(ctx, &adminv1.GetApplicationRequest{Id: app.Id})
			return err
		},
		"ListPolicies": func() error {
			_, err := e.client.ListPolicies(ctx, &adminv1.ListPoliciesRequest{})
			return err
		},
		"CheckAccess": func() error {
			_, err := e.client.CheckAccess(ctx, &adminv1.CheckAccessRequest{Host: "app.example.com"})
			return err
		},
		"ListSigningKeys": func() error {
			_, err := e.client.ListSigningKeys(ctx, &adminv1.ListSigningKeysRequest{})
			return err
		},
		"ListAdminKeys": func() error {
			_, err := e.client.ListAdminKeys(ctx, &adminv1.ListAdminKeysRequest{})
			return err
		},
		"ListAuditEvents": func() error {
			_, err := e.client.ListAuditEvents(ctx, &adminv1.ListAuditEventsRequest{})
			return err
		},
	}
	for name, call := range reads {
		t.Run("read/"+name, func(t *testing.T) {
			if err := call(); err != nil {
				t.Fatal(err)
			}
		})
	}

	writes := map[string]func() error{
		"CreateServiceToken": func() error {
			_, err := e.client.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: "x"})
			return err
		},
		"RotateServiceToken": func() error {
			_, err := e.client.RotateServiceToken(ctx, &adminv1.RotateServiceTokenRequest{Id: tok.Id})
			return err
		},
		"SetServiceTokenEnabled": func() error {
			_, err := e.client.SetServiceTokenEnabled(ctx, &adminv1.SetServiceTokenEnabledRequest{Id: tok.Id})
			return err
		},
		"DeleteServiceToken": func() error {
			_, err := e.client.DeleteServiceToken(ctx, &adminv1.DeleteServiceTokenRequest{Id: tok.Id})
			return err
		},
		"UpdateApplication": func() error {
			_, err := e.client.UpdateApplication(ctx, &adminv1.UpdateApplicationRequest{Id: app.Id, DryRun: ptr(true)})
			return err
		},
		"RotateSigningKeys": func() error {
			_, err := e.client.RotateSigningKeys(ctx, &adminv1.RotateSigningKeysRequest{})
			return err
		},
		"CreateAdminKey": func() error {
			_, err := e.client.CreateAdminKey(ctx, &adminv1.CreateAdminKeyRequest{Name: "escalate"})
			return err
		},
		"RevokeAdminKey": func() error {
			_, err := e.client.RevokeAdminKey(ctx, &adminv1.RevokeAdminKeyRequest{Id: "bootstrap"})
			return err
		},
		"Backup": func() error {
			stream, err := e.client.Backup(ctx, &adminv1.BackupRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		},
	}
	for name, call := range writes {
		t.Run("write/"+name, func(t *testing.T) {
			wantStatus(t, call(), codes.PermissionDenied, "read-only", name)
			ev := e.lastAudit()
			if ev.Method != name || ev.Outcome != "PermissionDenied" || ev.AdminKey != "viewer" {
				t.Fatalf("audit = %+v", ev)
			}
		})
	}
	// Nothing changed.
	got := e.storedToken(tok.Id)
	if !got.Enabled || got.SecretVersion != 1 {
		t.Fatalf("read-only key changed the token: %+v", got)
	}
}

func TestAdminKeys(t *testing.T) {
	e := newEnv(t)
	ci, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if tokens.CheckSecret(ci.Key, tokens.AdminKeyPrefix, false) != nil || ci.ReadOnly || !tokens.ValidID(ci.Id) {
		t.Fatalf("CreateAdminKey = %v", ci)
	}
	// The new key works at once.
	if _, err := e.client.ListAdminKeys(withKey(ci.Key), &adminv1.ListAdminKeysRequest{}); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListAdminKeys(e.ctx(), &adminv1.ListAdminKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.AdminKeys) != 2 || list.AdminKeys[0].Name != "bootstrap" || list.AdminKeys[1].Name != "ci" {
		t.Fatalf("ListAdminKeys = %v", list)
	}
	for _, k := range list.AdminKeys {
		if k.Key != "" {
			t.Fatalf("ListAdminKeys returned key material for %s", k.Name)
		}
	}

	bad := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"create without name", func() error {
			_, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{})
			return err
		}, codes.InvalidArgument, "name: "},
		{"create duplicate", func() error {
			_, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "ci"})
			return err
		}, codes.AlreadyExists, "name: "},
		{"revoke without id", func() error {
			_, err := e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{})
			return err
		}, codes.InvalidArgument, "id: "},
		{"revoke unknown", func() error {
			_, err := e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: "nobody"})
			return err
		}, codes.NotFound, `"nobody"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) { wantStatus(t, tt.call(), tt.code, tt.msg) })
	}

	// Revoke by id: effective on the very next call.
	rev, err := e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: ci.Id})
	if err != nil || rev.RevokedAt == nil || !rev.RevokedAt.AsTime().Equal(t0) || rev.Key != "" {
		t.Fatalf("RevokeAdminKey = %v, %v", rev, err)
	}
	_, err = e.client.ListAdminKeys(withKey(ci.Key), &adminv1.ListAdminKeysRequest{})
	wantStatus(t, err, codes.Unauthenticated, "revoked")
	_, err = e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: "ci"})
	wantStatus(t, err, codes.FailedPrecondition, "already revoked")

	// The name of a revoked key may be reused.
	ci2, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	// The last read-write key cannot go; a read-only one does not count.
	if _, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "viewer", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: "bootstrap"}); err != nil {
		t.Fatal(err)
	}
	// A key may revoke itself too, but not the last read-write one.
	_, err = e.client.RevokeAdminKey(withKey(ci2.Key), &adminv1.RevokeAdminKeyRequest{Id: "ci"})
	wantStatus(t, err, codes.FailedPrecondition, "last read-write")
	if _, err := e.client.RevokeAdminKey(withKey(ci2.Key), &adminv1.RevokeAdminKeyRequest{Id: "viewer"}); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureAdminKey(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "gatehouse.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	path := filepath.Join(dir, "admin.key")

	created, err := admin.EnsureAdminKey(db, path, t0)
	if err != nil || !created {
		t.Fatalf("first EnsureAdminKey = %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin key file mode = %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSuffix(string(raw), "\n")
	if err := tokens.CheckSecret(key, tokens.AdminKeyPrefix, false); err != nil {
		t.Fatalf("file holds %d bytes that are not an admin key: %v", len(raw), err)
	}
	d := tokens.Digest(key)
	if err := db.View(func(tx *store.Tx) error {
		k, err := tx.AdminKeyByDigest(d)
		if err != nil {
			return err
		}
		if k.Name != "bootstrap" || k.ReadOnly || !k.CreatedAt.Equal(t0) {
			t.Errorf("stored key = %+v", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// No temporary file left behind.
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		if strings.Contains(en.Name(), ".tmp") {
			t.Fatalf("left %s behind", en.Name())
		}
	}

	// Second start: nothing to do, the file is untouched.
	created, err = admin.EnsureAdminKey(db, path, t0.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("second EnsureAdminKey = %v, %v", created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(raw) {
		t.Fatal("second EnsureAdminKey rewrote the key file")
	}

	// A fresh store with a file already at the path: never overwritten.
	db2, err := store.Open(filepath.Join(t.TempDir(), "gatehouse.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	created, err = admin.EnsureAdminKey(db2, path, t0)
	if created || err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("EnsureAdminKey over an existing file = %v, %v", created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(raw) {
		t.Fatal("EnsureAdminKey overwrote an existing file")
	}
	// A missing directory is an error, not a panic nor a stored digest.
	created, err = admin.EnsureAdminKey(db2, filepath.Join(dir, "missing", "admin.key"), t0)
	if created || err == nil {
		t.Fatalf("EnsureAdminKey in a missing directory = %v, %v", created, err)
	}
	if err := db2.View(func(tx *store.Tx) error {
		keys, err := tx.AdminKeys()
		if len(keys) != 0 {
			t.Errorf("a failed bootstrap stored %d keys", len(keys))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestBackup(t *testing.T) {
	e := newEnv(t)
	// Enough records for several 64 KiB chunks.
	if err := e.db.Update(func(tx *store.Tx) error {
		for i := range 400 {
			tok, _, err := tokens.New("bulk-"+strings.Repeat("x", i%50)+string(rune('A'+i%26))+strconv.Itoa(i), tokens.DefaultDuration, t0)
			if err != nil {
				return err
			}
			if err := tx.PutToken(tok); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := e.client.Backup(e.ctx(), &adminv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		data   []byte
		chunks int
	)
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Data) == 0 || len(c.Data) > 64<<10 {
			t.Fatalf("chunk of %d bytes", len(c.Data))
		}
		data = append(data, c.Data...)
		chunks++
	}
	if chunks < 2 {
		t.Fatalf("%d bytes in %d chunks; want a multi-chunk backup", len(data), chunks)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Verify(path); err != nil {
		t.Fatalf("backup does not verify: %v", err)
	}
	b, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.Load()
	if err != nil || len(st.Tokens) != 400 {
		t.Fatalf("backup holds %d tokens, %v", len(st.Tokens), err)
	}
	if ev := e.lastAudit(); ev.Method != "Backup" || ev.Outcome != "ok" || ev.AdminKey != "bootstrap" {
		t.Fatalf("backup audit = %+v", ev)
	}
}

// TestBackupCancelled stops reading a backup after one chunk: the server's
// store reader must not stay blocked on its pipe (TestMain checks for
// leaked goroutines).
func TestBackupCancelled(t *testing.T) {
	e := newEnv(t)
	if err := e.db.Update(func(tx *store.Tx) error {
		for i := range 400 {
			tok, _, err := tokens.New("bulk-"+strconv.Itoa(i)+strings.Repeat("x", 100), tokens.DefaultDuration, t0)
			if err != nil {
				return err
			}
			if err := tx.PutToken(tok); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx())
	stream, err := e.client.Backup(ctx, &adminv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		if _, err := stream.Recv(); err != nil {
			wantStatus(t, err, codes.Canceled)
			break
		}
	}
	// The store is still usable for writers (no read transaction or pipe
	// left hanging that would block it).
	e.createToken("after-backup", "")
}
