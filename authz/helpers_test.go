package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

const testIssuer = "https://gatehouse.test"

// t0 is the tests' "now".
var t0 = time.Date(2026, 8, 11, 14, 0, 0, 0, time.UTC)

// testClock is an injectable clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Signing keys are generated once per process and algorithm: RSA key
// generation is slow and the tests only need real keys, not fresh ones.
var (
	keyMu    sync.Mutex
	keyCache = map[string]*tokens.SigningKey{}
)

// testKey returns a real signing key; slot distinguishes several keys of
// one algorithm.
func testKey(tb testing.TB, alg tokens.Alg, slot int) *tokens.SigningKey {
	tb.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	name := string(alg) + "/" + string(rune('0'+slot))
	if k := keyCache[name]; k != nil {
		return k
	}
	k, err := tokens.GenerateSigningKey(alg, t0.Add(-time.Hour))
	if err != nil {
		tb.Fatalf("GenerateSigningKey(%s): %v", alg, err)
	}
	keyCache[name] = k
	return k
}

func keySet(tb testing.TB, keys ...*tokens.SigningKey) *tokens.KeySet {
	tb.Helper()
	ks, err := tokens.NewKeySet(keys)
	if err != nil {
		tb.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

// lockedBuffer collects log output from concurrent Checks.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the JSON log lines decoded.
func (l *lockedBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// world is a real server over a real snapshot: tokens from tokens.New,
// applications and policies compiled by policy.Compile, real signing keys.
type world struct {
	tb       testing.TB
	clock    *testClock
	keys     *tokens.KeySet
	toks     []*tokens.ServiceToken
	apps     []*policy.Application
	policies []*policy.Policy
	srv      *Server
	logs     *lockedBuffer
}

func newWorld(tb testing.TB, mods ...func(*Config)) *world {
	tb.Helper()
	w := &world{
		tb:    tb,
		clock: newClock(t0),
		keys:  keySet(tb, testKey(tb, tokens.AlgES256, 0)),
		logs:  &lockedBuffer{},
	}
	cfg := Config{
		Issuer:     testIssuer,
		LogAllowed: true,
		Logger:     slog.New(slog.NewJSONHandler(w.logs, nil)),
		Now:        w.clock.Now,
	}
	for _, m := range mods {
		m(&cfg)
	}
	w.srv = NewServer(cfg, nil)
	return w
}

func (w *world) now() time.Time { return w.clock.Now() }

// token creates an enabled token that never expires.
func (w *world) token(name string) (*tokens.ServiceToken, string) {
	w.tb.Helper()
	return w.tokenFor(name, tokens.Forever, w.now())
}

func (w *world) tokenFor(name string, d tokens.Duration, created time.Time) (*tokens.ServiceToken, string) {
	w.tb.Helper()
	t, secret, err := tokens.New(name, d, created)
	if err != nil {
		w.tb.Fatalf("tokens.New: %v", err)
	}
	w.toks = append(w.toks, t)
	return t, secret
}

// app creates an application with session cookies on and a 24 h session.
func (w *world) app(name string, domains ...string) *policy.Application {
	w.tb.Helper()
	aud, err := policy.NewAUD()
	if err != nil {
		w.tb.Fatal(err)
	}
	a := &policy.Application{
		ID:              tokens.NewID(),
		Name:            name,
		Domains:         domains,
		AUD:             aud,
		SessionDuration: 24 * time.Hour,
		SessionCookie:   true,
		CreatedAt:       w.now(),
		UpdatedAt:       w.now(),
	}
	w.apps = append(w.apps, a)
	return a
}

func (w *world) policy(app *policy.Application, d policy.Decision, include ...policy.Rule) *policy.Policy {
	w.tb.Helper()
	p := &policy.Policy{
		ID:            tokens.NewID(),
		ApplicationID: app.ID,
		Name:          app.Name + "-" + string(d) + "-" + strconv.Itoa(len(w.policies)),
		Decision:      d,
		Precedence:    len(w.policies) + 1,
		Include:       include,
		CreatedAt:     w.now(),
		UpdatedAt:     w.now(),
	}
	w.policies = append(w.policies, p)
	return p
}

// publish compiles the engine and publishes a fresh snapshot.
func (w *world) publish() *Snapshot {
	w.tb.Helper()
	eng, err := policy.Compile(w.apps, w.policies)
	if err != nil {
		w.tb.Fatalf("policy.Compile: %v", err)
	}
	s := NewSnapshot(w.toks, eng, w.keys)
	w.srv.Publish(s)
	return s
}

func (w *world) check(req *authv3.CheckRequest) *authv3.CheckResponse {
	w.tb.Helper()
	resp, err := w.srv.Check(context.Background(), req)
	if err != nil {
		w.tb.Fatalf("Check returned a gRPC error: %v", err)
	}
	if resp == nil {
		w.tb.Fatal("Check returned nil")
	}
	return resp
}

// Rules.
func tokenRule(t *tokens.ServiceToken) policy.Rule {
	return policy.Rule{ServiceToken: &policy.ServiceTokenRule{TokenID: t.ID}}
}
func ipRule(cidr string) policy.Rule { return policy.Rule{IP: &policy.IPRule{IP: cidr}} }
func everyoneRule() policy.Rule      { return policy.Rule{Everyone: &struct{}{}} }
func anyTokenRule() policy.Rule      { return policy.Rule{AnyValidServiceToken: &struct{}{}} }
func principalRule(exact string) policy.Rule {
	return policy.Rule{Principal: &policy.PrincipalRule{Exact: exact}}
}
func commonNameRule(cn string) policy.Rule {
	return policy.Rule{CommonName: &policy.CommonNameRule{CommonName: cn}}
}

// httpReq builds a CheckRequest as Envoy's HTTP filter would: headers map
// with lower-case keys and pseudo-headers, host/path copied, TCP peer
// 10.0.0.1. kv are header name/value pairs.
func httpReq(host, path string, kv ...string) *authv3.CheckRequest {
	h := map[string]string{
		":authority":   host,
		":path":        path,
		":method":      "GET",
		":scheme":      "https",
		"x-request-id": "7b0e4c1a-2f3d-4e5f-9a8b-0c1d2e3f4a5b",
		"user-agent":   "test/1.0",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   "GET",
			Headers:  h,
			Path:     path,
			Host:     host,
			Scheme:   "https",
			Protocol: "HTTP/1.1",
		}},
	}}
}

// tokenReq is a request to app.example.com with the standard headers.
func tokenReq(clientID, secret string) *authv3.CheckRequest {
	return httpReq("app.example.com", "/api/items", headerClientID, clientID, headerClientSecret, secret)
}

// rawReq builds an encode_raw_headers request: header_map, no headers map.
func rawReq(host, path string, kv ...string) *authv3.CheckRequest {
	req := httpReq(host, path)
	http := req.Attributes.Request.Http
	http.Headers = nil
	hm := &corev3.HeaderMap{}
	base := []string{":authority", host, ":path", path, ":method", "GET"}
	for _, list := range [][]string{base, kv} {
		for i := 0; i+1 < len(list); i += 2 {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: list[i], RawValue: []byte(list[i+1])})
		}
	}
	http.HeaderMap = hm
	return req
}

// Response assertions.

func reasonOf(resp *authv3.CheckResponse) string {
	return resp.GetDynamicMetadata().GetFields()[metaReason].GetStringValue()
}

// wantDeny asserts a deny with the status, gRPC code and reason that
// belong together, a JSON body naming the reason and a plain content-type.
func wantDeny(tb testing.TB, resp *authv3.CheckResponse, reason Reason) {
	tb.Helper()
	if got := codes.Code(resp.GetStatus().GetCode()); got != reason.Code() || got == codes.OK {
		tb.Fatalf("status code = %v, want %v (reason %s; metadata reason %q)", got, reason.Code(), reason, reasonOf(resp))
	}
	dr := resp.GetDeniedResponse()
	if dr == nil {
		tb.Fatalf("no denied_response in %v", resp)
	}
	if got := int(dr.GetStatus().GetCode()); got != reason.HTTPStatus() {
		tb.Fatalf("HTTP status = %d, want %d", got, reason.HTTPStatus())
	}
	var body struct{ Error, Reason string }
	if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil {
		tb.Fatalf("deny body %q is not JSON: %v", dr.GetBody(), err)
	}
	if body.Reason != reason.String() {
		tb.Fatalf("deny reason = %q, want %q (body %s)", body.Reason, reason, dr.GetBody())
	}
	wantKind := map[int]string{400: "bad_request", 401: "unauthorized", 403: "forbidden", 503: "unavailable", 500: "internal"}[reason.HTTPStatus()]
	if body.Error != wantKind {
		tb.Fatalf("deny error = %q, want %q", body.Error, wantKind)
	}
	if len(dr.GetHeaders()) != 1 {
		tb.Fatalf("deny headers = %v, want only content-type", dr.GetHeaders())
	}
	h := dr.GetHeaders()[0]
	if h.GetHeader().GetKey() != "content-type" || h.GetHeader().GetValue() != "application/json" || h.GetAppend() != nil {
		tb.Fatalf("deny header = %v, want content-type: application/json with append unset", h)
	}
	if reasonOf(resp) != reason.String() {
		tb.Fatalf("metadata reason = %q, want %q", reasonOf(resp), reason)
	}
}

// wantAllowPlain asserts an allow that carries no identity and strips a
// client-sent assertion (and secret).
func wantAllowPlain(tb testing.TB, resp *authv3.CheckResponse) {
	tb.Helper()
	if resp.GetStatus().GetCode() != 0 {
		tb.Fatalf("status = %v, want OK (metadata reason %q)", resp.GetStatus(), reasonOf(resp))
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		tb.Fatalf("no ok_response in %v", resp)
	}
	if len(ok.GetHeaders()) != 0 || len(ok.GetResponseHeadersToAdd()) != 0 {
		tb.Fatalf("allow without identity adds headers: %v", ok)
	}
	if !slices.Equal(ok.GetHeadersToRemove(), []string{headerAssertion, headerClientSecret}) {
		tb.Fatalf("headers_to_remove = %v, want [%s %s]", ok.GetHeadersToRemove(), headerAssertion, headerClientSecret)
	}
}

// wantAllowToken asserts an allow with a session JWT in the portable
// header form, the secret removed, and returns the JWT and the
// response's set-cookie option (nil if none).
func wantAllowToken(tb testing.TB, resp *authv3.CheckResponse) (jwt string, cookie *corev3.HeaderValueOption) {
	tb.Helper()
	if resp.GetStatus().GetCode() != 0 {
		tb.Fatalf("status = %v, want OK (metadata reason %q)", resp.GetStatus(), reasonOf(resp))
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		tb.Fatalf("no ok_response in %v", resp)
	}
	if len(ok.GetHeaders()) != 1 {
		tb.Fatalf("ok headers = %v, want exactly the assertion", ok.GetHeaders())
	}
	h := ok.GetHeaders()[0]
	if h.GetHeader().GetKey() != headerAssertion {
		tb.Fatalf("ok header key = %q, want %q", h.GetHeader().GetKey(), headerAssertion)
	}
	if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
		tb.Fatalf("assertion header: append_action %v, append %v; want OVERWRITE_IF_EXISTS_OR_ADD and append unset", h.GetAppendAction(), h.GetAppend())
	}
	if !slices.Contains(ok.GetHeadersToRemove(), headerClientSecret) {
		tb.Fatalf("headers_to_remove = %v, want %s in it", ok.GetHeadersToRemove(), headerClientSecret)
	}
	if slices.Contains(ok.GetHeadersToRemove(), headerAssertion) {
		// Legacy Envoy applies removals after additions: this would drop
		// the JWT gatehouse just set.
		tb.Fatalf("headers_to_remove contains %s alongside the injected one", headerAssertion)
	}
	switch n := len(ok.GetResponseHeadersToAdd()); n {
	case 0:
	case 1:
		cookie = ok.GetResponseHeadersToAdd()[0]
		if cookie.GetHeader().GetKey() != "set-cookie" || cookie.GetAppend() == nil || !cookie.GetAppend().GetValue() {
			tb.Fatalf("response header = %v, want set-cookie with append true", cookie)
		}
	default:
		tb.Fatalf("response_headers_to_add = %v", ok.GetResponseHeadersToAdd())
	}
	return h.GetHeader().GetValue(), cookie
}

// verifyJWT checks a JWT Check handed out, with the snapshot's keys.
func (w *world) verifyJWT(jwt string, app *policy.Application, tok *tokens.ServiceToken) *tokens.Claims {
	w.tb.Helper()
	c, err := w.keys.Verify(jwt, testIssuer, w.now())
	if err != nil {
		w.tb.Fatalf("minted JWT does not verify: %v", err)
	}
	if !slices.Equal(c.Audience, []string{app.AUD}) {
		w.tb.Fatalf("aud = %v, want [%s]", c.Audience, app.AUD)
	}
	if c.Type != "app" || c.CommonName != tok.ClientID || c.Subject != "" ||
		c.ServiceTokenID != tok.ID || c.ServiceTokenName != tok.Name {
		w.tb.Fatalf("claims = %+v, want the token's", c)
	}
	return c
}

// grpcClient serves srv on a real grpc-go server over bufconn and returns
// a client for it.
func grpcClient(tb testing.TB, srv *Server) authv3.AuthorizationClient {
	tb.Helper()
	return grpcClientWith(tb, srv)
}

// grpcClientWith is grpcClient with server options.
func grpcClientWith(tb testing.TB, srv *Server, opts ...grpc.ServerOption) authv3.AuthorizationClient {
	tb.Helper()
	return authv3.NewAuthorizationClient(rawConn(tb, srv, opts...))
}
