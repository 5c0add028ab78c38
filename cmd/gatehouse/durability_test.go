package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// TestKill9KeepsAcknowledgedTokens creates tokens concurrently over the
// admin API, kill -9s the server right after the last acknowledgement,
// restarts it on the same data dir and checks that every acknowledged token
// is there and that its secret still authenticates through ext_authz.
func TestKill9KeepsAcknowledgedTokens(t *testing.T) {
	bin, _ := binaries(t)
	dataDir := t.TempDir()
	srv := startServe(t, bin, dataDir)
	client, ctx := srv.adminClient(t)

	createAnyTokenApp(t, client, ctx, "durable", "durable.test")

	const n = 40
	var (
		mu    sync.Mutex
		acked []*adminv1.ServiceToken
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := client.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("durable-%02d", i)})
			if err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
			mu.Lock()
			acked = append(acked, tok)
			mu.Unlock()
		}()
	}
	wg.Wait()
	srv.kill() // SIGKILL: no shutdown path runs

	restarted := startServe(t, bin, dataDir)
	client, ctx = restarted.adminClient(t)
	conn, err := grpc.NewClient(restarted.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authz := authv3.NewAuthorizationClient(conn)
	if len(acked) != n {
		t.Fatalf("only %d of %d creates were acknowledged", len(acked), n)
	}
	for _, tok := range acked {
		got, err := client.GetServiceToken(ctx, &adminv1.GetServiceTokenRequest{Id: tok.GetId()})
		if err != nil {
			t.Errorf("token %s (%s) acknowledged but lost after kill -9: %v", tok.GetName(), tok.GetId(), err)
			continue
		}
		if got.GetClientId() != tok.GetClientId() || got.GetClientSecret() != "" {
			t.Errorf("token %s: client id %q (want %q), secret returned by get: %v", tok.GetName(), got.GetClientId(), tok.GetClientId(), got.GetClientSecret() != "")
		}
		resp, err := authz.Check(context.Background(), checkRequest("durable.test", "/", map[string]string{
			"cf-access-client-id": tok.GetClientId(), "cf-access-client-secret": tok.GetClientSecret(),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.GetStatus().GetCode(); code != int32(codes.OK) {
			t.Errorf("token %s: secret no longer authenticates after restart: status %d %s", tok.GetName(), code, resp.GetDeniedResponse().GetBody())
		}
	}
}

// TestServeRefusesBadStarts covers the start-up failures an operator hits:
// a second server on the same data dir (bbolt's file lock: fail fast, not
// hang), a data dir that is a file, and bad flags.
func TestServeRefusesBadStarts(t *testing.T) {
	bin, _ := binaries(t)
	dataDir := t.TempDir()
	startServe(t, bin, dataDir)

	for name, assert := range map[string]struct {
		args []string
		want string
		code int
	}{
		"second server on the same data dir": {[]string{"--data-dir", dataDir}, "locked", 1},
		"data dir is a file":                 {[]string{"--data-dir", writeFile(t, "not a dir")}, "is a file", 1},
		"bad unmatched":                      {[]string{"--data-dir", t.TempDir(), "--unmatched", "maybe"}, "--unmatched", 2},
		"bad inactive window":                {[]string{"--data-dir", t.TempDir(), "--disable-inactive-after", "1h"}, "--disable-inactive-after", 2},
		"same authz and admin address":       {[]string{"--data-dir", t.TempDir(), "--authz-addr", "127.0.0.1:9", "--admin-addr", "127.0.0.1:9"}, "must differ", 2},
		"debug listener off loopback":        {[]string{"--data-dir", t.TempDir(), "--debug-addr", "0.0.0.0:0"}, "--debug-addr: \"0.0.0.0\" is not a loopback address", 2},
		"debug address without a port":       {[]string{"--data-dir", t.TempDir(), "--debug-addr", "127.0.0.1"}, "--debug-addr: \"127.0.0.1\" is not host:port", 2},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"serve", "--authz-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, assert.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("serve did not fail fast: still running after 20s\n%s", out)
			}
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("serve: want a non-zero exit, got %v\n%s", err, out)
			}
			if ee.ExitCode() != assert.code {
				t.Errorf("exit code %d, want %d\n%s", ee.ExitCode(), assert.code, out)
			}
			if !strings.Contains(string(out), assert.want) {
				t.Errorf("output does not mention %q:\n%s", assert.want, out)
			}
		})
	}
}

// TestServeWritesSecretsPrivately checks the files a first start creates.
func TestServeWritesSecretsPrivately(t *testing.T) {
	bin, _ := binaries(t)
	dataDir := t.TempDir()
	srv := startServe(t, bin, dataDir)
	for _, f := range []string{"admin.key", "master.key", "gatehouse.db"} {
		fi, err := os.Stat(filepath.Join(dataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	key := srv.adminKey(t)
	if !strings.HasPrefix(key, "ghak_") {
		t.Errorf("admin.key does not hold an admin key")
	}
	if strings.Contains(srv.logs.String(), key) {
		t.Errorf("the admin key appears in the server log")
	}
	if !strings.Contains(srv.logs.String(), filepath.Join(dataDir, "admin.key")) {
		t.Errorf("the server log does not say where the admin key is")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRequest builds a CheckRequest the way Envoy's HTTP/1.1 codec does.
func checkRequest(host, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": host, ":path": path, ":method": "GET", ":scheme": "http", "x-forwarded-proto": "http"}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: host, Scheme: "http", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}
