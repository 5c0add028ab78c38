package authz

import (
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// keysCacheControl lets relying parties cache the key documents briefly: a
// new key is published before it signs anything, so five minutes is safe.
const keysCacheControl = "max-age=300"

var emptyJWKS = []byte(`{"keys":[]}`)

// JWKSHandler serves the published signing keys as a JWKS document
// ({"keys":[...]}), for upstreams validating cf-access-jwt-assertion.
func (s *Server) JWKSHandler() http.Handler {
	return s.keysHandler((*tokens.KeySet).JWKS)
}

// CloudflareCertsHandler serves the keys in the shape of Cloudflare Access's
// /cdn-cgi/access/certs (keys, public_cert, public_certs), so code written
// for Cloudflare can point at gatehouse unchanged.
func (s *Server) CloudflareCertsHandler() http.Handler {
	return s.keysHandler((*tokens.KeySet).CloudflareCerts)
}

func (s *Server) keysHandler(doc func(*tokens.KeySet) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := emptyJWKS
		if ks := s.snap.Load().keys; ks != nil {
			body = doc(ks)
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", keysCacheControl)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if req.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
