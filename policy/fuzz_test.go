package policy

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzNormalizePath(f *testing.F) {
	for _, seed := range []string{
		"/",                    // root
		"/api/v1/users?x=1",    // normal with query
		"/public/../admin",     // traversal
		"/a/b/../../..",        // traversal above root
		"//admin///x//",        // repeated slashes
		"/./a/.",               // dot segments
		"/%2e%2E/%2e/x",        // encoded dots, mixed case
		"/.%2e/admin",          // half-encoded dot-dot
		"/admin%2Fx",           // encoded slash (rejected)
		"/a%5cb",               // encoded backslash (rejected)
		"/a\\b",                // raw backslash (rejected)
		"/a%00b",               // encoded NUL (rejected)
		"/a\x00",               // raw NUL (rejected)
		"/%zz/%4",              // broken escapes (rejected)
		"/caf%C3%A9/%E2%82%AC", // UTF-8 escapes
		"/%C0%AE%C0%AE/",       // overlong dots (rejected)
		"/a%3Fb%23c%25d?q#f",   // kept escapes, query and fragment
		"/%2541",               // encoded percent before hex digits
		"/admin;x=1/..;/y",     // path parameters, ..; (rejected)
		"/;x/a",                // parameter on an empty segment (rejected)
		"*",                    // asterisk-form (rejected)
		"http://h/x",           // absolute-form (rejected)
		"",                     // empty (rejected)
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		// The fast path must agree with the slow one on what is normal.
		if strings.HasPrefix(in, "/") && !strings.ContainsAny(in, "?#") && isNormalPath(in) {
			if slow, err := normalizePathSlow(in); err != nil || slow != in {
				t.Fatalf("isNormalPath(%q) but slow path gives %q, %v", in, slow, err)
			}
		}
		if err != nil {
			if out != "" {
				t.Fatalf("error %v with output %q", err, out)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q: no leading slash", in, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("NormalizePath(%q) = %q: contains //", in, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q: dot segment", in, out)
			}
		}
		if strings.ContainsAny(out, "?#\\\x00") || !utf8.ValidString(out) {
			t.Fatalf("NormalizePath(%q) = %q: forbidden byte or invalid UTF-8", in, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] == '%' && !isKeptEscape(out[i:]) {
				t.Fatalf("NormalizePath(%q) = %q: undecoded escape at %d", in, out, i)
			}
		}
		// path.Clean agrees, up to the trailing slash we keep.
		if c := path.Clean(out); c != strings.TrimSuffix(out, "/") && out != "/" {
			t.Fatalf("NormalizePath(%q) = %q but path.Clean gives %q", in, out, c)
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: NormalizePath(%q) = %q, then %q, %v", in, out, again, err)
		}
	})
}

func FuzzNormalizeHost(f *testing.F) {
	for _, seed := range []string{
		"app.example.com",       // normal
		"App.Example.COM.:8443", // case, dot, port
		"[::1]:8443",            // IPv6 literal with port
		"[2001:0DB8::1]",        // non-canonical IPv6
		"[fe80::1%25eth0]",      // zone (kept whole)
		"10.0.0.1:80",           // IPv4 with port
		"::1",                   // bare IPv6
		"a.com..",               // two trailing dots
		"[",                     // truncated literal
		"",                      // empty
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := NormalizeHost(in)
		for i := 0; i < len(out); i++ {
			if 'A' <= out[i] && out[i] <= 'Z' {
				t.Fatalf("NormalizeHost(%q) = %q: upper-case left", in, out)
			}
		}
		// Idempotent, except that only one trailing dot is removed per call.
		if again := NormalizeHost(out); again != out && !strings.HasSuffix(out, ".") {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
		// Whatever ParseDomain accepts as a host, a request for it (with
		// any case, port or trailing dot) normalises to the same string.
		if host, _, err := ParseDomain(in); err == nil && !strings.Contains(in, "/") && !strings.HasPrefix(host, "*.") {
			if NormalizeHost(in) != host {
				t.Fatalf("ParseDomain(%q) host %q but NormalizeHost gives %q", in, host, NormalizeHost(in))
			}
		}
	})
}

func FuzzParseDomain(f *testing.F) {
	for _, seed := range []string{
		"app.example.com",          // plain
		"*.example.com/api/",       // wildcard with path
		"App.Example.COM.",         // case and dot
		"[2001:db8::1]/svc",        // IPv6 literal
		"10.0.0.1",                 // IPv4
		"a.*.com",                  // misplaced wildcard (rejected)
		"*.com",                    // wildcard too broad (rejected)
		"app.example.com:443",      // port (rejected)
		"app.example.com/a?b",      // query (rejected)
		"app.example.com/a/../b//", // path normalised
		"1.2.3",                    // numeric TLD (rejected)
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, prefix, err := ParseDomain(in)
		if err != nil {
			return
		}
		if host == "" || strings.ToLower(host) != host {
			t.Fatalf("ParseDomain(%q) host %q not lower-case", in, host)
		}
		if !strings.HasPrefix(prefix, "/") || (prefix != "/" && strings.HasSuffix(prefix, "/")) {
			t.Fatalf("ParseDomain(%q) prefix %q", in, prefix)
		}
		if np, err := NormalizePath(prefix); err != nil || np != prefix {
			t.Fatalf("ParseDomain(%q) prefix %q is not normal: %q, %v", in, prefix, np, err)
		}
		if h := strings.TrimPrefix(host, "*."); strings.Contains(h, "*") {
			t.Fatalf("ParseDomain(%q) host %q: misplaced wildcard", in, host)
		}
		// What Route is asked for (a normalised request host) equals the
		// stored host for non-wildcard domains.
		if !strings.HasPrefix(host, "*.") && NormalizeHost(host) != host {
			t.Fatalf("ParseDomain(%q) host %q is not a NormalizeHost fixed point", in, host)
		}
		// Round trip: formatting the result and parsing it again is stable.
		text := FormatDomain(host, prefix)
		h2, p2, err := ParseDomain(text)
		if err != nil || h2 != host || p2 != prefix {
			t.Fatalf("round trip %q -> %q -> %q, %q, %v", in, text, h2, p2, err)
		}
	})
}
