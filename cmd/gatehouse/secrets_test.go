package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// capture is one piece of output that must hold no secret.
type capture struct{ label, text string }

// TestSecretsNeverLeak runs a token's whole life through the CLI against a
// real `gatehouse serve` process, and a burst of allowed and denied Checks
// through its ext_authz port, while capturing everything an operator or an
// attacker could read: the server's log (at debug level), every CLI
// stdout/stderr (except the three responses whose job is to show a secret
// once: token create, token rotate, admin-key create), the audit log, the
// Check responses (deny bodies, dynamic metadata), the public HTTP
// endpoints (/metrics included), and the store file and a backup of it.
// None may hold a client secret (current, previous, legacy), an admin key,
// private key material (the master key; each signing key, unsealed from
// the store afterwards, as PKCS#8 DER raw and in base64, its JWK private
// value, or any PEM "PRIVATE KEY" block) or a JWT.
func TestSecretsNeverLeak(t *testing.T) {
	bin, _ := binaries(t)
	dataDir := t.TempDir()
	srv := startServe(t, bin, dataDir, "--log-level", "debug", "--log-allowed")
	var caps []capture
	add := func(label, text string) { caps = append(caps, capture{label, text}) }

	// cli runs a command whose output must be clean; exempt is for the
	// responses that show a secret once, on purpose.
	cliIn := func(stdin string, exempt bool, args ...string) (string, string, error) {
		t.Helper()
		var in io.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		stdout, stderr, err := srv.cli(t, bin, in, args...)
		if !exempt {
			add("gatehouse "+strings.Join(args, " ")+" (stdout)", stdout)
		}
		add("gatehouse "+strings.Join(args, " ")+" (stderr)", stderr)
		return stdout, stderr, err
	}
	must := func(exempt bool, out any, args ...string) string {
		t.Helper()
		stdout, stderr, err := cliIn("", exempt, args...)
		if err != nil {
			t.Fatalf("gatehouse %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(stdout), out); err != nil {
				t.Fatalf("gatehouse %s: not JSON: %v\n%s", strings.Join(args, " "), err, stdout)
			}
		}
		return stdout
	}
	type tokenOut struct {
		ID           string `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}

	// The token's life, through the CLI.
	var tok tokenOut
	must(true, &tok, "token", "create", "-o", "json", "ci-deploy")
	s1 := tok.ClientSecret
	if !strings.HasPrefix(s1, "ghst_") {
		t.Fatalf("token create: secret %q", s1)
	}
	must(false, nil, "app", "create", "-o", "json", "--domain", "app.test", "--service-token-header", "x-creds", "demo")
	must(false, nil, "policy", "create", "-o", "json", "--decision", "non_identity", "--include", "any_valid_service_token", "demo", "services")
	must(false, nil, "token", "get", "ci-deploy")
	must(false, nil, "token", "get", "-o", "json", tok.ClientID)
	must(false, nil, "token", "list")
	must(false, nil, "token", "list", "-o", "json")

	conn, err := grpc.NewClient(srv.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authz := authv3.NewAuthorizationClient(conn)
	var jwts []string
	check := func(label string, wantAllow bool, headers ...string) {
		t.Helper()
		h := map[string]string{":authority": "app.test", ":path": "/api", ":method": "GET", "x-request-id": "req-" + label}
		for i := 0; i+1 < len(headers); i += 2 {
			h[headers[i]] = headers[i+1]
		}
		resp, err := authz.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 5000}}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: "app.test", Path: "/api", Headers: h}},
		}})
		if err != nil {
			t.Fatalf("Check %s: %v", label, err)
		}
		if allowed := resp.GetStatus().GetCode() == 0; allowed != wantAllow {
			t.Fatalf("Check %s: allowed = %v, want %v (%s)", label, allowed, wantAllow, resp.GetStatus().GetMessage())
		}
		meta, _ := protojson.Marshal(resp.GetDynamicMetadata())
		add("Check "+label+" dynamic metadata", string(meta))
		add("Check "+label+" status", resp.GetStatus().GetMessage())
		if d := resp.GetDeniedResponse(); d != nil {
			b, _ := protojson.Marshal(d)
			add("Check "+label+" denied response", string(b))
		}
		for _, o := range resp.GetOkResponse().GetHeaders() {
			if o.GetHeader().GetKey() == "cf-access-jwt-assertion" {
				jwts = append(jwts, o.GetHeader().GetValue())
			}
		}
		for _, o := range resp.GetOkResponse().GetResponseHeadersToAdd() {
			if v, ok := strings.CutPrefix(o.GetHeader().GetValue(), "CF_Authorization="); ok {
				jwts = append(jwts, v[:strings.IndexByte(v, ';')])
			}
		}
	}
	creds := func(id, secret string) []string {
		return []string{"cf-access-client-id", id, "cf-access-client-secret", secret}
	}
	check("s1", true, creds(tok.ClientID, s1)...)
	if len(jwts) == 0 {
		t.Fatal("no JWT from an allowed Check")
	}
	cookie := jwts[0]

	var rotated tokenOut
	must(true, &rotated, "token", "rotate", "-o", "json", "--grace", "24h", "ci-deploy")
	s2 := rotated.ClientSecret
	if s2 == "" || s2 == s1 {
		t.Fatalf("rotate: secret %q", s2)
	}
	check("s1 in grace", true, creds(tok.ClientID, s1)...)
	check("s2", true, creds(tok.ClientID, s2)...)
	must(false, nil, "token", "refresh", "ci-deploy")
	must(false, nil, "token", "update", "--duration", "720h", "ci-deploy")
	must(false, nil, "token", "disable", "ci-deploy")
	check("disabled", false, creds(tok.ClientID, s2)...)
	check("disabled, previous", false, creds(tok.ClientID, s1)...)
	must(false, nil, "token", "enable", "ci-deploy")

	// A Cloudflare legacy secret, imported from stdin.
	legacyID := randomHex(t, 16) + ".access"
	legacy := randomHex(t, 32)
	if stdout, stderr, err := cliIn(legacy+"\n", false, "token", "import", "-o", "json", "--client-id", legacyID, "legacy"); err != nil {
		t.Fatalf("token import: %v\n%s%s", err, stdout, stderr)
	}
	check("legacy", true, creds(legacyID, legacy)...)
	// A malformed secret to import: refused without echoing it.
	bad := "ghst_" + strings.Repeat("Z", 49)
	if _, _, err := cliIn(bad+"\n", false, "token", "import", "--client-id", randomHex(t, 16)+".access", "bad"); err == nil {
		t.Fatal("importing a malformed secret succeeded")
	}

	// The burst: allowed and denied, every credential form.
	otherSecret := "ghst_" + strings.Repeat("A", 43) // checksum wrong: malformed
	sessions := len(jwts)
	check("s2 again", true, creds(tok.ClientID, s2)...)
	check("json header", true, "x-creds", `{"cf-access-client-id":"`+tok.ClientID+`","cf-access-client-secret":"`+s2+`"}`)
	check("cookie", true, "cookie", "a=b; CF_Authorization="+cookie)
	check("cf-access-token", true, "cf-access-token", cookie)
	check("wrong secret (legacy's)", false, creds(tok.ClientID, legacy)...)
	check("legacy id, the other token's secret", false, creds(legacyID, s2)...)
	check("unknown client id", false, creds(randomHex(t, 16)+".access", s2)...)
	check("malformed secret", false, creds(tok.ClientID, s2[:20])...)
	check("malformed checksum", false, creds(tok.ClientID, otherSecret)...)
	check("id and secret swapped", false, creds(s2, tok.ClientID)...)
	check("secret joined", false, creds(tok.ClientID, s2+","+s1)...)
	check("half pair", false, "cf-access-client-secret", s2)
	check("json header malformed", false, "x-creds", `{"cf-access-client-id":"`+tok.ClientID+`","cf-access-client-secret":"`+s2+`"}x`)
	check("both styles", false, append(creds(tok.ClientID, s2), "x-creds", `{"cf-access-client-id":"`+tok.ClientID+`","cf-access-client-secret":"`+s2+`"}`)...)
	check("cookie tampered", false, "cookie", "CF_Authorization="+cookie[:len(cookie)-4]+"AAAA")
	check("cookie twice", false, "cookie", "CF_Authorization="+cookie+"; CF_Authorization="+cookie)
	check("cookie and token differ", false, "cookie", "CF_Authorization="+cookie, "cf-access-token", jwts[len(jwts)-1]+"x")
	if len(jwts) == sessions {
		t.Fatal("no JWT from the burst")
	}

	// `gatehouse check` reads a secret from stdin and asks the server.
	for _, secret := range []string{s2, otherSecret} {
		if stdout, stderr, err := cliIn(secret+"\n", false, "check", "--host", "app.test", "--path", "/api", "--client-id", tok.ClientID, "--client-secret-stdin"); err != nil && !strings.Contains(stdout+stderr, "deny") {
			t.Logf("gatehouse check: %v\n%s%s", err, stdout, stderr)
		}
	}

	// Admin keys: create (exempt), use, revoke, use again.
	var ak struct {
		Key string `json:"key"`
	}
	must(true, &ak, "admin-key", "create", "-o", "json", "automation")
	if !strings.HasPrefix(ak.Key, "ghak_") {
		t.Fatalf("admin-key create: %q", ak.Key)
	}
	keyFile := filepath.Join(t.TempDir(), "automation.key")
	if err := os.WriteFile(keyFile, []byte(ak.Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(false, nil, "token", "list", "--admin-key-file", keyFile)
	must(false, nil, "admin-key", "list")
	must(false, nil, "admin-key", "list", "-o", "json")
	must(false, nil, "admin-key", "revoke", "automation")
	if _, _, err := cliIn("", false, "token", "list", "--admin-key-file", keyFile); err == nil {
		t.Fatal("a revoked admin key still works")
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	os.WriteFile(wrongKey, []byte("ghak_"+strings.Repeat("B", 49)+"\n"), 0o600)
	cliIn("", false, "token", "list", "--admin-key-file", wrongKey)

	// Signing keys, backup, delete, audit.
	must(false, nil, "keys", "rotate")
	must(false, nil, "keys", "list")
	must(false, nil, "keys", "list", "-o", "json")
	backup := filepath.Join(t.TempDir(), "backup.db")
	must(false, nil, "backup", "--out", backup)
	check("after key rotation (old JWT)", true, "cookie", "CF_Authorization="+cookie)
	must(false, nil, "token", "delete", "--yes", "--force", "ci-deploy")
	check("deleted token", false, creds(tok.ClientID, s2)...)
	check("deleted token's cookie", false, "cookie", "CF_Authorization="+cookie)
	must(false, nil, "token", "delete", "--yes", "--force", legacyID)
	must(false, nil, "audit", "list")
	auditJSON := must(false, nil, "audit", "list", "-o", "json")
	if !strings.Contains(auditJSON, "RotateServiceToken") || !strings.Contains(auditJSON, "CreateAdminKey") {
		t.Errorf("the audit log misses the lifecycle:\n%s", auditJSON)
	}

	// The public HTTP endpoints, /metrics included.
	for _, path := range []string{"/.well-known/jwks.json", "/cdn-cgi/access/certs", "/metrics", "/healthz", "/readyz"} {
		resp, err := http.Get("http://" + srv.httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		add("GET "+path, string(body))
	}

	// Let a last-seen flush run, then stop the server cleanly so the whole
	// log, shutdown included, is in.
	time.Sleep(500 * time.Millisecond)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop on SIGTERM")
	}
	logs := srv.logs.String()
	add("server log", logs)
	if !strings.Contains(logs, `"reason":"wrong_secret"`) || !strings.Contains(logs, `"reason":"allowed_by_policy"`) {
		t.Errorf("the server log does not have the decisions (is this capture real?)\n%s", logs)
	}
	for _, f := range []string{filepath.Join(dataDir, "gatehouse.db"), backup} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		add(f, string(b))
	}

	// What must not be anywhere.
	adminKey := strings.TrimSpace(readFile(t, filepath.Join(dataDir, "admin.key")))
	master := strings.TrimSpace(readFile(t, filepath.Join(dataDir, "master.key")))
	masterRaw, err := hex.DecodeString(master)
	if err != nil || len(masterRaw) != 32 {
		t.Fatalf("master.key is not 32 bytes of hex: %v", err)
	}
	forbidden := map[string]string{
		"client secret s1":                s1,
		"client secret s1 (random part)":  s1[5:],
		"client secret s2":                s2,
		"client secret s2 (random part)":  s2[5:],
		"legacy client secret":            legacy,
		"bootstrap admin key":             adminKey,
		"bootstrap admin key (random)":    adminKey[5:],
		"created admin key":               ak.Key,
		"created admin key (random part)": ak.Key[5:],
		"master key (hex)":                master,
		"master key (raw)":                string(masterRaw),
		"master key (base64)":             base64.StdEncoding.EncodeToString(masterRaw),
		"PEM private key":                 "PRIVATE KEY",
		"session cookie":                  cookie,
		"session cookie (signature)":      cookie[strings.LastIndexByte(cookie, '.')+1:],
		"malformed secret sent to import": bad[5:],
		"wrong admin key sent to the API": strings.Repeat("B", 49),
	}
	for i, j := range jwts {
		forbidden[fmt.Sprintf("JWT #%d", i)] = j
	}
	// The signing keys themselves, in every form they could leak in.
	db, err := store.Open(filepath.Join(dataDir, "gatehouse.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := db.SigningKeys()
	db.Close()
	if err != nil || len(sealed) < 2 {
		t.Fatalf("signing keys in the store: %d, %v (want the first and the rotated one)", len(sealed), err)
	}
	for _, sk := range sealed {
		k, err := tokens.Open(masterRaw, sk)
		if err != nil {
			t.Fatal(err)
		}
		for form, v := range privateKeyForms(t, k.Signer) {
			forbidden["signing key "+sk.KID[:8]+" "+form] = v
		}
	}
	jwtRE := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)
	for _, c := range caps {
		for what, s := range forbidden {
			if s != "" && strings.Contains(c.text, s) {
				t.Errorf("%s contains the %s", c.label, what)
			}
		}
		for _, m := range jwtRE.FindAllString(c.text, -1) {
			if looksLikeJWT(m) {
				t.Errorf("%s contains a JWT: %.40s…", c.label, m)
			}
		}
	}
	t.Logf("checked %d captures (%d bytes of server log) for %d secrets", len(caps), len(logs), len(forbidden))
}

// privateKeyForms are the encodings a private key could leak in: PKCS#8
// DER raw and base64 (std and url), and the private value as a JWK carries
// it (base64url "d"), and raw.
func privateKeyForms(t *testing.T, k crypto.Signer) map[string]string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// A window from the middle of the DER: a partial dump must not pass.
	forms := map[string]string{
		"PKCS#8 DER":       string(der[len(der)/2 : len(der)/2+24]),
		"PKCS#8 base64":    base64.StdEncoding.EncodeToString(der)[8:72],
		"PKCS#8 base64url": base64.RawURLEncoding.EncodeToString(der)[8:72],
	}
	var d []byte
	switch k := k.(type) {
	case *rsa.PrivateKey:
		d = k.D.Bytes()
	case *ecdsa.PrivateKey:
		d, err = k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
	case ed25519.PrivateKey:
		d = k.Seed()
	default:
		t.Fatalf("unexpected key type %T", k)
	}
	forms["JWK d"] = base64.RawURLEncoding.EncodeToString(d)
	forms["raw private value"] = string(d)
	return forms
}

// looksLikeJWT reports whether s's first segment is a base64url JSON object
// with an "alg": a JWT header.
func looksLikeJWT(s string) bool {
	seg, _, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	_, ok := h["alg"]
	return ok
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
