// Package checkreq builds the CheckRequests the load benchmark sends, from
// the Envoy-shaped fixtures in testdata/ (copies of the project's
// checkrequests fixtures), and reads and writes the credentials file that
// the seeder and the orchestrator hand to the load generator.
//
// Every request is built before a run starts, so a run measures the server
// and gRPC, not request construction.
package checkreq

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Case is what a request presents.
type Case string

// The benchmark cases.
const (
	// Token presents a valid service token in cf-access-client-id/secret
	// (h1_get_service_token.json): expected allow.
	Token Case = "token"
	// JWT presents a valid session JWT in the CF_Authorization cookie of a
	// browser navigation (h1_browser_cookie_jwt.json): expected allow.
	JWT Case = "jwt"
	// Deny presents a known client id with a well-formed but wrong secret:
	// expected deny.
	Deny Case = "deny"
	// Bypass presents no credential to an application with a bypass policy:
	// expected allow.
	Bypass Case = "bypass"
)

// Cases lists every case in report order.
var Cases = []Case{Token, JWT, Deny, Bypass}

// ParseCase returns the case named s.
func ParseCase(s string) (Case, error) {
	for _, c := range Cases {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: %q (want token, jwt, deny or bypass)", ErrUnknownCase, s)
}

// WantAllow reports whether the case expects an OK CheckResponse.
func (c Case) WantAllow() bool { return c != Deny }

// ErrUnknownCase means a case name is not one of Cases.
var ErrUnknownCase = errors.New("unknown case")

// ErrNoCreds means a case that needs credentials got none (or, for the jwt
// case, none with a jwt).
var ErrNoCreds = errors.New("no usable credentials")

// Cred is one service token's credentials as the benchmark uses them. JWT
// is a session JWT gatehouse minted for the token (empty until captured).
type Cred struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	JWT          string `json:"jwt,omitempty"`
}

// ReadCreds reads a JSON list of Cred.
func ReadCreds(path string) ([]Cred, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c []Cred
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("creds file %s: %w", path, err)
	}
	return c, nil
}

// WriteCreds writes creds as a JSON list, readable by the owner only (the
// file holds client secrets of benchmark tokens).
func WriteCreds(path string, creds []Cred) error {
	b, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

//go:embed testdata/h1_get_service_token.json
var serviceTokenFixture []byte

//go:embed testdata/h1_browser_cookie_jwt.json
var browserCookieFixture []byte

// Target is where requests go.
type Target struct {
	Host string // :authority and attributes.request.http.host
	Path string // :path and attributes.request.http.path
}

// Build returns n requests for case c (n ≥ 1): request i uses creds[i %
// len(creds)], and every request has its own x-request-id and http id, as
// Envoy would send. Token, JWT and Deny need creds; Bypass ignores them.
func Build(c Case, creds []Cred, t Target, n int) ([]*authv3.CheckRequest, error) {
	if n < 1 {
		return nil, fmt.Errorf("request count %d: must be at least 1", n)
	}
	if t.Host == "" || !strings.HasPrefix(t.Path, "/") {
		return nil, fmt.Errorf("target host %q path %q: want a host and a path starting with /", t.Host, t.Path)
	}
	fixture := serviceTokenFixture
	if c == JWT {
		fixture = browserCookieFixture
	}
	// Fill the placeholders with stand-ins so the fixture parses, then set
	// real values per request on clones.
	text := strings.NewReplacer("{{CLIENT_ID}}", "x", "{{CLIENT_SECRET}}", "x", "{{JWT}}", "x").Replace(string(fixture))
	tmpl := &authv3.CheckRequest{}
	if err := protojson.Unmarshal([]byte(text), tmpl); err != nil {
		return nil, fmt.Errorf("fixture: %w", err)
	}
	var pool []Cred
	switch c {
	case Token, Deny:
		pool = creds
	case JWT:
		for _, cr := range creds {
			if cr.JWT != "" {
				pool = append(pool, cr)
			}
		}
	case Bypass:
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownCase, c)
	}
	if c != Bypass && len(pool) == 0 {
		return nil, fmt.Errorf("%w for case %s", ErrNoCreds, c)
	}
	out := make([]*authv3.CheckRequest, n)
	for i := range out {
		r := proto.Clone(tmpl).(*authv3.CheckRequest)
		h := r.GetAttributes().GetRequest().GetHttp()
		hs := h.GetHeaders()
		h.Host, h.Path = t.Host, t.Path
		hs[":authority"], hs[":path"] = t.Host, t.Path
		rid := uuid.NewString()
		hs["x-request-id"] = rid
		h.Id = fmt.Sprint(uint64(i)*2654435761 + 1e18)
		switch c {
		case Token:
			cr := pool[i%len(pool)]
			hs["cf-access-client-id"], hs["cf-access-client-secret"] = cr.ClientID, cr.ClientSecret
		case Deny:
			cr := pool[i%len(pool)]
			wrong, err := tokens.NewSecret(tokens.SecretPrefix)
			if err != nil {
				return nil, err
			}
			hs["cf-access-client-id"], hs["cf-access-client-secret"] = cr.ClientID, wrong
		case JWT:
			cr := pool[i%len(pool)]
			hs["cookie"] = "_ga=GA1.1.1234567890.1767225600; CF_Authorization=" + cr.JWT + "; theme=dark"
		case Bypass:
			delete(hs, "cf-access-client-id")
			delete(hs, "cf-access-client-secret")
		}
		out[i] = r
	}
	return out, nil
}

// ServiceTokenRequest is the token-case request for one credential, for
// callers that need a single request (the orchestrator's JWT capture).
func ServiceTokenRequest(cr Cred, t Target) (*authv3.CheckRequest, error) {
	rs, err := Build(Token, []Cred{cr}, t, 1)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}
