package authz

import (
	"encoding/json"
	"strings"
)

// credentials is what a request presents to authenticate, once the
// application (and so its ServiceTokenHeader and SessionCookie) is known.
type credentials struct {
	kind             credKind
	clientID, secret string // credHeaders, credCustom
	jwt              string // credJWT
}

// credentials picks the request's credential for an application whose
// service-token header is customHeader ("" for none) and which accepts
// session JWTs when sessions is set. Anything ambiguous — a header Envoy
// joined from several values, a half pair, both the standard headers and the
// custom one, CF_Authorization set twice — is refused with a reason, never
// guessed at. A JWT is only looked at when no service-token header is present.
func (r *request) credentials(customHeader string, sessions bool) (credentials, Reason) {
	std := r.nClientID > 0 || r.nSecret > 0
	if customHeader != "" {
		v, n := r.lookup(customHeader)
		switch {
		case n > 1:
			return credentials{}, ReasonDuplicateCredentials
		case n == 1 && std:
			return credentials{}, ReasonConflictingCredentials
		case n == 1:
			id, secret, ok := parseCredentialJSON(v)
			if !ok {
				return credentials{}, ReasonMalformedCredentialHeader
			}
			if strings.IndexByte(id, ',') >= 0 || strings.IndexByte(secret, ',') >= 0 {
				return credentials{}, ReasonDuplicateCredentials
			}
			return credentials{kind: credCustom, clientID: id, secret: secret}, ReasonNone
		}
	}
	if std {
		switch {
		case r.nClientID > 1 || r.nSecret > 1,
			strings.IndexByte(r.clientID, ',') >= 0,
			strings.IndexByte(r.clientSecret, ',') >= 0:
			return credentials{}, ReasonDuplicateCredentials
		case r.nClientID == 0 || r.nSecret == 0:
			return credentials{}, ReasonIncompleteCredentials
		}
		return credentials{kind: credHeaders, clientID: r.clientID, secret: r.clientSecret}, ReasonNone
	}
	if !sessions {
		// Strict mode (Cloudflare's strict_service_token_auth): session
		// cookies and tokens are ignored, not errors.
		return credentials{}, ReasonNone
	}
	switch {
	case r.nCookieJWT > 1:
		return credentials{}, ReasonDuplicateCookie
	case r.nAccessToken > 1, strings.IndexByte(r.accessToken, ',') >= 0:
		return credentials{}, ReasonDuplicateCredentials
	case r.nCookieJWT == 1 && r.nAccessToken == 1 && r.cookieJWT != r.accessToken:
		return credentials{}, ReasonConflictingCredentials
	case r.nAccessToken == 1:
		return credentials{kind: credJWT, jwt: r.accessToken}, ReasonNone
	case r.nCookieJWT == 1:
		return credentials{kind: credJWT, jwt: r.cookieJWT}, ReasonNone
	}
	return credentials{}, ReasonNone
}

// JSON keys of the single-header credential, as Cloudflare documents them.
// They must be lower case (Cloudflare rejects other casings too).
const (
	jsonKeyClientID     = headerClientID
	jsonKeyClientSecret = headerClientSecret
)

// parseCredentialJSON reads exactly {"cf-access-client-id": "…",
// "cf-access-client-secret": "…"} in any order with any JSON whitespace.
// Unknown keys, duplicate keys, a missing key, a non-string value or
// trailing data make it fail. It does not allocate unless a string holds an
// escape sequence.
func parseCredentialJSON(s string) (id, secret string, ok bool) {
	p := jsonScanner{s: s}
	if !p.consume('{') {
		return "", "", false
	}
	var haveID, haveSecret bool
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return "", "", false
		}
		val, ok := p.str()
		if !ok {
			return "", "", false
		}
		switch key {
		case jsonKeyClientID:
			if haveID {
				return "", "", false
			}
			id, haveID = val, true
		case jsonKeyClientSecret:
			if haveSecret {
				return "", "", false
			}
			secret, haveSecret = val, true
		default:
			return "", "", false
		}
		if p.consume(',') {
			continue
		}
		if !p.consume('}') {
			return "", "", false
		}
		break
	}
	p.space()
	if p.i != len(p.s) || !haveID || !haveSecret {
		return "", "", false
	}
	return id, secret, true
}

// jsonScanner is the minimal strict JSON reader parseCredentialJSON needs.
type jsonScanner struct {
	s string
	i int
}

func (p *jsonScanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (p *jsonScanner) consume(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a JSON string. Without escapes it returns a sub-string of the
// input; with escapes it lets encoding/json decode them (rare, allocates).
func (p *jsonScanner) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	escaped := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			raw := p.s[start:p.i]
			p.i++
			if !escaped {
				return raw, true
			}
			var v string
			if err := json.Unmarshal([]byte(p.s[start-1:p.i]), &v); err != nil {
				return "", false
			}
			return v, true
		case c == '\\':
			escaped = true
			p.i += 2 // the escaped character (json.Unmarshal validates it)
		case c < 0x20:
			return "", false // control characters must be escaped
		default:
			p.i++
		}
	}
	return "", false
}
