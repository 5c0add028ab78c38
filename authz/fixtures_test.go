package authz

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

const fixtureDir = "../testdata/checkrequests"

// loadFixture reads a CheckRequest fixture and substitutes its
// placeholders: in the JSON text, and in header_map raw_value bytes (base64
// in the file, so the text replacement cannot reach them).
func loadFixture(tb testing.TB, name string, sub map[string]string) *authv3.CheckRequest {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	for k, v := range sub {
		s = strings.ReplaceAll(s, k, v)
	}
	req := &authv3.CheckRequest{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal([]byte(s), req); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	for _, hv := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		for k, v := range sub {
			hv.RawValue = bytes.ReplaceAll(hv.RawValue, []byte(k), []byte(v))
		}
	}
	return req
}

// fixtureWorld has one token allowed (non_identity, service_token rule) on
// every application the fixtures address.
type fixtureWorld struct {
	*world
	tok    *tokens.ServiceToken
	secret string
	apps   map[string]*policy.Application // by name
}

func newFixtureWorld(tb testing.TB, mods ...func(*Config)) *fixtureWorld {
	w := &fixtureWorld{world: newWorld(tb, mods...), apps: map[string]*policy.Application{}}
	w.tok, w.secret = w.token("fixture-client")
	for name, domain := range map[string]string{
		"app":     "app.example.com",
		"api":     "api.example.com",
		"billing": "billing.example.com",
		"orders":  "orders.api.svc.cluster.local",
	} {
		a := w.app(name, domain)
		w.policy(a, policy.NonIdentity, tokenRule(w.tok))
		w.apps[name] = a
	}
	w.publish()
	return w
}

type fixtureWant struct {
	allow  bool
	app    string // application that decides
	reason Reason
	viaJWT bool // authenticated by a session JWT (no set-cookie expected)
	header string
}

func TestFixtures(t *testing.T) {
	wants := map[string]fixtureWant{
		"h1_get_service_token.json":          {allow: true, app: "app"},
		"h2_post_tls_with_body.json":         {allow: true, app: "api"},
		"h1_client_id_only.json":             {reason: ReasonIncompleteCredentials},
		"h1_mixed_case_client_headers.json":  {allow: true, app: "app"},
		"h1_browser_cookie_jwt.json":         {allow: true, app: "app", viaJWT: true},
		"h1_cf_access_token_header.json":     {allow: true, app: "app", viaJWT: true},
		"h1_raw_header_map.json":             {allow: true, app: "app"},
		"mtls_spiffe_peer_certificate.json":  {allow: true, app: "orders"},
		"h1_query_string_in_path.json":       {allow: true, app: "app"},
		"h1_authority_with_port.json":        {allow: true, app: "app"},
		"h1_context_extensions.json":         {allow: true, app: "billing"},
		"h1_single_json_header.json":         {reason: ReasonMissingCredentials},
		"malformed_no_http_attributes.json":  {reason: ReasonMalformedRequest},
		"h1_single_json_header.json#header":  {allow: true, app: "app", header: "authorization"},
		"h1_single_json_header.json#foreign": {reason: ReasonMissingCredentials, header: "x-gatehouse-credentials"},
	}
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	for _, f := range files {
		if _, ok := wants[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expectation in TestFixtures", filepath.Base(f))
		}
	}

	w := newFixtureWorld(t)
	client := grpcClient(t, w.srv)
	ctx := context.Background()

	// The JWT the session fixtures present is the one a service-token
	// request to app.example.com was given: the real flow.
	first, err := client.Check(ctx, loadFixture(t, "h1_get_service_token.json", map[string]string{
		"{{CLIENT_ID}}": w.tok.ClientID, "{{CLIENT_SECRET}}": w.secret,
	}))
	if err != nil {
		t.Fatal(err)
	}
	jwt, _ := wantAllowToken(t, first)
	sub := map[string]string{"{{CLIENT_ID}}": w.tok.ClientID, "{{CLIENT_SECRET}}": w.secret, "{{JWT}}": jwt}

	names := make([]string, 0, len(wants))
	for n := range wants {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		want := wants[name]
		t.Run(name, func(t *testing.T) {
			file, _, _ := strings.Cut(name, "#")
			app := w.apps["app"]
			// Like the admin API: every change bumps UpdatedAt (the JWT
			// cache relies on it).
			app.ServiceTokenHeader = want.header
			w.clock.Advance(time.Second)
			app.UpdatedAt = w.now()
			w.publish()
			t.Cleanup(func() {
				app.ServiceTokenHeader = ""
				app.UpdatedAt = w.now()
				w.publish()
			})

			resp, err := client.Check(ctx, loadFixture(t, file, sub))
			if err != nil {
				t.Fatalf("Check returned a gRPC error (Envoy would apply failure_mode_allow): %v", err)
			}
			if !want.allow {
				wantDeny(t, resp, want.reason)
				return
			}
			got, cookie := wantAllowToken(t, resp)
			w.verifyJWT(got, w.apps[want.app], w.tok)
			if name := resp.GetDynamicMetadata().GetFields()[metaApplication].GetStringValue(); name != want.app {
				t.Errorf("application = %q, want %q", name, want.app)
			}
			if want.viaJWT {
				if cookie != nil {
					t.Errorf("set-cookie on a session-JWT request: %v", cookie)
				}
			} else {
				if cookie == nil || !strings.HasPrefix(cookie.GetHeader().GetValue(), "CF_Authorization="+got+"; Path=/; Expires=") {
					t.Errorf("set-cookie = %v, want CF_Authorization with the JWT", cookie)
				}
			}
			rm := resp.GetOkResponse().GetHeadersToRemove()
			if want.header != "" && !slices.Contains(rm, want.header) {
				t.Errorf("headers_to_remove = %v, want the credential header %q", rm, want.header)
			}
			if want.header == "" && len(rm) != 1 {
				t.Errorf("headers_to_remove = %v, want only %s", rm, headerClientSecret)
			}
			// Nothing secret reaches the metadata.
			meta, _ := protojson.Marshal(resp.GetDynamicMetadata())
			if strings.Contains(string(meta), w.secret) || strings.Contains(string(meta), got) {
				t.Errorf("dynamic metadata leaks a credential: %s", meta)
			}
		})
	}
	if logs := w.logs.String(); strings.Contains(logs, w.secret) || strings.Contains(logs, jwt) {
		t.Errorf("decision log contains a secret or a JWT")
	}
}
