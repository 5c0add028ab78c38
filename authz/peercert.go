package authz

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"sync"
)

// maxCertNames bounds the common-name cache; when full it is emptied.
const maxCertNames = 1024

// certNames caches the subject common name of peer certificates. Envoy sends
// the whole URL-encoded PEM on every request of an mTLS connection; parsing
// X.509 each time would cost more than the rest of the Check, and a service
// keeps presenting the same certificate.
type certNames struct {
	mu sync.RWMutex
	m  map[string]string
}

func newCertNames() *certNames {
	return &certNames{m: make(map[string]string)}
}

// commonName returns the subject CN of source.certificate, "" if it has none
// or does not parse.
func (c *certNames) commonName(urlPEM string) string {
	c.mu.RLock()
	cn, ok := c.m[urlPEM]
	c.mu.RUnlock()
	if ok {
		return cn
	}
	cn = parseCommonName(urlPEM)
	c.mu.Lock()
	if len(c.m) >= maxCertNames {
		clear(c.m)
	}
	c.m[strings.Clone(urlPEM)] = cn
	c.mu.Unlock()
	return cn
}

// parseCommonName decodes Envoy's source.certificate: a PEM certificate,
// URL-encoded (newline as %0A, "+" as %2B).
func parseCommonName(urlPEM string) string {
	s, err := url.QueryUnescape(urlPEM)
	if err != nil {
		return ""
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.Subject.CommonName
}
