package authz

import (
	"net/netip"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestParseCredentialJSON(t *testing.T) {
	const id, secret = "0123456789abcdef0123456789abcdef.access", "ghst_abc"
	tests := []struct {
		in         string
		id, secret string
		ok         bool
	}{
		{`{"cf-access-client-id":"` + id + `","cf-access-client-secret":"` + secret + `"}`, id, secret, true},
		{"\t{ \"cf-access-client-secret\" :\n\"" + secret + "\" , \"cf-access-client-id\": \"" + id + "\" }\r\n", id, secret, true},
		// Escapes are decoded (a client's JSON encoder may escape "/" or use \u).
		{`{"cf-access-client-id":"\u0061b","cf-access-client-secret":"x\/y"}`, "ab", "x/y", true},
		{``, "", "", false},
		{`{}`, "", "", false},
		{`[]`, "", "", false},
		{`{"cf-access-client-id":"a"}`, "", "", false},
		{`{"cf-access-client-secret":"a"}`, "", "", false},
		{`{"cf-access-client-id":"a","cf-access-client-secret":"b",}`, "", "", false},
		{`{"cf-access-client-id":"a","cf-access-client-secret":"b"`, "", "", false},
		{`{"cf-access-client-id":"a","cf-access-client-secret":"b"}}`, "", "", false},
		{`{"cf-access-client-id":"a","cf-access-client-id":"a","cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":"a","cf-access-client-secret":"b","other":"c"}`, "", "", false},
		{`{"Cf-Access-Client-Id":"a","cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":1,"cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":null,"cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":["a"],"cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":"a` + "\n" + `","cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":"\x","cf-access-client-secret":"b"}`, "", "", false},
		{`{"cf-access-client-id":"a\`, "", "", false},
		{`{'cf-access-client-id':'a','cf-access-client-secret':'b'}`, "", "", false},
	}
	for _, tt := range tests {
		id, secret, ok := parseCredentialJSON(tt.in)
		if ok != tt.ok || id != tt.id || secret != tt.secret {
			t.Errorf("parseCredentialJSON(%q) = %q, %q, %v; want %q, %q, %v", tt.in, id, secret, ok, tt.id, tt.secret, tt.ok)
		}
	}
}

func TestParseCredentialJSONAllocs(t *testing.T) {
	in := `{"cf-access-client-id":"0123456789abcdef0123456789abcdef.access","cf-access-client-secret":"ghst_abc"}`
	if n := testing.AllocsPerRun(100, func() { parseCredentialJSON(in) }); n != 0 {
		t.Errorf("parseCredentialJSON allocates %v times", n)
	}
}

func TestScanCookies(t *testing.T) {
	tests := []struct {
		in   string
		val  string
		n    int
		name string
	}{
		{"CF_Authorization=abc", "abc", 1, "alone"},
		{"_ga=1; CF_Authorization=abc; theme=dark", "abc", 1, "among others"},
		{`CF_Authorization="abc"`, "abc", 1, "quoted"},
		{"cf_authorization=abc", "", 0, "names are case-sensitive"},
		{"XCF_Authorization=abc; CF_Authorization_old=x", "", 0, "prefix is not the name"},
		{"CF_Authorization=", "", 0, "empty is absent"},
		{"CF_Authorization=a; CF_Authorization=b", "b", 2, "twice"},
		{"a=1,CF_Authorization=b", "b", 1, "joined by Envoy with a comma"},
		{"  CF_Authorization=abc  ;", "abc", 1, "whitespace"},
		{"", "", 0, "empty header"},
	}
	for _, tt := range tests {
		var val string
		var n int
		scanCookies(tt.in, &val, &n)
		if val != tt.val || n != tt.n {
			t.Errorf("%s: scanCookies(%q) = %q, %d; want %q, %d", tt.name, tt.in, val, n, tt.val, tt.n)
		}
	}
}

func TestNthFromRight(t *testing.T) {
	tests := []struct {
		list string
		n    int
		want string
		ok   bool
	}{
		{"a", 1, "a", true},
		{"a", 2, "", false},
		{"a, b,c", 1, "c", true},
		{"a, b,c", 2, "b", true},
		{"a, b,c", 3, "a", true},
		{"a, b,c", 4, "", false},
		{",", 1, "", true},
		{"a,,b", 2, "", true},
	}
	for _, tt := range tests {
		got, ok := nthFromRight(tt.list, tt.n)
		if got != tt.want || ok != tt.ok {
			t.Errorf("nthFromRight(%q, %d) = %q, %v; want %q, %v", tt.list, tt.n, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseIP(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1":        "192.0.2.1",
		"2001:db8::1":      "2001:db8::1",
		"::ffff:192.0.2.1": "192.0.2.1",
		"192.0.2.1:8080":   "192.0.2.1",
		"[2001:db8::1]:80": "2001:db8::1",
		"unknown":          "invalid IP",
		"":                 "invalid IP",
	}
	for in, want := range tests {
		if got := parseIP(in); got.String() != want {
			t.Errorf("parseIP(%q) = %v, want %s", in, got, want)
		}
	}
}

func TestRequestSourceIP(t *testing.T) {
	req := httpReq("h", "/", "x-forwarded-for", "198.51.100.1, 203.0.113.5")
	var r request
	if !r.parse(req) {
		t.Fatal("parse failed")
	}
	for proxies, want := range map[int]string{
		0: "10.0.0.1",     // the TCP peer
		1: "203.0.113.5",  // right-most
		2: "198.51.100.1", // second from the right
		3: "10.0.0.1",     // fewer entries than proxies: the peer is the client
	} {
		if got := r.sourceIP(proxies); got != netip.MustParseAddr(want) {
			t.Errorf("TrustedProxies=%d: source = %v, want %s", proxies, got, want)
		}
	}
}

func TestRequestParse(t *testing.T) {
	t.Run("headers map", func(t *testing.T) {
		req := httpReq("App.Example.com:8443", "/x?y", "CF-Access-Client-Id", " id ", "cf-access-token", "t",
			"Cookie", "CF_Authorization=c", "X-Request-Id", "rid")
		req.Attributes.Request.Http.Host = "" // fall back to :authority
		req.Attributes.Request.Http.Path = ""
		var r request
		if !r.parse(req) {
			t.Fatal("parse failed")
		}
		if r.host != "App.Example.com:8443" || r.path != "/x?y" || r.clientID != "id" || r.nClientID != 1 ||
			r.accessToken != "t" || r.cookieJWT != "c" {
			t.Errorf("parsed %+v", r)
		}
	})
	t.Run("header_map", func(t *testing.T) {
		req := rawReq("h", "/", "cf-access-client-id", "a", "cf-access-client-id", "b", "x-forwarded-for", "1.1.1.1",
			"x-forwarded-for", "2.2.2.2", "cookie", "CF_Authorization=x", "cookie", "CF_Authorization=y")
		var r request
		r.parse(req)
		if r.nClientID != 2 || r.xff != "1.1.1.1,2.2.2.2" || r.nCookieJWT != 2 {
			t.Errorf("parsed %+v", r)
		}
	})
	t.Run("raw value preferred over value", func(t *testing.T) {
		req := rawReq("h", "/", "cf-access-client-id", "raw")
		req.Attributes.Request.Http.HeaderMap.Headers[3].Value = "value"
		var r request
		r.parse(req)
		if r.clientID != "raw" {
			t.Errorf("clientID = %q, want the raw value", r.clientID)
		}
	})
	t.Run("empty values are absent", func(t *testing.T) {
		req := httpReq("h", "/", "cf-access-client-id", "  ", "cf-access-client-secret", "")
		var r request
		r.parse(req)
		if c, reason := r.credentials("", true); reason != ReasonNone || c.kind != credNone {
			t.Errorf("credentials = %+v, %s; want none", c, reason)
		}
	})
}

func TestReasons(t *testing.T) {
	seen := map[string]Reason{}
	for r := ReasonNone + 1; r < numReasons; r++ {
		s := r.String()
		if s == "" || s == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("reasons %d and %d are both %q", prev, r, s)
		}
		seen[s] = r
		status, code := r.HTTPStatus(), r.Code()
		switch {
		case r.Allowed() && (status != 200 || code != 0):
			t.Errorf("%s: allow reason with status %d code %v", r, status, code)
		case !r.Allowed() && (status < 400 || code == 0):
			t.Errorf("%s: deny reason with status %d code %v", r, status, code)
		}
		if !r.Allowed() && denied[r] == nil {
			t.Errorf("%s: no prebuilt deny response", r)
		}
	}
	if Reason(200).String() != "unknown" {
		t.Error("out-of-range reason has a name")
	}
}

// TestReasonStatuses pins every reason's HTTP status and gRPC code, written
// out rather than derived: 401 when the request's credential is missing or
// not good, 403 when a good identity (or none needed) is refused by the
// application's policies or no application, 400 for a request gatehouse
// will not interpret, 503 when it cannot mint a JWT. A reason moved between
// 401 and 403 changes what clients and dashboards see, so it must be a
// deliberate edit here.
func TestReasonStatuses(t *testing.T) {
	want := map[Reason]int{
		ReasonAllowedByPolicy: 200, ReasonBypass: 200, ReasonUnmatchedAllowed: 200,
		ReasonMalformedRequest: 400, ReasonAmbiguousPath: 400,
		ReasonUnknownApplication: 403, ReasonNoApplication: 403, ReasonDeniedByPolicy: 403, ReasonNoPolicyMatched: 403,
		ReasonMissingCredentials: 401, ReasonIncompleteCredentials: 401, ReasonDuplicateCredentials: 401,
		ReasonConflictingCredentials: 401, ReasonMalformedCredentialHeader: 401, ReasonDuplicateCookie: 401,
		ReasonMalformedSecret: 401, ReasonUnknownClientID: 401, ReasonWrongSecret: 401, ReasonTokenExpired: 401,
		ReasonTokenDisabled: 401, ReasonJWTMalformed: 401, ReasonJWTUnknownKID: 401, ReasonJWTAlgorithm: 401,
		ReasonJWTSignature: 401, ReasonJWTExpired: 401, ReasonJWTNotYetValid: 401, ReasonJWTIssuer: 401,
		ReasonJWTClaims: 401, ReasonJWTWrongAudience: 401, ReasonSessionRevoked: 401, ReasonTokenRevoked: 401,
		ReasonNoSigningKey: 503, ReasonInternalError: 500,
	}
	codeOf := map[int]codes.Code{200: codes.OK, 400: codes.InvalidArgument, 401: codes.Unauthenticated,
		403: codes.PermissionDenied, 500: codes.Internal, 503: codes.Unavailable}
	for r := ReasonNone + 1; r < numReasons; r++ {
		status, ok := want[r]
		if !ok {
			t.Errorf("%s: no expected status in this table", r)
			continue
		}
		if got := r.HTTPStatus(); got != status {
			t.Errorf("%s: HTTP status %d, want %d", r, got, status)
		}
		if got := r.Code(); got != codeOf[status] {
			t.Errorf("%s: gRPC code %v, want %v", r, got, codeOf[status])
		}
		if d := denied[r]; !r.Allowed() && int(d.DeniedResponse.GetStatus().GetCode()) != status {
			t.Errorf("%s: prebuilt deny has status %d, want %d", r, d.DeniedResponse.GetStatus().GetCode(), status)
		}
	}
}
