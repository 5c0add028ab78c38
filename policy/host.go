package policy

import (
	"net/netip"
	"strings"
)

// NormalizeHost turns an HTTP :authority (or Host) value into the form
// application domains are stored in: ASCII lower-case, the port removed and
// one trailing dot removed. A bracketed IPv6 literal loses its brackets and
// is written in canonical (RFC 5952) form: "[2001:DB8::1]:8443" becomes
// "2001:db8::1".
//
// It never fails: a value that is not a valid host simply matches no
// application. It leans towards matching: anything after a single ':' is
// treated as a port, whatever it contains, so "app.example.com:x" is still
// routed to app.example.com's policies. A host that is already normal is
// returned as is, without allocating.
func NormalizeHost(h string) string {
	if len(h) > 0 && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			if s, ok := canonicalIPv6(h[1:i]); ok {
				return s
			}
		}
		// A malformed literal: keep it whole so it matches nothing.
		return lowerASCII(h)
	}
	// One colon is a port separator; several mean a bare IPv6 address
	// (invalid in :authority, but left alone so it cannot be mangled into
	// something that matches).
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	}
	if strings.HasSuffix(h, ".") {
		h = h[:len(h)-1]
	}
	return lowerASCII(h)
}

// canonicalIPv6 reports the RFC 5952 text of an IPv6 address without a zone,
// returning s itself when it is already canonical.
func canonicalIPv6(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", false
	}
	var buf [64]byte
	b := a.AppendTo(buf[:0])
	if string(b) == s {
		return s, true
	}
	return string(b), true
}

// lowerASCII lower-cases ASCII letters only: host names are compared in
// their ASCII (IDNA "xn--") form, and Unicode case folding would let two
// different byte strings match the same domain.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
