package authz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// benchLogger is what serve configures (JSON, allowed decisions logged),
// writing to io.Discard so the benchmark measures formatting, not a disk.
func benchLogger(c *Config) {
	c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	c.LogAllowed = true
}

func noLogger(c *Config) { c.Logger = nil }

// BenchmarkCheck measures Server.Check called directly with pre-built
// requests (the gRPC decode/encode around it is the same for every server).
func BenchmarkCheck(b *testing.B) {
	for _, logging := range []struct {
		suffix string
		cfg    func(*Config)
	}{
		{"", benchLogger},
		{"/unlogged", noLogger},
		{"/observed", func(c *Config) { benchLogger(c); c.Observer = &countingObserver{} }},
	} {
		w, reqs := pathRequests(b, logging.cfg)
		cases := []struct {
			name string
			req  *authv3.CheckRequest
			ok   bool
		}{
			{"service_token", reqs["service_token"], true},
			{"jwt_cookie", reqs["jwt_cookie"], true},
			{"deny_wrong_secret", reqs["deny"], false},
			{"bypass", reqs["bypass"], true},
		}
		for _, c := range cases {
			b.Run(c.name+logging.suffix, func(b *testing.B) {
				ctx := context.Background()
				if resp, _ := w.srv.Check(ctx, c.req); (resp.GetStatus().GetCode() == 0) != c.ok {
					b.Fatalf("unexpected decision: %s", reasonOf(resp))
				}
				b.ReportAllocs()
				for b.Loop() {
					w.srv.Check(ctx, c.req)
				}
			})
		}
	}
}

// parallelWorld is built once: 100k tokens and 1,000 compiled applications
// take seconds, and the benchmark function runs once per b.N probe.
var parallelWorld struct {
	once sync.Once
	srv  *Server
	reqs []*authv3.CheckRequest
}

// BenchmarkCheckParallel: 100k tokens, 1,000 applications (each with a
// policy naming its 100 tokens), requests spread over all of them.
func BenchmarkCheckParallel(b *testing.B) {
	const nTokens, nApps, nReqs = 100_000, 1_000, 4096
	ctx := context.Background()
	pw := &parallelWorld
	pw.once.Do(func() {
		w := newWorld(b, benchLogger)
		secrets := make([]string, nTokens)
		for i := range nTokens {
			_, secrets[i] = w.token(fmt.Sprintf("tok-%d", i))
		}
		for a := range nApps {
			app := w.app(fmt.Sprintf("app-%d", a), fmt.Sprintf("app-%d.example.com", a))
			rules := make([]policy.Rule, 0, nTokens/nApps)
			for i := a * (nTokens / nApps); i < (a+1)*(nTokens/nApps); i++ {
				rules = append(rules, tokenRule(w.toks[i]))
			}
			w.policy(app, policy.NonIdentity, rules...)
		}
		w.publish()
		for i := range nReqs {
			t := (i * 7919) % nTokens // spread over tokens (and so apps)
			pw.reqs = append(pw.reqs, httpReq(fmt.Sprintf("app-%d.example.com", t/(nTokens/nApps)), "/api",
				headerClientID, w.toks[t].ClientID, headerClientSecret, secrets[t]))
		}
		for _, r := range pw.reqs { // warm the JWT cache: never sign in the loop
			if resp, _ := w.srv.Check(ctx, r); resp.GetStatus().GetCode() != 0 {
				b.Fatalf("setup request denied: %s", reasonOf(resp))
			}
		}
		pw.srv = w.srv
	})
	if pw.srv == nil {
		b.Fatal("setup failed")
	}
	srv, reqs := pw.srv, pw.reqs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			srv.Check(ctx, reqs[i%nReqs])
			i++
		}
	})
}
