package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	k := newECKey(t, "k")
	srv := newJWKSServer(t, k)
	clk := &clock{t: time.Now()}
	v := newVerifier(srv, clk)
	h := newHandler(v, slog.New(slog.NewTextHandler(io.Discard, nil)))
	token := k.sign(t, claimsAt(clk.Now()))

	t.Run("valid", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "http://app.example.com/demo/x?y=1", nil)
		req.Header.Set("Cf-Access-Jwt-Assertion", token)
		req.Header.Set("Cf-Access-Client-Id", "0123456789abcdef0123456789abcdef.access")
		req.Header.Set("Cf-Access-Client-Secret", "ghst_must-never-be-echoed")
		req.Header.Set("Cookie", "CF_Authorization="+token)
		req.Header.Set("Authorization", "Bearer must-never-be-echoed")
		req.Header.Add("X-Multi", "one")
		req.Header.Add("X-Multi", "two")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		body := rec.Body.String()
		for _, secret := range []string{token, "must-never-be-echoed"} {
			if strings.Contains(body, secret) {
				t.Fatalf("response echoes a credential: %s", body)
			}
		}
		var got response
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Claims["common_name"] != "0123456789abcdef0123456789abcdef.access" || got.Claims["type"] != "app" {
			t.Errorf("claims = %v", got.Claims)
		}
		r := got.Request
		if r.Method != "POST" || r.Host != "app.example.com" || r.Path != "/demo/x" || r.Query != "y=1" {
			t.Errorf("request = %+v", r)
		}
		if !r.ClientSecretSeen {
			t.Error("client_secret_seen = false, want true")
		}
		if r.Headers["cf-access-client-id"] == "" || r.Headers["x-multi"] != "one, two" {
			t.Errorf("headers = %v", r.Headers)
		}
		for _, hidden := range []string{"cookie", "authorization", "cf-access-jwt-assertion", "cf-access-client-secret"} {
			if _, ok := r.Headers[hidden]; ok {
				t.Errorf("header %s echoed", hidden)
			}
		}
	})

	t.Run("secret stripped upstream", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cf-Access-Jwt-Assertion", token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var got response
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("status %d, %v", rec.Code, err)
		}
		if got.Request.ClientSecretSeen {
			t.Error("client_secret_seen = true without the header")
		}
	})

	for _, tc := range []struct {
		name   string
		tokens []string
		reason string
	}{
		{"missing", nil, "missing cf-access-jwt-assertion header"},
		{"two tokens", []string{token, token}, "more than one cf-access-jwt-assertion header"},
		{"garbage", []string{"x"}, "malformed token"},
		{"wrong audience", []string{k.sign(t, with(claimsAt(clk.Now()), "aud", "other"))}, "audience not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/demo", nil)
			for _, tok := range tc.tokens {
				req.Header.Add("Cf-Access-Jwt-Assertion", tok)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got["error"] != "unauthorized" || got["reason"] != tc.reason {
				t.Errorf("body = %v, want reason %q", got, tc.reason)
			}
		})
	}

	t.Run("healthz needs no token", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
			t.Errorf("status %d body %q", rec.Code, rec.Body)
		}
	})
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		auds    []string
		wantErr string
	}{
		{"repeated and comma list", []string{"--aud", "a,b", "--aud", " c ", "--aud", ","}, []string{"a", "b", "c"}, ""},
		{"any aud", []string{"--insecure-any-aud"}, nil, ""},
		{"aud required", nil, nil, "--aud is required"},
		{"empty aud", []string{"--aud", ""}, nil, "--aud is required"},
		{"both", []string{"--aud", "a", "--insecure-any-aud"}, nil, "exclude each other"},
		{"bad jwks url", []string{"--aud", "a", "--jwks-url", "127.0.0.1:9003/jwks"}, nil, "--jwks-url"},
		{"stray argument", []string{"--aud", "a", "serve"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--audience", "a"}, nil, "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.audiences, tc.auds) {
				t.Errorf("audiences = %q, want %q", c.audiences, tc.auds)
			}
			if c.addr != "127.0.0.1:8080" || c.jwksURL != "http://127.0.0.1:9003/.well-known/jwks.json" {
				t.Errorf("defaults: %+v", c)
			}
		})
	}
}

// TestRun starts the real server on a loopback port with an unreachable JWKS (startup must not
// fail), then stops it through the context.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--aud", testAud, "--jwks-url", "http://127.0.0.1:1/jwks.json"}, &logs)
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, want := range []string{"JWKS not loaded yet", "listening"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if err := run(context.Background(), nil, io.Discard); err == nil {
		t.Error("run without --aud succeeded")
	}
}
