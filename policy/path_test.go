package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	long := "/" + strings.Repeat("seg/", 100) // > 256 bytes: heap buffer path
	tests := []struct {
		in, want string
		err      string // substring of the error; "" = no error
	}{
		// Already normal.
		{in: "/", want: "/"},
		{in: "/admin", want: "/admin"},
		{in: "/admin/", want: "/admin/"},
		{in: "/api/v1/users/42", want: "/api/v1/users/42"},
		{in: "/.hidden/x", want: "/.hidden/x"},
		{in: "/...", want: "/..."},
		{in: "/a/.../b", want: "/a/.../b"},
		{in: "/a..b/c.", want: "/a..b/c."},
		{in: "/a+b", want: "/a+b"},
		{in: "/café", want: "/café"},
		{in: "/a\x01b", want: "/a\x01b"}, // control bytes other than NUL are literal

		// Query and fragment are cut before anything else.
		{in: "/admin?x=1", want: "/admin"},
		{in: "/admin#frag", want: "/admin"},
		{in: "/admin#frag?x", want: "/admin"},
		{in: "/admin?x=/../../secret", want: "/admin"},
		{in: "/admin?%2F", want: "/admin"},
		{in: "/admin?", want: "/admin"},

		// Traversal: resolved, never above the root.
		{in: "/public/../admin", want: "/admin"},
		{in: "/..", want: "/"},
		{in: "/../", want: "/"},
		{in: "/../..", want: "/"},
		{in: "/../admin", want: "/admin"},
		{in: "/a/b/../../..", want: "/"},
		{in: "/a/b/../../../c", want: "/c"},
		{in: "/a/b/c/../../../../../etc/passwd", want: "/etc/passwd"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/../", want: "/a/"},
		{in: "/a/b/.", want: "/a/b/"},
		{in: "/a/./b", want: "/a/b"},
		{in: "/./admin", want: "/admin"},
		{in: "/.", want: "/"},
		{in: "/public/./../admin", want: "/admin"},

		// Slashes merged.
		{in: "//admin", want: "/admin"},
		{in: "///admin//x", want: "/admin/x"},
		{in: "/a//b///c", want: "/a/b/c"},
		{in: "/a/b//", want: "/a/b/"},
		{in: "//", want: "/"},
		{in: "//..//admin", want: "/admin"},

		// Percent-decoding, including dot segments spelled with escapes.
		{in: "/%61dmin", want: "/admin"},
		{in: "/%41dmin", want: "/Admin"},
		{in: "/%2e%2e/admin", want: "/admin"},
		{in: "/%2E%2E/admin", want: "/admin"},
		{in: "/%2e%2E/admin", want: "/admin"}, // mixed-case hex
		{in: "/public/%2e%2e/admin", want: "/admin"},
		{in: "/public/.%2e/admin", want: "/admin"},
		{in: "/public/%2e./admin", want: "/admin"},
		{in: "/.%2e/admin", want: "/admin"},
		{in: "/%2e/admin", want: "/admin"},
		{in: "/%2e%2e/%2e%2e/%2E%2E/admin", want: "/admin"},
		{in: "/a%20b", want: "/a b"},
		{in: "/caf%C3%A9", want: "/café"},
		{in: "/caf%c3%a9", want: "/café"},
		{in: "/%E2%82%AC", want: "/€"},
		{in: "/%7e%75ser", want: "/~user"},

		// '%', '?' and '#' stay encoded (canonical upper-case hex) so the
		// result is a fixed point and never grows a query.
		{in: "/a%3Fb", want: "/a%3Fb"},
		{in: "/a%3fb", want: "/a%3Fb"},
		{in: "/a%3F/../b", want: "/b"},
		{in: "/%3F?x", want: "/%3F"},
		{in: "/a%23b", want: "/a%23b"},
		{in: "/a%25", want: "/a%25"},
		{in: "/a%2541", want: "/a%2541"},
		{in: "/%252e%252e/admin", want: "/%252e%252e/admin"}, // double-encoded dots stay literal

		// Path parameters stay literal, except on empty and dot segments.
		{in: "/admin;x=1", want: "/admin;x=1"},
		{in: "/a;b/c;d", want: "/a;b/c;d"},
		{in: "/app;jsessionid=ABC/x", want: "/app;jsessionid=ABC/x"},
		{in: "/a/...;x", want: "/a/...;x"},
		{in: "/a%3Bb", want: "/a;b"},
		{in: "/..;/admin", err: "path parameter"},
		{in: "/public/..;/admin", err: "path parameter"},
		{in: "/public/..;x=1/admin", err: "path parameter"},
		{in: "/.;/admin", err: "path parameter"},
		{in: "/;x/admin", err: "path parameter"},
		{in: "/public/%2e%2e;/admin", err: "path parameter"},
		{in: "/public/..%3B/admin", err: "path parameter"},

		// Long inputs take the heap-buffer path.
		{in: long + "../x", want: "/" + strings.Repeat("seg/", 99) + "x"},
		{in: long + "%2e%2e/x", want: "/" + strings.Repeat("seg/", 99) + "x"},

		// Ambiguous: refused.
		{in: "/admin%2Fx", err: "encoded slash (%2F)"},
		{in: "/admin%2fx", err: "encoded slash (%2F)"},
		{in: "/a/%2e%2e%2fadmin", err: "encoded slash"},
		{in: "/a%5cb", err: "encoded backslash (%5C)"},
		{in: "/a%5Cb", err: "encoded backslash (%5C)"},
		{in: "/a\\b", err: "backslash at offset 2"},
		{in: "/..\\admin", err: "backslash"},
		{in: "/a%00", err: "encoded NUL (%00)"},
		{in: "/a\x00b", err: "NUL byte at offset 2"},
		{in: "/%zz", err: `invalid percent-encoding "%zz"`},
		{in: "/a%g1", err: "invalid percent-encoding"},
		{in: "/%u002e%u002e/admin", err: "invalid percent-encoding"}, // IIS %u form
		{in: "/%4", err: "truncated percent-encoding"},
		{in: "/%", err: "truncated percent-encoding"},
		{in: "/a%4?x=1", err: "truncated percent-encoding"},
		{in: "/%C0%AE%C0%AE/admin", err: "UTF-8"}, // overlong '.'
		{in: "/%c0%af", err: "UTF-8"},             // overlong '/'
		{in: "/%ff", err: "UTF-8"},
		{in: "/\xff", err: "UTF-8"},
		{in: "/caf%C3", err: "UTF-8"}, // truncated sequence
		{in: "*", err: `asterisk-form`},
		{in: "", err: "empty path"},
		{in: "?x=1", err: "empty path"},
		{in: "#x", err: "empty path"},
		{in: "http://x/", err: `does not start with "/"`},
		{in: "admin", err: `does not start with "/"`},
		{in: "*/admin", err: `does not start with "/"`},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if tt.err != "" {
			if err == nil {
				t.Errorf("NormalizePath(%q) = %q, want error containing %q", tt.in, got, tt.err)
				continue
			}
			if !errors.Is(err, ErrPathAmbiguous) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizePath(%q) error = %v, want ErrPathAmbiguous containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		// Every result is a fixed point.
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Errorf("NormalizePath(%q) = %q, %v; not idempotent on %q", got, again, err, tt.in)
		}
	}
}

func TestNormalizePathAllocs(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/42", "/admin?x=1&y=2", "/a%3Fb%25", "/café/x", "/app;jsessionid=1/x", "/a/"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath(p) }); n != 0 {
			t.Errorf("NormalizePath(%q) allocates %v times, want 0 (already normal)", p, n)
		}
	}
	// A path that needs work costs exactly the result string.
	for _, p := range []string{"/public/../admin", "//x", "/%61dmin?q"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath(p) }); n != 1 {
			t.Errorf("NormalizePath(%q) allocates %v times, want 1", p, n)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app.example.com", "app.example.com"},
		{"App.Example.COM", "app.example.com"},
		{"app.example.com:8443", "app.example.com"},
		{"APP.example.com:443", "app.example.com"},
		{"app.example.com.", "app.example.com"},
		{"app.example.com.:443", "app.example.com"},
		{"app.example.com..", "app.example.com."}, // one dot only
		{"app.example.com:", "app.example.com"},
		{"app.example.com:x", "app.example.com"}, // anything after one ':' is a port
		{"10.0.0.1:80", "10.0.0.1"},
		{"[::1]:8443", "::1"},
		{"[::1]", "::1"},
		{"[2001:DB8::1]", "2001:db8::1"},
		{"[2001:0db8:0:0:0:0:0:1]:80", "2001:db8::1"},
		{"[::ffff:1.2.3.4]", "::ffff:1.2.3.4"},
		{"[fe80::1%25eth0]", "[fe80::1%25eth0]"}, // zone: not a routable literal, kept whole
		{"[1.2.3.4]", "[1.2.3.4]"},
		{"[zz]:80", "[zz]:80"},
		{"[::1", "[::1"},
		{"::1", "::1"},                         // bare IPv6: several colons, no port stripped
		{"ÄPP.example.com", "Äpp.example.com"}, // ASCII-only folding
		{"", ""},
		{":80", ""},
	}
	for _, tt := range tests {
		if got := NormalizeHost(tt.in); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeHostAllocs(t *testing.T) {
	for _, h := range []string{"app.example.com", "app.example.com:443", "app.example.com.", "[::1]:8443", "[2001:db8::1]", "10.0.0.1:80"} {
		if n := testing.AllocsPerRun(100, func() { _ = NormalizeHost(h) }); n != 0 {
			t.Errorf("NormalizeHost(%q) allocates %v times, want 0", h, n)
		}
	}
}
