package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// envoyStandIn stands in for Envoy's HTTP ext_authz filter, because no
// Envoy binary can run where these tests run. It does what
// docs/envoy.md (and Envoy's source) say the filter does:
//   - routes as envoy.yaml does: /healthz answered directly (ext_authz
//     disabled on the route), /demo... with context_extensions naming the
//     application, everything else by host and path;
//   - builds the CheckRequest as the HTTP/1 codec and the connection manager
//     leave the request: lower-case header names, repeated headers joined
//     with "," (no space), :authority/:path/:method/:scheme pseudo-headers,
//     x-request-id and x-forwarded-proto added, and, as use_remote_address:
//     true does, the TCP peer appended to x-forwarded-for and set as
//     x-envoy-external-address; the TCP peer as source;
//   - calls Check with a deadline (grpc_service.timeout) and, like
//     envoy.yaml's failure_mode_allow: false + status_on_error 503, answers
//     503 when the call fails;
//   - on a deny returns the DeniedHttpResponse's status (0 → 403), headers
//     and body;
//   - on an allow applies OkHttpResponse headers, headers_to_remove, then
//     forwards to the route's upstream and adds response_headers_to_add.
//
// Header mutations are applied under both Envoy semantics — legacy
// (append_action ignored, unset append = overwrite) and 2026 (append_action
// honoured when append is unset) — and the test fails if the two disagree:
// gatehouse must only send the portable forms.
type envoyStandIn struct {
	t        *testing.T
	authz    authv3.AuthorizationClient
	routes   []standInRoute
	mu       sync.Mutex
	timeout  time.Duration // grpc_service.timeout
	upstream []http.Header // headers each upstream request carried
}

type standInRoute struct {
	prefix   string // path_separated_prefix ("/" matches everything)
	upstream *url.URL
	context  map[string]string // context_extensions
	direct   string            // a direct_response body, ext_authz disabled
}

// matches is Envoy's path_separated_prefix: the prefix, then the end of the
// path or a "/".
func (r *standInRoute) matches(path string) bool {
	if r.prefix == "/" {
		return true
	}
	rest, ok := strings.CutPrefix(path, r.prefix)
	return ok && (rest == "" || rest[0] == '/')
}

func (e *envoyStandIn) setTimeout(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timeout = d
}

func (e *envoyStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	headers := map[string]string{}
	for name, vals := range r.Header {
		headers[strings.ToLower(name)] = strings.Join(vals, ",")
	}
	if headers["x-request-id"] == "" {
		headers["x-request-id"] = uuid.NewString()
	}
	headers["x-forwarded-proto"] = "http"
	peer, _, _ := net.SplitHostPort(r.RemoteAddr)
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + "," + peer
	} else {
		headers["x-forwarded-for"] = peer
	}
	headers["x-envoy-external-address"] = peer
	headers[":authority"] = r.Host
	headers[":path"] = r.URL.RequestURI()
	headers[":method"] = r.Method
	headers[":scheme"] = "http"
	host, port, _ := net.SplitHostPort(r.RemoteAddr)
	portNum, _ := strconv.Atoi(port)

	var route *standInRoute
	for i := range e.routes {
		if e.routes[i].matches(r.URL.Path) {
			route = &e.routes[i]
			break
		}
	}
	if route == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	if route.direct != "" {
		io.WriteString(w, route.direct)
		return
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(portNum)}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: r.Method, Headers: headers, Path: r.URL.RequestURI(), Host: r.Host, Scheme: "http", Protocol: "HTTP/1.1",
		}},
		ContextExtensions:    route.context,
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}}
	e.mu.Lock()
	timeout := e.timeout
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp, err := e.authz.Check(ctx, req)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable) // status_on_error, empty body
		return
	}
	if resp.GetStatus().GetCode() != 0 {
		d := resp.GetDeniedResponse()
		for _, h := range d.GetHeaders() {
			w.Header().Del(h.GetHeader().GetKey())
		}
		for _, h := range d.GetHeaders() {
			w.Header().Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		code := int(d.GetStatus().GetCode())
		if code == 0 {
			code = http.StatusForbidden
		}
		w.WriteHeader(code)
		io.WriteString(w, d.GetBody())
		return
	}
	ok := resp.GetOkResponse()
	legacy, current := r.Header.Clone(), r.Header.Clone()
	for _, h := range ok.GetHeaders() {
		applyLegacy(legacy, h)
		applyCurrent(current, h)
	}
	for _, name := range ok.GetHeadersToRemove() {
		legacy.Del(name)
		current.Del(name)
	}
	if !equalHeaders(legacy, current) {
		e.t.Errorf("OkHttpResponse headers mean different things to legacy and 2026 Envoy:\nlegacy:  %v\ncurrent: %v", legacy, current)
	}
	e.mu.Lock()
	e.upstream = append(e.upstream, current.Clone())
	e.mu.Unlock()

	out, _ := http.NewRequestWithContext(r.Context(), r.Method, route.upstream.String()+r.URL.RequestURI(), r.Body)
	out.Header = current
	out.Host = r.Host
	up, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer up.Body.Close()
	for k, v := range up.Header {
		w.Header()[k] = v
	}
	for _, h := range ok.GetResponseHeadersToAdd() {
		if h.GetAppend() != nil && h.GetAppend().GetValue() {
			w.Header().Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		} else {
			w.Header().Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
	}
	w.WriteHeader(up.StatusCode)
	io.Copy(w, up.Body)
}

// applyLegacy: releases up to 1.36 look only at the deprecated append bool.
func applyLegacy(h http.Header, o *corev3.HeaderValueOption) {
	k, v := o.GetHeader().GetKey(), o.GetHeader().GetValue()
	if o.GetAppend() != nil && o.GetAppend().GetValue() {
		if old := h.Get(k); old != "" {
			h.Set(k, old+","+v)
		}
		return
	}
	h.Set(k, v)
}

// applyCurrent: Envoy after the 2026 rework honours append_action when the
// deprecated append is unset.
func applyCurrent(h http.Header, o *corev3.HeaderValueOption) {
	if o.GetAppend() != nil {
		applyLegacy(h, o)
		return
	}
	k, v := o.GetHeader().GetKey(), o.GetHeader().GetValue()
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h.Add(k, v)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		h.Set(k, v)
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.Get(k) != "" {
			h.Set(k, v)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}

// whoamiReply is what cmd/whoami answers.
type whoamiReply struct {
	Claims  map[string]any `json:"claims"`
	Request struct {
		ClientSecretSeen bool `json:"client_secret_seen"`
	} `json:"request"`
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// TestEndToEnd runs the flow a user follows in the README: real gatehouse
// and whoami processes, the CLI for every admin step, and the Envoy
// stand-in in between.
func TestEndToEnd(t *testing.T) {
	bin, whoamiBin := binaries(t)
	srv := startServe(t, bin, t.TempDir())

	var token struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	srv.mustCLI(t, bin, &token, "token", "create", "-o", "json", "ci-deploy")
	if token.ClientSecret == "" || !strings.HasSuffix(token.ClientID, ".access") {
		t.Fatalf("token create returned %+v", token)
	}
	var app struct {
		ID  string `json:"id"`
		AUD string `json:"aud"`
	}
	srv.mustCLI(t, bin, &app, "app", "create", "-o", "json", "--domain", "app.test", "demo")
	srv.mustCLI(t, bin, nil, "app", "create", "-o", "json", "--domain", "app.test/public", "public")
	srv.mustCLI(t, bin, nil, "policy", "create", "-o", "json", "--decision", "bypass", "--include", "everyone", "public", "open")
	srv.mustCLI(t, bin, nil, "policy", "create", "-o", "json", "--decision", "non_identity", "--include", "service_token="+token.ID, "demo", "ci")

	// whoami: the origin, validating the JWT with only the JWKS URL and aud.
	whoamiAddr := freeAddr(t)
	who := exec.Command(whoamiBin, "--addr", whoamiAddr, "--jwks-url", "http://"+srv.httpAddr+"/.well-known/jwks.json", "--aud", app.AUD, "--issuer", srv.issuer)
	var whoLog syncBuffer
	who.Stdout, who.Stderr = &whoLog, &whoLog
	if err := who.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { who.Process.Kill(); who.Wait() })
	waitHTTP(t, "http://"+whoamiAddr+"/")

	// A plain echo upstream for the bypass route, so the test can see what
	// reached it.
	var publicSeen http.Header
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		publicSeen = r.Header.Clone()
		io.WriteString(w, "public ok")
	}))
	defer public.Close()

	conn, err := grpc.NewClient(srv.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	whoURL, _ := url.Parse("http://" + whoamiAddr)
	publicURL, _ := url.Parse(public.URL)
	standIn := &envoyStandIn{t: t, authz: authv3.NewAuthorizationClient(conn), timeout: 2 * time.Second, routes: []standInRoute{
		{prefix: "/healthz", direct: "ok\n"},
		{prefix: "/demo", upstream: whoURL, context: map[string]string{"application": "demo"}},
		{prefix: "/public", upstream: publicURL},
		{prefix: "/", upstream: whoURL},
	}}
	envoy := httptest.NewServer(standIn)
	defer envoy.Close()

	doHost := func(host, path string, headers map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", envoy.URL+path, nil)
		req.Host = host
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	do := func(path string, headers map[string]string) (*http.Response, []byte) {
		t.Helper()
		return doHost("app.test", path, headers)
	}
	creds := map[string]string{"cf-access-client-id": token.ClientID, "cf-access-client-secret": token.ClientSecret}

	// 1. The two headers: 200 from whoami, claims naming the token, a cookie.
	resp, body := do("/api/items", creds)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the service token: %d %s", resp.StatusCode, body)
	}
	var who1 whoamiReply
	json.Unmarshal(body, &who1)
	if who1.Claims["service_token_name"] != "ci-deploy" || who1.Claims["common_name"] != token.ClientID || who1.Claims["type"] != "app" {
		t.Errorf("whoami claims: %v", who1.Claims)
	}
	if who1.Request.ClientSecretSeen {
		t.Errorf("the client secret reached the origin")
	}
	cookie := sessionCookie(t, resp)

	// 2. The cookie alone: 200.
	resp, body = do("/api/items", map[string]string{"cookie": "CF_Authorization=" + cookie})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the session cookie: %d %s", resp.StatusCode, body)
	}
	// ... and the JWT in cf-access-token: 200.
	resp, body = do("/api/items", map[string]string{"cf-access-token": cookie})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with cf-access-token: %d %s", resp.StatusCode, body)
	}

	// 3. A wrong secret: 401 from gatehouse with a JSON reason.
	resp, body = do("/api/items", map[string]string{"cf-access-client-id": token.ClientID, "cf-access-client-secret": "ghst_" + strings.Repeat("A", 49)})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("content-type"), "application/json") {
		t.Errorf("wrong secret: %d %q %s", resp.StatusCode, resp.Header.Get("content-type"), body)
	}
	if bytes.Contains(body, []byte(token.ClientSecret)) {
		t.Errorf("deny body echoes the secret")
	}
	// No credential at all: 401.
	if resp, body = do("/api/items", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credential: %d %s", resp.StatusCode, body)
	}

	// 4. The bypass path: reachable without a credential; a forged assertion
	// header is stripped before the upstream.
	resp, body = do("/public/page", map[string]string{"cf-access-jwt-assertion": "forged"})
	if resp.StatusCode != http.StatusOK || string(body) != "public ok" {
		t.Errorf("bypass path: %d %s", resp.StatusCode, body)
	}
	if publicSeen.Get("cf-access-jwt-assertion") != "" {
		t.Errorf("a client-sent cf-access-jwt-assertion reached the bypass upstream")
	}

	// The /demo route names its application (context_extensions), so a
	// Host that matches no application's domain still reaches demo's
	// policies; without the credential it is refused by demo, not as
	// unmatched.
	if resp, body = doHost("elsewhere.test", "/demo/x", creds); resp.StatusCode != http.StatusOK {
		t.Errorf("/demo route with context_extensions: %d %s", resp.StatusCode, body)
	}
	if resp, body = doHost("elsewhere.test", "/demonstration", creds); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/demonstration (not the /demo route; elsewhere.test matches no application): %d %s", resp.StatusCode, body)
	}
	// /healthz is Envoy's own: answered without gatehouse or a credential.
	if resp, body = do("/healthz", nil); resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}

	// 5. revoke-sessions: the cookie stops working, the headers still get a
	// new session, and the new cookie works.
	srv.mustCLI(t, bin, nil, "app", "revoke-sessions", "-o", "json", "demo")
	if resp, body = do("/api/items", map[string]string{"cookie": "CF_Authorization=" + cookie}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked session cookie: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1100 * time.Millisecond) // JWT iat has one-second resolution
	resp, body = do("/api/items", creds)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("service token after revoke-sessions: %d %s", resp.StatusCode, body)
	}
	cookie = sessionCookie(t, resp)
	if resp, body = do("/api/items", map[string]string{"cookie": "CF_Authorization=" + cookie}); resp.StatusCode != http.StatusOK {
		t.Errorf("new session cookie after revoke-sessions: %d %s", resp.StatusCode, body)
	}

	// 6. Deleting the token (a policy names it: --force) cuts off both the
	// headers and the cookie at once.
	srv.mustCLI(t, bin, nil, "token", "delete", "--yes", "--force", "-o", "json", token.ID)
	if resp, body = do("/api/items", creds); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deleted token, headers: %d %s", resp.StatusCode, body)
	}
	if resp, body = do("/api/items", map[string]string{"cookie": "CF_Authorization=" + cookie}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deleted token, cookie: %d %s", resp.StatusCode, body)
	}

	// The secret never reached an upstream, and never appeared in a log.
	for i, h := range standIn.upstream {
		if h.Get("cf-access-client-secret") != "" {
			t.Errorf("upstream request %d carried cf-access-client-secret", i)
		}
	}
	if strings.Contains(srv.logs.String(), token.ClientSecret) || strings.Contains(srv.logs.String(), cookie) {
		t.Errorf("the server log contains the client secret or a session JWT")
	}

	// 7. Fail closed: a Check that times out, or a gatehouse that is gone,
	// is status_on_error (503) with an empty body, never the upstream.
	standIn.setTimeout(time.Nanosecond)
	if resp, body = do("/api/items", creds); resp.StatusCode != http.StatusServiceUnavailable || len(body) != 0 {
		t.Errorf("Check timed out: %d %q, want 503 and no body", resp.StatusCode, body)
	}
	standIn.setTimeout(2 * time.Second)
	srv.kill()
	if resp, body = do("/api/items", creds); resp.StatusCode != http.StatusServiceUnavailable || len(body) != 0 {
		t.Errorf("gatehouse down: %d %q, want 503 and no body", resp.StatusCode, body)
	}
	if resp, _ = do("/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while gatehouse is down: %d (Envoy's own health must not depend on gatehouse)", resp.StatusCode)
	}
}

func sessionCookie(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "CF_Authorization" {
			if !c.HttpOnly || !c.Secure || c.Path != "/" {
				t.Errorf("CF_Authorization cookie attributes: %s", c.String())
			}
			return c.Value
		}
	}
	t.Fatalf("no CF_Authorization cookie in %v", resp.Header.Values("Set-Cookie"))
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", u)
}
