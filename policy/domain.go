package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

const (
	// maxDomainLen bounds a whole "host/path" domain string.
	maxDomainLen = 2048
	// maxHostLen is DNS's limit on a name in text form (no trailing dot).
	maxHostLen = 253
	// maxLabelLen is DNS's limit on one label.
	maxLabelLen = 63
)

// ParseDomain validates an application domain, "host" or
// "host/path-prefix", and returns it in the form Route compares against:
//
//   - host: ASCII lower-case, one trailing dot removed; a wildcard
//     "*.example.com" (matching any name below example.com, not
//     example.com itself) keeps its "*." prefix and needs at least two
//     labels after it; an IPv6 literal is written in brackets
//     ("[2001:db8::1]") and returned without them in canonical form, as
//     NormalizeHost returns it;
//   - pathPrefix: normalised as by NormalizePath, without a trailing slash
//     except for the root "/" (a domain without a path has prefix "/").
//
// Rejected, with ErrInvalidDomain and the reason: an empty domain, spaces
// or control characters, non-ASCII (use the IDNA "xn--" form), a scheme, a
// port, a query or fragment, a '*' anywhere but as the whole left-most
// label, "*" alone or "*.com", empty labels, labels longer than 63 bytes or
// with characters other than letters, digits, '-' and '_', a numeric
// top-level label that is not part of an IPv4 address, ';' in the path (raw
// or %3B), and a path NormalizePath rejects. The path may use
// percent-escapes for any other byte ("/caf%C3%A9").
func ParseDomain(d string) (host, pathPrefix string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("%w %s: %s", ErrInvalidDomain, quoteShort(d), fmt.Sprintf(format, args...))
	}
	switch {
	case d == "":
		return "", "", fmt.Errorf("%w: empty", ErrInvalidDomain)
	case len(d) > maxDomainLen:
		return bad("longer than %d bytes", maxDomainLen)
	case strings.Contains(d, "://"):
		return bad("must not include a scheme; write host[/path]")
	}
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case c <= ' ' || c == 0x7f:
			return bad("space or control character at offset %d", i)
		case c >= 0x80:
			return bad("non-ASCII host or path; use the IDNA (xn--) form and percent-encoding")
		case c == '?':
			return bad("a query (?) is not allowed")
		case c == '#':
			return bad("a fragment (#) is not allowed")
		}
	}
	h, _, hasPath := strings.Cut(d, "/")
	host, why := parseHost(h)
	if why != "" {
		return bad("%s", why)
	}
	pathPrefix = "/"
	if hasPath {
		np, err := NormalizePath(d[len(h):])
		if err != nil {
			return "", "", fmt.Errorf("%w %s: path: %w", ErrInvalidDomain, quoteShort(d), err)
		}
		// Checked after decoding, so that "%3B" is caught too: Route
		// ignores path parameters, so a prefix containing one could
		// never match.
		if strings.IndexByte(np, ';') >= 0 {
			return bad("path parameters (;) are not allowed in a path prefix")
		}
		if len(np) > 1 {
			np = strings.TrimSuffix(np, "/")
		}
		pathPrefix = np
	}
	return host, pathPrefix, nil
}

// parseHost returns the normalised host, or a reason it is invalid.
func parseHost(h string) (string, string) {
	if h == "" {
		return "", "empty host"
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		switch {
		case end < 0:
			return "", "unterminated IPv6 literal"
		case end != len(h)-1:
			if h[end+1] == ':' {
				return "", "a port is not allowed"
			}
			return "", "unexpected characters after IPv6 literal"
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "invalid IPv6 literal"
		}
		return a.String(), ""
	}
	if strings.IndexByte(h, ':') >= 0 {
		if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
			return "", "an IPv6 address must be in brackets: [" + h + "]"
		}
		return "", "a port is not allowed"
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) > maxHostLen {
		return "", fmt.Sprintf("host longer than %d bytes", maxHostLen)
	}
	wildcard := false
	rest := h
	if strings.HasPrefix(h, "*.") {
		wildcard = true
		rest = h[2:]
	}
	if strings.IndexByte(rest, '*') >= 0 || h == "*" {
		if h == "*" {
			return "", "a wildcard needs a domain after it (\"*.example.com\")"
		}
		return "", "wildcard must be the whole left-most label"
	}
	labels := 0
	last := ""
	for label := range strings.SplitSeq(rest, ".") {
		if why := checkLabel(label); why != "" {
			return "", why
		}
		labels++
		last = label
	}
	if wildcard && labels < 2 {
		return "", "a wildcard needs at least two labels after \"*.\" (\"*.example.com\", not \"*.com\")"
	}
	if isDigits(last) {
		if a, err := netip.ParseAddr(rest); err == nil && a.Is4() && !wildcard {
			return a.String(), ""
		}
		return "", "numeric top-level label (not a dotted-quad IPv4 address)"
	}
	return lowerASCII(h), ""
}

func checkLabel(l string) string {
	switch {
	case l == "":
		return "empty label"
	case len(l) > maxLabelLen:
		return fmt.Sprintf("label longer than %d bytes", maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Sprintf("label starts or ends with '-': %q", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Sprintf("invalid character %q in label %q", c, l)
		}
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// quoteShort quotes s for an error message, cutting it at 80 bytes so an
// enormous input does not become an enormous error.
func quoteShort(s string) string {
	const max = 80
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}

// FormatDomain is the inverse of ParseDomain: it writes a parsed host and
// path prefix back as an ASCII domain string, bracketing an IPv6 host,
// percent-encoding spaces, control and non-ASCII bytes of the prefix, and
// leaving out the root prefix. ParseDomain(FormatDomain(host, prefix))
// returns host and prefix again; store this form to keep records valid.
func FormatDomain(host, pathPrefix string) string {
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if pathPrefix == "" || pathPrefix == "/" {
		return host
	}
	var b strings.Builder
	b.Grow(len(host) + len(pathPrefix))
	b.WriteString(host)
	for i := 0; i < len(pathPrefix); i++ {
		if c := pathPrefix[i]; c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
