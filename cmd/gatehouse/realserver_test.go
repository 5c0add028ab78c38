package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/gatehouse-dev/gatehouse/admin"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// realServer runs the real admin service over a bbolt store in a temporary
// directory, on loopback, and returns its address and admin key file.
func realServer(t *testing.T) (addr, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "gatehouse.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keyFile = filepath.Join(dir, "admin.key")
	if _, err := admin.EnsureAdminKey(db, keyFile, time.Now()); err != nil {
		t.Fatal(err)
	}
	master, err := tokens.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := admin.New(admin.Config{Store: db, MasterKey: master, SigningAlg: tokens.AlgES256})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String(), keyFile
}

// TestAgainstRealAdminService drives a token's whole life through the real
// admin service: what the fake-based tests assume about the server (name
// resolution, error codes, field names) is checked here.
func TestAgainstRealAdminService(t *testing.T) {
	addr, keyFile := realServer(t)
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	adminKey := strings.TrimSpace(string(key))
	env := map[string]string{envServer: addr}
	gh := func(stdin string, args ...string) result {
		t.Helper()
		var stdout, stderr bytes.Buffer
		c := &cli{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr,
			getenv: func(k string) string { return env[k] }, now: time.Now, terminal: func() bool { return false }}
		if !slices.Contains(args, "--admin-key-file") {
			args = append(args, "--admin-key-file", keyFile)
		}
		r := result{code: c.run(context.Background(), args), stdout: stdout.String(), stderr: stderr.String()}
		if strings.Contains(r.stdout+r.stderr, adminKey) {
			t.Fatalf("gatehouse %v printed the admin key", args)
		}
		return r
	}

	r := gh("", "token", "create", "ci-deploy", "-o", "json").ok(t)
	var tok adminv1.ServiceToken
	jsonObject(t, r.stdout, &tok)
	if !clientIDRE.MatchString(tok.ClientId) || !uuidRE.MatchString(tok.Id) || tok.ClientSecret == "" {
		t.Fatalf("created %v", &tok)
	}
	gh("", "token", "create", "x", "--duration", "abc").fails(t, exitError, "(InvalidArgument)", "abc")

	gh("", "app", "create", "internal-api", "--domain", "api.internal.example.com").ok(t)
	r = gh("", "policy", "create", "internal-api", "ci", "--decision", "non_identity", "--include", "service_token=ci-deploy").ok(t)
	if !strings.Contains(r.stdout, "service_token="+tok.Id) {
		t.Fatalf("policy:\n%s", r.stdout)
	}
	r = gh("", "token", "get", "ci-deploy").ok(t)
	if !strings.Contains(r.stdout, "internal-api") || strings.Contains(r.stdout, tok.ClientSecret) {
		t.Fatalf("token get:\n%s", r.stdout)
	}

	const legacyID = "88bf3b6d86161464f6509f7219099e57.access"
	gh("bdd31cbc4dec4f68ed70c9d43a0a6f4e3a8de3b7f08ea1e9aa36c1ca7d326b1d\n", "token", "import", "legacy", "--client-id", legacyID).ok(t)
	r = gh("", "token", "list").ok(t)
	if !strings.Contains(r.stdout, legacyID) || !strings.Contains(r.stdout, tok.ClientId) {
		t.Fatalf("token list:\n%s", r.stdout)
	}

	r = gh("", "token", "rotate", tok.ClientId, "--grace", "24h").ok(t)
	if !strings.Contains(r.stdout, "cf-access-client-secret: ") || strings.Contains(r.stdout, tok.ClientSecret) {
		t.Fatalf("rotate:\n%s", r.stdout)
	}

	gh("", "token", "delete", "ci-deploy", "--yes").fails(t, exitError, "(FailedPrecondition)", "--force")
	r = gh("", "token", "delete", "ci-deploy", "--yes", "--force").ok(t)
	if !strings.Contains(r.stdout, "Removed it from 1 policy") {
		t.Fatalf("delete:\n%s", r.stdout)
	}
	gh("", "token", "get", "ci-deploy").fails(t, exitError, `no service token has the id, client id or name "ci-deploy"`)

	gh("", "keys", "rotate", "--alg", "ES256").ok(t)
	r = gh("", "keys", "list", "-o", "json").ok(t)
	keys := jsonArray(t, r.stdout, func() *adminv1.SigningKey { return new(adminv1.SigningKey) })
	if len(keys) == 0 {
		t.Fatal("no signing keys")
	}

	r = gh("", "admin-key", "create", "reader", "--read-only", "-o", "json").ok(t)
	var reader adminv1.AdminKey
	jsonObject(t, r.stdout, &reader)
	readerFile := filepath.Join(t.TempDir(), "reader.key")
	os.WriteFile(readerFile, []byte(reader.Key+"\n"), 0o600)
	// The read-only key may read, not write.
	gh("", "app", "list", "--admin-key-file", readerFile).ok(t)
	gh("", "app", "create", "x", "--domain", "x.example.com", "--admin-key-file", readerFile).fails(t, exitError, "(PermissionDenied)")

	r = gh("", "audit", "list", "--since", "1h").ok(t)
	if !strings.Contains(r.stdout, "CreateServiceToken") || !strings.Contains(r.stdout, "bootstrap") {
		t.Fatalf("audit:\n%s", r.stdout)
	}

	out := filepath.Join(t.TempDir(), "backup.db")
	gh("", "backup", "--out", out).ok(t)
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("backup: %v", err)
	}

	// Without a decider the server answers Unavailable itself: that is not
	// "cannot reach".
	r = gh("", "check", "--host", "api.internal.example.com")
	r.fails(t, exitError, "(Unavailable)")
	if strings.Contains(r.stderr, "cannot reach") {
		t.Fatalf("server-side Unavailable reported as unreachable: %s", r.stderr)
	}
}
