package authz

import (
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Header and cookie names gatehouse reads or writes. Envoy delivers header
// names in lower case; gatehouse still compares them case-insensitively.
const (
	headerClientID     = "cf-access-client-id"
	headerClientSecret = "cf-access-client-secret"
	headerAccessToken  = "cf-access-token"
	headerAssertion    = "cf-access-jwt-assertion"
	headerCookie       = "cookie"
	headerRequestID    = "x-request-id"
	headerForwardedFor = "x-forwarded-for"
	headerAuthority    = ":authority"
	headerPath         = ":path"
	cookieName         = "CF_Authorization"
)

// credKind says where a request's credential came from.
type credKind uint8

const (
	credNone    credKind = iota
	credHeaders          // cf-access-client-id + cf-access-client-secret
	credCustom           // the application's ServiceTokenHeader (JSON)
	credJWT              // CF_Authorization cookie or cf-access-token
)

// request is the small view of a CheckRequest that a decision needs. It is
// filled by one pass over the headers (no map of all headers is built) and
// holds sub-strings of the request, so it must not outlive it.
type request struct {
	attrs *authv3.AttributeContext
	http  *authv3.AttributeContext_HttpRequest

	host, path string // raw, as Envoy sent them
	requestID  string
	xff        string // x-forwarded-for, repeated entries joined with ","

	clientID, clientSecret string
	nClientID, nSecret     int // non-empty occurrences

	accessToken  string // cf-access-token
	nAccessToken int
	cookieJWT    string // CF_Authorization cookie
	nCookieJWT   int
}

// parse fills r from req. It reports false for a CheckRequest without
// attributes.request.http (an L4 filter, or a broken client).
func (r *request) parse(req *authv3.CheckRequest) bool {
	r.attrs = req.GetAttributes()
	r.http = r.attrs.GetRequest().GetHttp()
	if r.http == nil {
		return false
	}
	if len(r.http.GetHeaders()) > 0 {
		for k, v := range r.http.GetHeaders() {
			r.header(k, v)
		}
	} else {
		for _, hv := range r.http.GetHeaderMap().GetHeaders() {
			if hv == nil || !wanted(hv.GetKey()) {
				continue
			}
			r.header(hv.GetKey(), headerValue(hv))
		}
	}
	// Envoy fills host and path from :authority and :path whatever
	// allowed_headers says; the pseudo-headers are the fallback for clients
	// that only send headers.
	if h := r.http.GetHost(); h != "" {
		r.host = h
	}
	if p := r.http.GetPath(); p != "" {
		r.path = p
	}
	return true
}

// headerValue is a header_map entry's value: raw_value when Envoy sent raw
// bytes (encode_raw_headers), else value.
func headerValue(hv *corev3.HeaderValue) string {
	if raw := hv.GetRawValue(); len(raw) > 0 {
		return string(raw)
	}
	return hv.GetValue()
}

// wanted reports whether r.header would use a header of this name; it lets
// the header_map path skip converting values nobody reads.
func wanted(k string) bool {
	switch len(k) {
	case len(headerPath), len(headerCookie), len(headerAuthority), len(headerRequestID),
		len(headerForwardedFor), len(headerClientID), len(headerClientSecret):
		return true
	}
	return false
}

// header records one header if it is one gatehouse reads. Repeated entries
// (header_map, or keys differing only in case) are counted so the caller can
// refuse them instead of guessing which one the client meant.
func (r *request) header(k, v string) {
	switch len(k) {
	case len(headerPath): // 5
		if strings.EqualFold(k, headerPath) && r.path == "" {
			r.path = v
		}
	case len(headerCookie): // 6
		if strings.EqualFold(k, headerCookie) {
			scanCookies(v, &r.cookieJWT, &r.nCookieJWT)
		}
	case len(headerAuthority): // 10
		if strings.EqualFold(k, headerAuthority) && r.host == "" {
			r.host = v
		}
	case len(headerRequestID): // 12
		if strings.EqualFold(k, headerRequestID) && r.requestID == "" {
			r.requestID = v
		}
	case len(headerForwardedFor): // 15, also cf-access-token
		if strings.EqualFold(k, headerForwardedFor) {
			if r.xff == "" {
				r.xff = v
			} else {
				r.xff = r.xff + "," + v // rare: repeated header_map entries
			}
		} else if strings.EqualFold(k, headerAccessToken) {
			if v = trimOWS(v); v != "" {
				r.accessToken = v
				r.nAccessToken++
			}
		}
	case len(headerClientID): // 19
		if strings.EqualFold(k, headerClientID) {
			if v = trimOWS(v); v != "" {
				r.clientID = v
				r.nClientID++
			}
		}
	case len(headerClientSecret): // 23
		if strings.EqualFold(k, headerClientSecret) {
			if v = trimOWS(v); v != "" {
				r.clientSecret = v
				r.nSecret++
			}
		}
	}
}

// lookup finds a header by name (case-insensitive) in a second pass; it is
// used only for an application's ServiceTokenHeader, known after routing.
// It returns the last non-empty value and how many non-empty entries there
// were.
func (r *request) lookup(name string) (val string, n int) {
	if hs := r.http.GetHeaders(); len(hs) > 0 {
		for k, v := range hs {
			if len(k) == len(name) && strings.EqualFold(k, name) {
				if v = trimOWS(v); v != "" {
					val = v
					n++
				}
			}
		}
		return val, n
	}
	for _, hv := range r.http.GetHeaderMap().GetHeaders() {
		k := hv.GetKey()
		if len(k) == len(name) && strings.EqualFold(k, name) {
			if v := trimOWS(headerValue(hv)); v != "" {
				val = v
				n++
			}
		}
	}
	return val, n
}

// trimOWS trims HTTP optional whitespace (spaces and tabs) at both ends.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// scanCookies finds CF_Authorization in one cookie header value. Pairs are
// separated by ";" and, because Envoy joins repeated headers with ",", also
// by "," (a JWT never contains either). Cookie names are case-sensitive.
func scanCookies(h string, val *string, n *int) {
	for h != "" {
		i := strings.IndexAny(h, ";,")
		var pair string
		if i < 0 {
			pair, h = h, ""
		} else {
			pair, h = h[:i], h[i+1:]
		}
		pair = trimOWS(pair)
		if len(pair) <= len(cookieName) || pair[len(cookieName)] != '=' || pair[:len(cookieName)] != cookieName {
			continue
		}
		v := pair[len(cookieName)+1:]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if v == "" {
			continue
		}
		*val = v
		*n++
	}
}

// sourceIP is the client address for ip rules: the TCP peer, or with
// trustedProxies = N > 0 the N-th x-forwarded-for entry from the right
// (N = 1 is the right-most). When x-forwarded-for has fewer than N entries
// the request did not come through the trusted proxies, so the peer is the
// client. An unparsable entry gives an invalid address (no ip rule matches).
func (r *request) sourceIP(trustedProxies int) netip.Addr {
	if trustedProxies > 0 && r.xff != "" {
		if e, ok := nthFromRight(r.xff, trustedProxies); ok {
			return parseIP(e)
		}
	}
	return parseIP(r.attrs.GetSource().GetAddress().GetSocketAddress().GetAddress())
}

// nthFromRight returns the n-th (1-based) comma-separated entry of list
// counting from the right, trimmed.
func nthFromRight(list string, n int) (string, bool) {
	end := len(list)
	for i := len(list) - 1; i >= -1; i-- {
		if i >= 0 && list[i] != ',' {
			continue
		}
		n--
		if n == 0 {
			return trimOWS(list[i+1 : end]), true
		}
		end = i
	}
	return "", false
}

// parseIP parses an address as Envoy or a proxy writes it: bare, or with a
// port ("1.2.3.4:5", "[::1]:5"); IPv4-mapped IPv6 is unmapped so that IPv4
// CIDRs match it.
func parseIP(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
