package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDomain(t *testing.T) {
	tests := []struct {
		in, host, prefix string
		err              string // substring; "" = valid
	}{
		{in: "app.example.com", host: "app.example.com", prefix: "/"},
		{in: "App.Example.COM.", host: "app.example.com", prefix: "/"},
		{in: "*.example.com", host: "*.example.com", prefix: "/"},
		{in: "*.Example.com/API", host: "*.example.com", prefix: "/API"},
		{in: "app.example.com/", host: "app.example.com", prefix: "/"},
		{in: "app.example.com/api", host: "app.example.com", prefix: "/api"},
		{in: "app.example.com/api/", host: "app.example.com", prefix: "/api"},
		{in: "app.example.com/api//v1/", host: "app.example.com", prefix: "/api/v1"},
		{in: "app.example.com/a/../b", host: "app.example.com", prefix: "/b"},
		{in: "app.example.com/%61pi", host: "app.example.com", prefix: "/api"},
		{in: "app.example.com/a%3Fb", host: "app.example.com", prefix: "/a%3Fb"},
		{in: "localhost", host: "localhost", prefix: "/"},
		{in: "my_service.ns.svc.cluster.local", host: "my_service.ns.svc.cluster.local", prefix: "/"},
		{in: "xn--bcher-kva.example", host: "xn--bcher-kva.example", prefix: "/"},
		{in: "10.0.0.1", host: "10.0.0.1", prefix: "/"},
		{in: "10.0.0.1/x", host: "10.0.0.1", prefix: "/x"},
		{in: "[::1]", host: "::1", prefix: "/"},
		{in: "[2001:DB8:0::1]/api", host: "2001:db8::1", prefix: "/api"},
		{in: "[::ffff:10.0.0.1]", host: "::ffff:10.0.0.1", prefix: "/"},

		{in: "", err: "empty"},
		{in: " app.example.com", err: "space or control character at offset 0"},
		{in: "app.example.com /x", err: "space"},
		{in: "app\texample.com", err: "control character"},
		{in: "*", err: "wildcard needs a domain"},
		{in: "*.", err: "wildcard needs a domain"},
		{in: "*.com", err: "at least two labels"},
		{in: "*.com/x", err: "at least two labels"},
		{in: "a.*.com", err: "wildcard must be the whole left-most label"},
		{in: "*a.example.com", err: "wildcard must be the whole left-most label"},
		{in: "a*.example.com", err: "wildcard must be the whole left-most label"},
		{in: "*.*.example.com", err: "wildcard must be the whole left-most label"},
		{in: "**.example.com", err: "wildcard must be the whole left-most label"},
		{in: "app.example.com:443", err: "port is not allowed"},
		{in: "[::1]:443", err: "port is not allowed"},
		{in: "::1", err: "must be in brackets"},
		{in: "[::1", err: "unterminated IPv6"},
		{in: "[1.2.3.4]", err: "invalid IPv6 literal"},
		{in: "[fe80::1%eth0]", err: "invalid IPv6 literal"},
		{in: "[::1]x", err: "unexpected characters"},
		{in: "https://app.example.com", err: "scheme"},
		{in: "app.example.com/api?x=1", err: "query"},
		{in: "app.example.com/api#x", err: "fragment"},
		{in: "app.example.com/a;b", err: "path parameters"},
		{in: "app.example.com/a%3Bb", err: "path parameters"},
		{in: "app.example.com/caf%C3%A9%20x", host: "app.example.com", prefix: "/café x"},
		{in: "app.example.com/a%2Fb", err: "encoded slash"},
		{in: "app.example.com/a\\b", err: "backslash"},
		{in: "bücher.example", err: "non-ASCII"},
		{in: "app..example.com", err: "empty label"},
		{in: ".example.com", err: "empty label"},
		{in: "/api", err: "empty host"},
		{in: "-app.example.com", err: "starts or ends with '-'"},
		{in: "app-.example.com", err: "starts or ends with '-'"},
		{in: "app!.example.com", err: "invalid character"},
		{in: strings.Repeat("a", 64) + ".example.com", err: "label longer than 63"},
		{in: strings.Repeat("abcdefgh.", 30) + "com", err: "host longer than 253"},
		{in: "1.2.3", err: "numeric top-level label"},
		{in: "010.0.0.1", err: "numeric top-level label"},
		{in: "*.1.2.3", err: "numeric top-level label"},
		{in: "app.example.com/" + strings.Repeat("x", 2100), err: "longer than 2048"},
	}
	for _, tt := range tests {
		host, prefix, err := ParseDomain(tt.in)
		if tt.err != "" {
			if err == nil {
				t.Errorf("ParseDomain(%q) = %q, %q; want error containing %q", tt.in, host, prefix, tt.err)
			} else if !errors.Is(err, ErrInvalidDomain) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDomain(%q) error = %v; want ErrInvalidDomain containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || host != tt.host || prefix != tt.prefix {
			t.Errorf("ParseDomain(%q) = %q, %q, %v; want %q, %q", tt.in, host, prefix, err, tt.host, tt.prefix)
		}
	}
}

func TestParseDomainErrorWrapsPathError(t *testing.T) {
	_, _, err := ParseDomain("app.example.com/a%00")
	if !errors.Is(err, ErrInvalidDomain) || !errors.Is(err, ErrPathAmbiguous) {
		t.Fatalf("error %v should wrap both ErrInvalidDomain and ErrPathAmbiguous", err)
	}
}

func TestParseDomainErrorQuotesShort(t *testing.T) {
	_, _, err := ParseDomain(strings.Repeat("a", 5000))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("error for a 5000-byte domain should be short, got %d bytes", len(err.Error()))
	}
}

func TestFormatDomain(t *testing.T) {
	for _, in := range []string{"App.example.com./api/", "*.example.com", "[2001:DB8::1]/x//y", "[::1]", "10.0.0.1/a", "a.example/caf%c3%a9%20%7f%10/x"} {
		h, p, err := ParseDomain(in)
		if err != nil {
			t.Fatal(err)
		}
		out := FormatDomain(h, p)
		h2, p2, err := ParseDomain(out)
		if err != nil || h2 != h || p2 != p {
			t.Errorf("FormatDomain(%q, %q) = %q, which parses as %q, %q, %v", h, p, out, h2, p2, err)
		}
	}
	if got := FormatDomain("2001:db8::1", "/api"); got != "[2001:db8::1]/api" {
		t.Errorf("got %q", got)
	}
	if got := FormatDomain("a.example", "/café x"); got != "a.example/caf%C3%A9%20x" {
		t.Errorf("got %q", got)
	}
	if got := FormatDomain("app.example.com", "/"); got != "app.example.com" {
		t.Errorf("got %q", got)
	}
}
