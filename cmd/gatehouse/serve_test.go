package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// fakeClock is an injectable clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// inProcess is `gatehouse serve` run by startServer in the test process,
// on loopback port-0 listeners and a temporary data dir.
type inProcess struct {
	*server
	logs *syncBuffer
}

// startInProcess starts a server with ES256 keys (fast to generate) and the
// given changes to the configuration; it is shut down when the test ends.
func startInProcess(t *testing.T, now func() time.Time, mods ...func(*serveConfig)) *inProcess {
	t.Helper()
	logs := &syncBuffer{}
	return &inProcess{server: startInProcessLogging(t, logs, now, mods...), logs: logs}
}

// startInProcessLogging is startInProcess with the server's log written to
// w.
func startInProcessLogging(t *testing.T, w io.Writer, now func() time.Time, mods ...func(*serveConfig)) *server {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.DataDir = t.TempDir()
	cfg.AuthzAddr, cfg.AdminAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SigningAlg = "ES256"
	cfg.ShutdownGrace = 5 * time.Second
	for _, m := range mods {
		m(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	s, err := startServer(cfg, newLogger(w, "info", "json"), now)
	if err != nil {
		t.Fatalf("startServer: %v", err)
	}
	t.Cleanup(func() { s.shutdown() })
	return s
}

// dial opens a loopback gRPC client connection.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// adminClient dials the admin API with the bootstrap admin key.
func (p *inProcess) adminClient(t *testing.T) (adminv1.AdminServiceClient, context.Context) {
	t.Helper()
	key, err := os.ReadFile(p.cfg.AdminKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+strings.TrimSpace(string(key)))
	return adminv1.NewAdminServiceClient(dial(t, p.adminAddr)), ctx
}

// get fetches an HTTP path from the server's HTTP listener.
func (p *inProcess) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return httpGet(t, "http://"+p.httpAddr+path)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// checkReq is the CheckRequest Envoy sends for GET https://host/path with the
// given extra headers (name, value pairs).
func checkReq(host, path string, kv ...string) *authv3.CheckRequest {
	h := map[string]string{":authority": host, ":path": path, ":method": "GET", ":scheme": "https"}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: host, Path: path, Scheme: "https", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

// healthOf asks a gRPC health server for service's status.
func healthOf(t *testing.T, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health %q: %v", service, err)
	}
	return resp.GetStatus()
}

// TestReadinessAndHealth: /readyz and gRPC health (the whole server and
// each service by name) say SERVING while the server runs, and turn at once
// when shutdown starts, while the drain delay keeps everything answering.
func TestReadinessAndHealth(t *testing.T) {
	p := startInProcess(t, nil, func(c *serveConfig) { c.DrainDelay = time.Minute })
	p.drainCut = make(chan struct{})
	authzConn, adminConn := dial(t, p.authzAddr), dial(t, p.adminAddr)
	probes := []struct {
		conn    *grpc.ClientConn
		service string
	}{
		{authzConn, ""}, {authzConn, "envoy.service.auth.v3.Authorization"},
		{adminConn, ""}, {adminConn, "gatehouse.admin.v1.AdminService"},
	}

	if code, body := p.get(t, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz = %d %q, want 200 ready", code, body)
	}
	if code, body := p.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	for _, pr := range probes {
		if got := healthOf(t, pr.conn, pr.service); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, want SERVING", pr.service, got)
		}
	}
	// The authz port serves only its own service's health.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(authzConn).Check(ctx, &healthpb.HealthCheckRequest{Service: "gatehouse.admin.v1.AdminService"}); err == nil {
		t.Error("the ext_authz port reports health for the admin service")
	}

	done := make(chan error, 1)
	go func() { done <- p.shutdown() }()
	waitFor(t, "/readyz to turn 503", func() bool {
		code, _ := p.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if _, body := p.get(t, "/readyz"); !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz body %q does not say why", body)
	}
	for _, pr := range probes {
		if got := healthOf(t, pr.conn, pr.service); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q during the drain = %v, want NOT_SERVING", pr.service, got)
		}
	}
	// Still answering Checks and serving HTTP during the drain delay.
	resp, err := authv3.NewAuthorizationClient(authzConn).Check(ctx, checkReq("nothing.example.com", "/"))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Errorf("Check during the drain = %v, %v; want a no_application deny", resp, err)
	}
	if code, _ := p.get(t, "/.well-known/jwks.json"); code != http.StatusOK {
		t.Errorf("JWKS during the drain: %d", code)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown returned during the drain delay: %v", err)
	default:
	}
	close(p.drainCut)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get("http://" + p.httpAddr + "/readyz"); err == nil {
		t.Error("the HTTP listener still answers after shutdown")
	}
}

// waitFor polls cond (every 10ms, for up to 10s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDebugListener: --debug-addr serves the Go profiles on their own
// listener, and no other listener serves them.
func TestDebugListener(t *testing.T) {
	off := startInProcess(t, nil)
	if code, _ := off.get(t, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("HTTP listener serves /debug/pprof/ without --debug-addr: %d", code)
	}
	if off.debugSrv != nil {
		t.Error("a debug server runs without --debug-addr")
	}

	on := startInProcess(t, nil, func(c *serveConfig) { c.DebugAddr = "127.0.0.1:0" })
	if code, _ := on.get(t, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("HTTP listener serves /debug/pprof/ with --debug-addr: %d", code)
	}
	code, body := httpGet(t, "http://"+on.debugAddr+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("debug listener: %d %.200q", code, body)
	}
	code, _ = httpGet(t, "http://"+on.debugAddr+"/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK {
		t.Fatalf("goroutine profile: %d", code)
	}
	if err := on.shutdown(); err != nil {
		t.Fatal(err)
	}
}

// TestAdminKeyFileOnlyForAnEmptyStore: the bootstrap admin key file is read
// only while the store has no admin key, so a placeholder left in it (a
// Kubernetes Secret rotated away, say) does not stop a later start; on an
// empty store it is checked and a bad one refused.
func TestAdminKeyFileOnlyForAnEmptyStore(t *testing.T) {
	first := startInProcess(t, nil)
	dir := first.cfg.DataDir
	if err := first.shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first.cfg.AdminKeyFile, []byte("REPLACE_WITH_A_GATEHOUSE_ADMIN_KEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := startInProcess(t, nil, func(c *serveConfig) { c.DataDir = dir })
	if err := again.shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg := defaultServeConfig()
	cfg.DataDir = t.TempDir()
	cfg.AuthzAddr, cfg.AdminAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SigningAlg = "ES256"
	cfg.AdminKeyFile = first.cfg.AdminKeyFile // the placeholder
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s, err := startServer(cfg, newLogger(io.Discard, "info", "json"), time.Now)
	if err == nil {
		s.shutdown()
		t.Fatal("an empty store started with a placeholder admin key file")
	}
	if !strings.Contains(err.Error(), "not a gatehouse admin key") {
		t.Fatalf("error %q does not say the admin key file is bad", err)
	}
}

func TestDefaultIssuer(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	for addr, want := range map[string]string{
		"127.0.0.1:9003":  "http://127.0.0.1:9003",
		"[::1]:9003":      "http://[::1]:9003",
		"10.1.2.3:80":     "http://10.1.2.3:80",
		"0.0.0.0:9003":    "http://" + net.JoinHostPort(host, "9003"),
		"[::]:9003":       "http://" + net.JoinHostPort(host, "9003"),
		":9003":           "http://" + net.JoinHostPort(host, "9003"),
		"gatehouse:9003":  "http://gatehouse:9003",
		"not-a-host-port": "http://not-a-host-port",
	} {
		if got := defaultIssuer(addr); got != want {
			t.Errorf("defaultIssuer(%q) = %q, want %q", addr, got, want)
		}
	}
}

// anyValidToken is the include rule "any valid service token".
func anyValidToken() []*adminv1.Rule {
	return []*adminv1.Rule{{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}}}
}

// createAnyTokenApp creates an application on domain whose one policy
// (non_identity) lets in any valid service token.
func createAnyTokenApp(t *testing.T, client adminv1.AdminServiceClient, ctx context.Context, name, domain string) *adminv1.Application {
	t.Helper()
	app, err := client.CreateApplication(ctx, &adminv1.CreateApplicationRequest{Name: name, Domains: []string{domain}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{
		Application: app.GetId(), Name: "any token", Decision: "non_identity", Include: anyValidToken(),
	}); err != nil {
		t.Fatal(err)
	}
	return app
}
