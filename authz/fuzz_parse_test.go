package authz

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the request parsers of the hot path, driven directly
// (FuzzCheck in fuzz_test.go drives them through a whole Check). Each
// execution costs microseconds.

// jsonCredentials decodes s with encoding/json's tokenizer, the reference
// for parseCredentialJSON: ok only for an object with exactly the two keys,
// each once, with string values, and nothing after it but whitespace.
func jsonCredentials(s string) (id, secret string, ok bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", false
	}
	var haveID, haveSecret bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		key, _ := tok.(string)
		tok, err = dec.Token()
		if err != nil {
			return "", "", false
		}
		val, isString := tok.(string)
		switch {
		case !isString:
			return "", "", false
		case key == jsonKeyClientID && !haveID:
			id, haveID = val, true
		case key == jsonKeyClientSecret && !haveSecret:
			secret, haveSecret = val, true
		default:
			return "", "", false // unknown or repeated key
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return "", "", false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", "", false // trailing data
	}
	if !haveID || !haveSecret {
		return "", "", false
	}
	return id, secret, true
}

// FuzzParseCredentialJSON: the single-header credential
// {"cf-access-client-id":"…","cf-access-client-secret":"…"}.
//
// Properties: never panics; on valid UTF-8 it agrees exactly with
// encoding/json (same verdict, same strings), so duplicate keys, unknown
// keys, non-string values and trailing data are refused; what it accepts
// re-encodes and parses back to the same pair.
func FuzzParseCredentialJSON(f *testing.F) {
	for _, seed := range []string{
		// The documented form, both orders, with whitespace.
		`{"cf-access-client-id":"88bf3b6d86161464f6509f7219099e57.access","cf-access-client-secret":"ghst_x"}`,
		" {\t\"cf-access-client-secret\" : \"s\" ,\n\"cf-access-client-id\":\"i\"}\r\n",
		// Escapes in keys and values.
		`{"cf-access-client-\u0069d":"a\/b","cf-access-client-secret":"\u00e9\ud83d\ude00"}`,
		// A lone surrogate, decoded to U+FFFD by both.
		`{"cf-access-client-id":"\ud800","cf-access-client-secret":"s"}`,
		// Duplicate key, one escaped.
		`{"cf-access-client-id":"a","cf-access-client-\u0069d":"b","cf-access-client-secret":"s"}`,
		// Joined by Envoy: two objects and a comma.
		`{"cf-access-client-id":"a","cf-access-client-secret":"s"},{"cf-access-client-id":"a","cf-access-client-secret":"s"}`,
		// Trailing garbage, missing key, non-string, nesting.
		`{"cf-access-client-id":"a","cf-access-client-secret":"s"}x`,
		`{"cf-access-client-id":"a"}`,
		`{"cf-access-client-id":1,"cf-access-client-secret":"s"}`,
		`{"cf-access-client-id":{"x":"y"},"cf-access-client-secret":"s"}`,
		`[[[[[[[[[[`,
		// A backslash at the very end, a raw control character.
		`{"cf-access-client-id":"a\`,
		"{\"cf-access-client-id\":\"a\x01\",\"cf-access-client-secret\":\"s\"}",
		// Invalid UTF-8 in a value (raw header_map bytes).
		"{\"cf-access-client-id\":\"\xff\",\"cf-access-client-secret\":\"s\"}",
		``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := parseCredentialJSON(s)
		if !ok && (id != "" || secret != "") {
			t.Fatalf("failed parse returned %q, %q", id, secret)
		}
		if utf8.ValidString(s) {
			wid, wsecret, wok := jsonCredentials(s)
			if ok != wok || id != wid || secret != wsecret {
				t.Fatalf("parseCredentialJSON(%q) = %q, %q, %v; encoding/json says %q, %q, %v", s, id, secret, ok, wid, wsecret, wok)
			}
		}
		if !ok || !utf8.ValidString(id) || !utf8.ValidString(secret) {
			return
		}
		// Round trip: what was accepted, encoded again, reads back the same.
		b, err := json.Marshal(map[string]string{jsonKeyClientID: id, jsonKeyClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		id2, secret2, ok2 := parseCredentialJSON(string(b))
		if !ok2 || id2 != id || secret2 != secret {
			t.Fatalf("round trip of %q, %q through %s = %q, %q, %v", id, secret, b, id2, secret2, ok2)
		}
		// Joined with itself, as Envoy joins a repeated header: refused.
		if _, _, ok := parseCredentialJSON(s + "," + s); ok {
			t.Fatalf("accepted a joined header: %q", s+","+s)
		}
	})
}

// FuzzScanCookies: finding CF_Authorization in a cookie header.
//
// Properties: never panics; a found value is non-empty, contains no
// separator and is part of the header; the header joined with itself (as
// Envoy joins a repeated header, or a client repeats the cookie) counts
// every occurrence twice, so a cookie present once becomes a refused
// duplicate; a value appended as its own crumb is found exactly, quotes
// removed, and counted once more.
func FuzzScanCookies(f *testing.F) {
	for _, s := range []struct{ header, value string }{
		{"", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
		{"_ga=1; theme=dark", "abc"},
		{"CF_Authorization=abc", "def"},                      // already once: now twice
		{`theme="CF_Authorization=x"`, `"quoted"`},           // inside a quoted value
		{`theme="x; CF_Authorization=y"`, "z"},               // a quote split by ;
		{"cf_authorization=lower; CF_AUTHORIZATION=up", "v"}, // other names
		{" \t CF_Authorization= \t ;,,;", "v"},               // whitespace, empty crumbs
		{"CF_Authorization", "v"},                            // no =
		{"CF_Authorization=\"", "\"\""},                      // lone quotes
		{"\xff=\x00; CF_Authorization=\xfe", "\x80"},         // raw bytes
	} {
		f.Add(s.header, s.value)
	}
	f.Fuzz(func(t *testing.T, h, v string) {
		var val string
		var n int
		scanCookies(h, &val, &n)
		switch {
		case n < 0:
			t.Fatalf("negative count %d", n)
		case n == 0 && val != "":
			t.Fatalf("value %q with a count of 0", val)
		case n > 0 && (val == "" || strings.ContainsAny(val, ";,") || !strings.Contains(h, val)):
			t.Fatalf("scanCookies(%q) = %q: empty, holds a separator, or not from the header", h, val)
		}

		for _, sep := range []string{",", "; "} {
			var val2 string
			var n2 int
			scanCookies(h+sep+h, &val2, &n2)
			if n2 != 2*n || val2 != val {
				t.Fatalf("joined with %q: %q, %d; want %q, %d", sep, val2, n2, val, 2*n)
			}
		}

		// v as a crumb of its own (a value a browser could send: no
		// separator, no surrounding whitespace).
		if v == "" || strings.ContainsAny(v, ";,") || trimOWS(v) != v {
			return
		}
		want := v
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			want = v[1 : len(v)-1]
		}
		if want == "" {
			return
		}
		var got string
		var n3 int
		scanCookies(h+"; CF_Authorization="+v, &got, &n3)
		if got != want || n3 != n+1 {
			t.Fatalf("appended crumb %q: got %q, %d; want %q, %d", v, got, n3, want, n+1)
		}
	})
}

// isHeaderName reports whether s could be an application's
// ServiceTokenHeader: a lower-case RFC 9110 token (policy validates it).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	switch s {
	case headerClientID, headerClientSecret, headerAssertion, headerCookie, "host":
		return false
	}
	return true
}

// FuzzRequestCredentials: the header pass (request.parse, header_map or
// headers map) and the choice of credential (request.credentials).
//
// Properties: never panics; a refusal carries no credential; an accepted
// credential is exactly one header's trimmed value (id and secret; or the
// custom header's JSON; or the JWT from cf-access-token or the one
// CF_Authorization cookie), never a value holding a "," and never one of
// several copies of a header.
func FuzzRequestCredentials(f *testing.F) {
	type seed struct {
		k1, v1, k2, v2, k3, v3, custom string
		raw, sessions                  bool
	}
	const id, secret = "88bf3b6d86161464f6509f7219099e57.access", "ghst_abc"
	for _, s := range []seed{
		// The standard pair, odd casing and whitespace.
		{"cf-access-client-id", id, "CF-Access-Client-Secret", " " + secret + "\t", "", "", "", false, true},
		// The pair in header_map with the id repeated in another casing.
		{"cf-access-client-id", id, "CF-ACCESS-CLIENT-ID", id, "cf-access-client-secret", secret, "", true, true},
		// A joined secret.
		{"cf-access-client-id", id, "cf-access-client-secret", secret + "," + secret, "", "", "", false, true},
		// The custom header, alone and with the standard one.
		{"x-creds", `{"cf-access-client-id":"` + id + `","cf-access-client-secret":"` + secret + `"}`, "", "", "", "", "x-creds", false, true},
		{"X-Creds", `{"cf-access-client-id":"a","cf-access-client-secret":"b"}`, "cf-access-client-id", id, "", "", "x-creds", true, true},
		// Session JWTs: cookie, token, both, strict mode.
		{"cookie", "a=b; CF_Authorization=j.w.t", "", "", "", "", "", false, true},
		{"cookie", "CF_Authorization=j.w.t", "cf-access-token", "j.w.t", "", "", "", true, true},
		{"cookie", "CF_Authorization=x", "Cookie", "CF_Authorization=y", "", "", "", true, true},
		{"cf-access-token", "a,b", "", "", "", "", "", false, true},
		{"cookie", "CF_Authorization=j.w.t", "", "", "", "", "", false, false},
		// Empty and whitespace-only values are absent.
		{"cf-access-client-id", " \t", "cf-access-client-secret", secret, "", "", "", true, true},
	} {
		f.Add(s.k1, s.v1, s.k2, s.v2, s.k3, s.v3, s.custom, s.raw, s.sessions)
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, custom string, raw, sessions bool) {
		if !isHeaderName(custom) {
			custom = ""
		}
		// The headers as Check sees them: a list (header_map) or a map
		// whose later exact-key entries replace earlier ones.
		var names, values []string
		var req = httpReq("app.example.com", "/")
		if raw {
			req = rawReq("app.example.com", "/", k1, v1, k2, v2, k3, v3)
			for _, hv := range req.Attributes.Request.Http.HeaderMap.Headers {
				names, values = append(names, hv.Key), append(values, string(hv.RawValue))
			}
		} else {
			hs := map[string]string{}
			for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
				hs[kv[0]] = kv[1]
			}
			req.Attributes.Request.Http.Headers = hs
			for k, v := range hs {
				names, values = append(names, k), append(values, v)
			}
		}
		// present returns the non-empty trimmed values of a header.
		present := func(name string) []string {
			var out []string
			for i, k := range names {
				if strings.EqualFold(k, name) {
					if v := trimOWS(values[i]); v != "" {
						out = append(out, v)
					}
				}
			}
			return out
		}

		var r request
		if !r.parse(req) {
			t.Fatal("parse refused a request with http attributes")
		}
		c, reason := r.credentials(custom, sessions)
		if reason != ReasonNone {
			if c != (credentials{}) {
				t.Fatalf("refused (%s) but returned %+v", reason, c)
			}
			return
		}
		ids, secrets := present(headerClientID), present(headerClientSecret)
		var customs []string
		if custom != "" {
			customs = present(custom)
		}
		switch c.kind {
		case credNone:
			if len(ids)+len(secrets)+len(customs) > 0 {
				t.Fatalf("credential headers present (%q %q %q) but none chosen", ids, secrets, customs)
			}
		case credHeaders:
			if len(ids) != 1 || len(secrets) != 1 || c.clientID != ids[0] || c.secret != secrets[0] {
				t.Fatalf("accepted %q, %q from ids %q and secrets %q", c.clientID, c.secret, ids, secrets)
			}
			if len(customs) > 0 {
				t.Fatalf("standard headers accepted beside the custom header %q", customs)
			}
		case credCustom:
			if len(customs) != 1 || len(ids)+len(secrets) > 0 {
				t.Fatalf("custom credential accepted with customs %q, ids %q, secrets %q", customs, ids, secrets)
			}
			wid, wsecret, ok := parseCredentialJSON(customs[0])
			if !ok || wid != c.clientID || wsecret != c.secret {
				t.Fatalf("custom credential %q, %q is not the header's %q", c.clientID, c.secret, customs[0])
			}
		case credJWT:
			if !sessions || len(ids)+len(secrets)+len(customs) > 0 {
				t.Fatalf("a JWT chosen in strict mode or beside credential headers")
			}
			toks := present(headerAccessToken)
			var cookie string
			var nCookie int
			for i, k := range names {
				if strings.EqualFold(k, headerCookie) {
					scanCookies(values[i], &cookie, &nCookie)
				}
			}
			switch {
			case len(toks) > 1 || nCookie > 1:
				t.Fatalf("a JWT chosen from several: tokens %q, %d cookies", toks, nCookie)
			case len(toks) == 1 && c.jwt != toks[0], len(toks) == 0 && (nCookie != 1 || c.jwt != cookie):
				t.Fatalf("JWT %q is not the one presented (tokens %q, cookie %q)", c.jwt, toks, cookie)
			case len(toks) == 1 && nCookie == 1 && cookie != toks[0]:
				t.Fatalf("JWT chosen from a token and a cookie that differ")
			}
		default:
			t.Fatalf("unknown credential kind %d", c.kind)
		}
		if strings.ContainsAny(c.clientID+c.secret+c.jwt, ",") {
			t.Fatalf("accepted a joined value: %+v", c)
		}
	})
}
