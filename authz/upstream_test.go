package authz

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// publicKeyFromJWK is what an upstream written against Cloudflare's docs
// does with a JWKS entry: nothing from gatehouse's packages.
func publicKeyFromJWK(tb testing.TB, k map[string]string) any {
	tb.Helper()
	b64 := func(field string) []byte {
		v, err := base64.RawURLEncoding.DecodeString(k[field])
		if err != nil || len(v) == 0 {
			tb.Fatalf("JWK %s: bad %q: %v", k["kid"], field, err)
		}
		return v
	}
	switch k["kty"] {
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(b64("n")), E: int(new(big.Int).SetBytes(b64("e")).Int64())}
	case "EC":
		if k["crv"] != "P-256" {
			tb.Fatalf("EC curve %q", k["crv"])
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, b64("x")...), b64("y")...))
		if err != nil {
			tb.Fatal(err)
		}
		return pub
	case "OKP":
		if k["crv"] != "Ed25519" {
			tb.Fatalf("OKP curve %q", k["crv"])
		}
		return ed25519.PublicKey(b64("x"))
	}
	tb.Fatalf("unknown kty %q", k["kty"])
	return nil
}

func httpGet(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// TestUpstreamVerifiesWithJWKSOnly plays the upstream: it receives
// cf-access-jwt-assertion and validates it with the JWKS document fetched
// over HTTP, as Cloudflare tells origins to (signature by kid, iss, aud).
func TestUpstreamVerifiesWithJWKSOnly(t *testing.T) {
	for _, alg := range []tokens.Alg{tokens.AlgRS256, tokens.AlgES256, tokens.AlgEdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			b := newBase(t)
			b.keys = keySet(t, testKey(t, alg, 0))
			b.publish()
			web := httptest.NewServer(b.srv.JWKSHandler())
			defer web.Close()

			assertion, _ := wantAllowToken(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))

			resp, body := httpGet(t, web.URL)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
			var doc struct{ Keys []map[string]string }
			if err := json.Unmarshal(body, &doc); err != nil || len(doc.Keys) == 0 {
				t.Fatalf("JWKS %s: %v", body, err)
			}
			keys := map[string]map[string]string{}
			for _, k := range doc.Keys {
				if k["use"] != "sig" || k["alg"] != string(alg) || len(k["kid"]) != 64 {
					t.Errorf("JWK %v", k)
				}
				keys[k["kid"]] = k
			}

			tok, err := jwt.Parse(assertion, func(tok *jwt.Token) (any, error) {
				kid, _ := tok.Header["kid"].(string)
				k, ok := keys[kid]
				if !ok {
					return nil, fmt.Errorf("kid %q not in JWKS", kid)
				}
				return publicKeyFromJWK(t, k), nil
			},
				jwt.WithValidMethods([]string{string(alg)}),
				jwt.WithIssuer(testIssuer),
				jwt.WithAudience(b.app.AUD),
				jwt.WithExpirationRequired(),
				jwt.WithTimeFunc(b.now))
			if err != nil {
				t.Fatalf("upstream rejects the assertion: %v", err)
			}
			claims := tok.Claims.(jwt.MapClaims)
			if claims["type"] != "app" || claims["common_name"] != b.alpha.ClientID || claims["sub"] != "" ||
				claims["service_token_id"] != b.alpha.ID || tok.Header["typ"] != "JWT" {
				t.Errorf("claims %v header %v", claims, tok.Header)
			}
			// Another application's AUD must not accept it.
			_, err = jwt.Parse(assertion, func(*jwt.Token) (any, error) {
				for _, k := range keys {
					return publicKeyFromJWK(t, k), nil
				}
				return nil, nil
			}, jwt.WithAudience(strings.Repeat("0", 64)), jwt.WithTimeFunc(b.now))
			if err == nil {
				t.Error("assertion accepted for another audience")
			}
		})
	}
}

func TestKeyHandlers(t *testing.T) {
	b := newBase(t)
	for name, h := range map[string]http.Handler{"jwks": b.srv.JWKSHandler(), "certs": b.srv.CloudflareCertsHandler()} {
		t.Run(name, func(t *testing.T) {
			web := httptest.NewServer(h)
			defer web.Close()
			resp, body := httpGet(t, web.URL)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
				resp.Header.Get("Cache-Control") != "max-age=300" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
			want := b.keys.JWKS()
			if name == "certs" {
				want = b.keys.CloudflareCerts()
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body = %s, want the key set's document", body)
			}
			if name == "certs" {
				var doc struct {
					PublicCert  struct{ KID, Cert string }   `json:"public_cert"`
					PublicCerts []struct{ KID, Cert string } `json:"public_certs"`
				}
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatal(err)
				}
				blk, _ := pem.Decode([]byte(doc.PublicCert.Cert))
				if blk == nil {
					t.Fatalf("public_cert is not PEM: %q", doc.PublicCert.Cert)
				}
				if _, err := x509.ParseCertificate(blk.Bytes); err != nil || doc.PublicCert.KID != b.keys.ActiveAt(b.now()).KID {
					t.Errorf("public_cert: %v kid %s", err, doc.PublicCert.KID)
				}
			}

			head, err := http.Head(web.URL)
			if err != nil {
				t.Fatal(err)
			}
			head.Body.Close()
			if head.StatusCode != 200 || head.ContentLength != int64(len(want)) {
				t.Errorf("HEAD: %d, length %d", head.StatusCode, head.ContentLength)
			}
			post, err := http.Post(web.URL, "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			post.Body.Close()
			if post.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST: %d", post.StatusCode)
			}
		})
	}
	t.Run("no keys", func(t *testing.T) {
		srv := NewServer(Config{Issuer: testIssuer}, nil)
		rec := httptest.NewRecorder()
		srv.JWKSHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || rec.Body.String() != `{"keys":[]}` {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("follows Publish", func(t *testing.T) {
		rotated := keySet(t, testKey(t, tokens.AlgEdDSA, 0))
		b.srv.Publish(b.srv.Snapshot().WithKeys(rotated))
		rec := httptest.NewRecorder()
		b.srv.JWKSHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if !bytes.Equal(rec.Body.Bytes(), rotated.JWKS()) {
			t.Error("JWKS not the published key set's")
		}
	})
}

// TestDependencies holds the architecture's line: the hot path never links
// the store, bbolt or the admin API.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "go.etcd.io/bbolt", strings.HasPrefix(dep, "go.etcd.io/bbolt/"),
			dep == "github.com/gatehouse-dev/gatehouse/store", strings.HasPrefix(dep, "github.com/gatehouse-dev/gatehouse/store/"),
			dep == "github.com/gatehouse-dev/gatehouse/admin", strings.HasPrefix(dep, "github.com/gatehouse-dev/gatehouse/admin/"),
			strings.HasPrefix(dep, "github.com/gatehouse-dev/gatehouse/proto/"):
			t.Errorf("authz depends on %s", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/gatehouse-dev/gatehouse/policy") {
		t.Error("go list output does not look like authz's dependencies")
	}
}
