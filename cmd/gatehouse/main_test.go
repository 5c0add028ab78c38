package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// testKey is the admin key the fake accepts; no output may ever contain it.
const testKey = "ghak_TESTadminKEY0123456789abcdefXYZ"

// testNow is the clock of every test run.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// call is one request the fake received.
type call struct {
	method string
	req    proto.Message
	auth   string // the authorization metadata
}

// fakeAdmin is an AdminService that records requests and answers with the
// handlers a test installs (Unimplemented otherwise). It rejects any key but
// testKey with Unauthenticated, as the real server does.
type fakeAdmin struct {
	adminv1.UnimplementedAdminServiceServer
	addr string

	mu       sync.Mutex
	calls    []call
	handlers map[string]func(proto.Message) (proto.Message, error)
	backup   func(adminv1.AdminService_BackupServer) error
}

// startFake serves a fakeAdmin on a loopback TCP listener.
func startFake(t *testing.T, opts ...grpc.ServerOption) *fakeAdmin {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{addr: lis.Addr().String(), handlers: map[string]func(proto.Message) (proto.Message, error){}}
	srv := grpc.NewServer(opts...)
	adminv1.RegisterAdminServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f
}

// on installs the handler of method.
func on[Req, Resp proto.Message](f *fakeAdmin, method string, h func(Req) (Resp, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[method] = func(m proto.Message) (proto.Message, error) { return h(m.(Req)) }
}

func (f *fakeAdmin) record(ctx context.Context, method string, req proto.Message) error {
	md, _ := metadata.FromIncomingContext(ctx)
	auth := strings.Join(md.Get("authorization"), ",")
	f.mu.Lock()
	f.calls = append(f.calls, call{method: method, req: proto.Clone(req), auth: auth})
	f.mu.Unlock()
	if auth != "Bearer "+testKey {
		return status.Error(codes.Unauthenticated, "admin key not recognised")
	}
	return nil
}

func handle[Resp proto.Message](f *fakeAdmin, ctx context.Context, method string, req proto.Message) (Resp, error) {
	var zero Resp
	if err := f.record(ctx, method, req); err != nil {
		return zero, err
	}
	f.mu.Lock()
	h := f.handlers[method]
	f.mu.Unlock()
	if h == nil {
		return zero, status.Errorf(codes.Unimplemented, "fake: no handler for %s", method)
	}
	resp, err := h(req)
	if err != nil {
		return zero, err
	}
	return resp.(Resp), nil
}

// methods returns the methods called, in order.
func (f *fakeAdmin) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ms []string
	for _, c := range f.calls {
		ms = append(ms, c.method)
	}
	return ms
}

// last returns the last request to method.
func lastReq[Req proto.Message](t *testing.T, f *fakeAdmin, method string) Req {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i].method == method {
			return f.calls[i].req.(Req)
		}
	}
	t.Fatalf("no %s call; calls: %v", method, f.calls)
	var zero Req
	return zero
}

func (f *fakeAdmin) CreateServiceToken(ctx context.Context, r *adminv1.CreateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "CreateServiceToken", r)
}
func (f *fakeAdmin) ImportServiceToken(ctx context.Context, r *adminv1.ImportServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "ImportServiceToken", r)
}
func (f *fakeAdmin) ListServiceTokens(ctx context.Context, r *adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
	return handle[*adminv1.ListServiceTokensResponse](f, ctx, "ListServiceTokens", r)
}
func (f *fakeAdmin) GetServiceToken(ctx context.Context, r *adminv1.GetServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "GetServiceToken", r)
}
func (f *fakeAdmin) UpdateServiceToken(ctx context.Context, r *adminv1.UpdateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "UpdateServiceToken", r)
}
func (f *fakeAdmin) RefreshServiceToken(ctx context.Context, r *adminv1.RefreshServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "RefreshServiceToken", r)
}
func (f *fakeAdmin) RotateServiceToken(ctx context.Context, r *adminv1.RotateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "RotateServiceToken", r)
}
func (f *fakeAdmin) SetServiceTokenEnabled(ctx context.Context, r *adminv1.SetServiceTokenEnabledRequest) (*adminv1.ServiceToken, error) {
	return handle[*adminv1.ServiceToken](f, ctx, "SetServiceTokenEnabled", r)
}
func (f *fakeAdmin) DeleteServiceToken(ctx context.Context, r *adminv1.DeleteServiceTokenRequest) (*adminv1.DeleteServiceTokenResponse, error) {
	return handle[*adminv1.DeleteServiceTokenResponse](f, ctx, "DeleteServiceToken", r)
}
func (f *fakeAdmin) CreateApplication(ctx context.Context, r *adminv1.CreateApplicationRequest) (*adminv1.Application, error) {
	return handle[*adminv1.Application](f, ctx, "CreateApplication", r)
}
func (f *fakeAdmin) ListApplications(ctx context.Context, r *adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
	return handle[*adminv1.ListApplicationsResponse](f, ctx, "ListApplications", r)
}
func (f *fakeAdmin) GetApplication(ctx context.Context, r *adminv1.GetApplicationRequest) (*adminv1.Application, error) {
	return handle[*adminv1.Application](f, ctx, "GetApplication", r)
}
func (f *fakeAdmin) UpdateApplication(ctx context.Context, r *adminv1.UpdateApplicationRequest) (*adminv1.Application, error) {
	return handle[*adminv1.Application](f, ctx, "UpdateApplication", r)
}
func (f *fakeAdmin) DeleteApplication(ctx context.Context, r *adminv1.DeleteApplicationRequest) (*adminv1.DeleteApplicationResponse, error) {
	return handle[*adminv1.DeleteApplicationResponse](f, ctx, "DeleteApplication", r)
}
func (f *fakeAdmin) RevokeApplicationSessions(ctx context.Context, r *adminv1.RevokeApplicationSessionsRequest) (*adminv1.Application, error) {
	return handle[*adminv1.Application](f, ctx, "RevokeApplicationSessions", r)
}
func (f *fakeAdmin) CreatePolicy(ctx context.Context, r *adminv1.CreatePolicyRequest) (*adminv1.Policy, error) {
	return handle[*adminv1.Policy](f, ctx, "CreatePolicy", r)
}
func (f *fakeAdmin) ListPolicies(ctx context.Context, r *adminv1.ListPoliciesRequest) (*adminv1.ListPoliciesResponse, error) {
	return handle[*adminv1.ListPoliciesResponse](f, ctx, "ListPolicies", r)
}
func (f *fakeAdmin) GetPolicy(ctx context.Context, r *adminv1.GetPolicyRequest) (*adminv1.Policy, error) {
	return handle[*adminv1.Policy](f, ctx, "GetPolicy", r)
}
func (f *fakeAdmin) UpdatePolicy(ctx context.Context, r *adminv1.UpdatePolicyRequest) (*adminv1.Policy, error) {
	return handle[*adminv1.Policy](f, ctx, "UpdatePolicy", r)
}
func (f *fakeAdmin) DeletePolicy(ctx context.Context, r *adminv1.DeletePolicyRequest) (*adminv1.DeletePolicyResponse, error) {
	return handle[*adminv1.DeletePolicyResponse](f, ctx, "DeletePolicy", r)
}
func (f *fakeAdmin) CheckAccess(ctx context.Context, r *adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) {
	return handle[*adminv1.CheckAccessResponse](f, ctx, "CheckAccess", r)
}
func (f *fakeAdmin) ListSigningKeys(ctx context.Context, r *adminv1.ListSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
	return handle[*adminv1.ListSigningKeysResponse](f, ctx, "ListSigningKeys", r)
}
func (f *fakeAdmin) RotateSigningKeys(ctx context.Context, r *adminv1.RotateSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
	return handle[*adminv1.ListSigningKeysResponse](f, ctx, "RotateSigningKeys", r)
}
func (f *fakeAdmin) CreateAdminKey(ctx context.Context, r *adminv1.CreateAdminKeyRequest) (*adminv1.AdminKey, error) {
	return handle[*adminv1.AdminKey](f, ctx, "CreateAdminKey", r)
}
func (f *fakeAdmin) ListAdminKeys(ctx context.Context, r *adminv1.ListAdminKeysRequest) (*adminv1.ListAdminKeysResponse, error) {
	return handle[*adminv1.ListAdminKeysResponse](f, ctx, "ListAdminKeys", r)
}
func (f *fakeAdmin) RevokeAdminKey(ctx context.Context, r *adminv1.RevokeAdminKeyRequest) (*adminv1.AdminKey, error) {
	return handle[*adminv1.AdminKey](f, ctx, "RevokeAdminKey", r)
}
func (f *fakeAdmin) ListAuditEvents(ctx context.Context, r *adminv1.ListAuditEventsRequest) (*adminv1.ListAuditEventsResponse, error) {
	return handle[*adminv1.ListAuditEventsResponse](f, ctx, "ListAuditEvents", r)
}
func (f *fakeAdmin) Backup(r *adminv1.BackupRequest, stream adminv1.AdminService_BackupServer) error {
	if err := f.record(stream.Context(), "Backup", r); err != nil {
		return err
	}
	f.mu.Lock()
	h := f.backup
	f.mu.Unlock()
	if h == nil {
		return status.Error(codes.Unimplemented, "fake: no backup handler")
	}
	return h(stream)
}

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
}

// invocation describes one CLI run.
type invocation struct {
	env      map[string]string
	stdin    string
	terminal bool
}

// exec runs the CLI as the user would, in-process, and checks that the
// admin key appears in no output.
func (inv invocation) exec(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli{
		stdin:    strings.NewReader(inv.stdin),
		stdout:   &stdout,
		stderr:   &stderr,
		getenv:   func(k string) string { return inv.env[k] },
		now:      func() time.Time { return testNow },
		terminal: func() bool { return inv.terminal },
	}
	r := result{code: c.run(context.Background(), args), stdout: stdout.String(), stderr: stderr.String()}
	if strings.Contains(r.stdout+r.stderr, testKey) {
		t.Errorf("gatehouse %s printed the admin key:\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// env is the environment that points the CLI at f with the right key.
func (f *fakeAdmin) env() map[string]string {
	return map[string]string{envServer: f.addr, envAdminKey: testKey}
}

// run runs the CLI against f with stdin not a terminal.
func (f *fakeAdmin) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return invocation{env: f.env(), stdin: stdin}.exec(t, args...)
}

// ok fails the test unless r succeeded with nothing on stderr.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	return r
}

// fails checks the exit status and that stderr is exactly one line
// starting with "gatehouse: " and containing each of want.
func (r result) fails(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "gatehouse: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one \"gatehouse: \" line: %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not contain %q", r.stderr, w)
		}
	}
}

// jsonObject parses stdout as one protojson object into m.
func jsonObject(t *testing.T, stdout string, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(stdout), m); err != nil {
		t.Fatalf("stdout is not a %T in JSON: %v\n%s", m, err, stdout)
	}
}

// jsonArray parses stdout as a JSON array of protojson objects.
func jsonArray[M proto.Message](t *testing.T, stdout string, newM func() M) []M {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raws); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	ms := make([]M, len(raws))
	for i, raw := range raws {
		ms[i] = newM()
		if err := protojson.Unmarshal(raw, ms[i]); err != nil {
			t.Fatalf("element %d is not a %T: %v", i, ms[i], err)
		}
	}
	return ms
}

func TestRunWithoutArgumentsPrintsOverviewAndFails(t *testing.T) {
	r := invocation{}.exec(t)
	if r.code != exitUsage || !strings.Contains(r.stderr, "token create NAME") || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestUnknownCommands(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"token", "frobnicate"}, {"help", "nope"}, {"-o", "json", "token", "list"}} {
		r := invocation{}.exec(t, args...)
		r.fails(t, exitUsage, "gatehouse help")
	}
	// A group without a verb lists the group's commands.
	r := invocation{}.exec(t, "token")
	if r.code != exitUsage || !strings.Contains(r.stderr, "token rotate TOKEN") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestParseArgsIntersperses(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		pos       []string
		name, dur string
	}{
		{[]string{"NAME", "--duration", "1h"}, []string{"NAME"}, "", "1h"},
		{[]string{"--duration=1h", "NAME", "--name", "x", "EXTRA"}, []string{"NAME", "EXTRA"}, "x", "1h"},
		{[]string{"--duration", "1h", "--", "--name", "x"}, []string{"--name", "x"}, "", "1h"},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, "", ""},
		{nil, nil, "", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		name := fs.String("name", "", "")
		dur := fs.String("duration", "", "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || *name != tc.name || *dur != tc.dur {
			t.Errorf("parseArgs(%q) = %q, %v, name %q, duration %q; want %q, name %q, duration %q", tc.args, pos, err, *name, *dur, tc.pos, tc.name, tc.dur)
		}
	}
}

func TestBearerKeySent(t *testing.T) {
	f := startFake(t)
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{}, nil
	})
	f.run(t, "", "app", "list").ok(t)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 || f.calls[0].auth != "Bearer "+testKey {
		t.Fatalf("calls = %+v", f.calls)
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	r := invocation{env: map[string]string{envAdminKey: testKey}}.exec(t, "token", "list", "--server", addr)
	r.fails(t, exitError)
	if want := "gatehouse: cannot reach the admin API at " + addr + ": is \"gatehouse serve\" running?\n"; r.stderr != want {
		t.Fatalf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestUnauthenticated(t *testing.T) {
	f := startFake(t)
	const wrongKey = "ghak_WRONGkey000000000000000000000"
	env := map[string]string{envServer: f.addr, envAdminKey: wrongKey}
	r := invocation{env: env}.exec(t, "app", "list")
	r.fails(t, exitError, "admin key not recognised (Unauthenticated)", "$GATEHOUSE_ADMIN_KEY")
	if strings.Contains(r.stderr, wrongKey) {
		t.Fatalf("the rejected key was printed: %q", r.stderr)
	}
}

func TestServerErrorIsOneLineWithCode(t *testing.T) {
	f := startFake(t)
	on(f, "CreateServiceToken", func(*adminv1.CreateServiceTokenRequest) (*adminv1.ServiceToken, error) {
		return nil, status.Error(codes.InvalidArgument, `duration: "abc" is not a Go duration`)
	})
	r := f.run(t, "", "token", "create", "x", "--duration", "abc")
	r.fails(t, exitError)
	if want := "gatehouse: duration: \"abc\" is not a Go duration (InvalidArgument)\n"; r.stderr != want {
		t.Fatalf("stderr = %q, want %q", r.stderr, want)
	}
	// A multi-line server message is still one line; an echoed key is masked.
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return nil, status.Error(codes.Internal, "boom\nkey was "+testKey)
	})
	r = f.run(t, "", "app", "list")
	r.fails(t, exitError, "boom key was [admin key] (Internal)")
	// Unavailable from the server itself is its message, not "cannot reach".
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return nil, status.Error(codes.Unavailable, "CheckAccess needs the authorizer")
	})
	f.run(t, "", "app", "list").fails(t, exitError, "gatehouse: CheckAccess needs the authorizer (Unavailable)")
}

func TestTimeout(t *testing.T) {
	f := startFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		<-release // never answers while the client waits
		return &adminv1.ListApplicationsResponse{}, nil
	})
	r := f.run(t, "", "app", "list", "--timeout", "50ms")
	r.fails(t, exitError, "did not answer within 50ms (DeadlineExceeded)")
}

func TestUsageErrors(t *testing.T) {
	f := startFake(t)
	for _, args := range [][]string{
		{"token", "list", "--bogus"},
		{"token", "list", "-o", "yaml"},
		{"token", "list", "--server", "no-port"},
		{"token", "list", "--timeout", "soon"},
		{"token", "create"},
		{"token", "create", "a", "b"},
		{"token", "list", "extra"},
		{"token", "get"},
	} {
		r := f.run(t, "", args...)
		r.fails(t, exitUsage, "gatehouse: "+args[0]+" "+args[1]+": ")
	}
	if ms := f.methods(); len(ms) != 0 {
		t.Fatalf("usage errors reached the server: %v", ms)
	}
}

func TestServerFromEnvAndFlag(t *testing.T) {
	f := startFake(t)
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{}, nil
	})
	// The flag beats the environment.
	env := map[string]string{envServer: "127.0.0.1:1", envAdminKey: testKey}
	invocation{env: env}.exec(t, "app", "list", "--server", f.addr).ok(t)
	r := invocation{env: env}.exec(t, "app", "list")
	r.fails(t, exitError, "cannot reach the admin API at 127.0.0.1:1")
}

func TestAdminKeySources(t *testing.T) {
	f := startFake(t)
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{}, nil
	})
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	os.WriteFile(good, []byte("\n  "+testKey+"\n\n"), 0o600)
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("ghak_not-it\n"), 0o600)
	empty := filepath.Join(dir, "empty.key")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	server := map[string]string{envServer: f.addr}
	withKey := map[string]string{envServer: f.addr, envAdminKey: testKey}
	withBadKey := map[string]string{envServer: f.addr, envAdminKey: "ghak_not-it"}

	invocation{env: withKey}.exec(t, "app", "list").ok(t)
	invocation{env: server}.exec(t, "app", "list", "--admin-key-file", good).ok(t)
	// An explicit --admin-key-file beats the environment.
	invocation{env: withBadKey}.exec(t, "app", "list", "--admin-key-file", good).ok(t)
	invocation{env: withKey}.exec(t, "app", "list", "--admin-key-file", bad).fails(t, exitError, "(Unauthenticated)", "--admin-key-file "+bad)
	invocation{env: server}.exec(t, "app", "list", "--admin-key-file", empty).fails(t, exitError, "is empty")
	invocation{env: server}.exec(t, "app", "list", "--admin-key-file", filepath.Join(dir, "missing")).fails(t, exitError, "reading the admin key", "missing")
	invocation{env: map[string]string{envServer: f.addr, envAdminKey: "two words"}}.exec(t, "app", "list").fails(t, exitError, "white space")

	// Without either, ./data/admin.key.
	t.Chdir(dir)
	invocation{env: server}.exec(t, "app", "list").fails(t, exitError, "no admin key", envAdminKey, "./data/admin.key")
	os.Mkdir("data", 0o700)
	os.WriteFile("data/admin.key", []byte(testKey+"\n"), 0o600)
	invocation{env: server}.exec(t, "app", "list").ok(t)
}

func TestPlaintextOnlyToLoopback(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:9002":              true,
		"127.1.2.3:9002":              true,
		"[::1]:9002":                  true,
		"localhost:9002":              true,
		"LOCALHOST:9002":              true,
		"unix:///run/gh.sock":         true,
		"10.0.0.1:9002":               false,
		"[2001:db8::1]:9002":          false,
		"gatehouse.example:9002":      false,
		"localhost.evil.example:9002": false,
		"0.0.0.0:9002":                false,
	} {
		if got := loopback(target); got != want {
			t.Errorf("loopback(%q) = %v, want %v", target, got, want)
		}
	}
	r := invocation{env: map[string]string{envAdminKey: testKey}}.exec(t, "token", "list", "--server", "10.0.0.1:9002")
	if want := "gatehouse: refusing to send the admin key over plaintext to a non-loopback address; use --tls\n"; r.code != exitError || r.stderr != want {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// testCert makes a self-signed certificate for 127.0.0.1 and writes its PEM
// to a file.
func testCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gatehouse test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

func TestTLS(t *testing.T) {
	cert, caFile := testCert(t)
	f := startFake(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	on(f, "ListApplications", func(*adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
		return &adminv1.ListApplicationsResponse{}, nil
	})
	f.run(t, "", "app", "list", "--ca-file", caFile).ok(t)
	f.run(t, "", "app", "list", "--tls", "--ca-file", caFile).ok(t)
	// The system roots do not know the test CA.
	f.run(t, "", "app", "list", "--tls").fails(t, exitError, "TLS connection to the admin API at "+f.addr+" failed")
	// Plaintext to a TLS server fails, with a message, not a hang.
	f.run(t, "", "app", "list").fails(t, exitError, "does not speak plaintext gRPC", "use --tls")
	f.run(t, "", "app", "list", "--ca-file", filepath.Join(t.TempDir(), "none.pem")).fails(t, exitError, "--ca-file")
}
