package authz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// The two deny benchmarks below show that an unknown client id costs what a
// wrong secret for a known one costs (docs/security.md, "Comparing
// secrets"): both check the secret's format, hash it and compare two
// digests in constant time (against the dummy token for an unknown id).
// Compare them with
//
//	go test -run '^$' -bench 'BenchmarkDeny(UnknownClientID|WrongSecret)' -count 10 ./authz | benchstat -
//
// They are benchmarks, not timed assertions: timings on a shared machine
// are too noisy to fail a test on.

// benchDeny measures Check on a request that must be denied with want.
func benchDeny(b *testing.B, want Reason, req func(w *base) *authv3.CheckRequest) {
	for _, logging := range []struct {
		name string
		cfg  func(*Config)
	}{{"unlogged", noLogger}, {"json_log", benchLogger}} {
		b.Run(logging.name, func(b *testing.B) {
			w := newBase(b, logging.cfg)
			// A realistic table: the lookup of a known and of an unknown
			// id both probe a populated shard.
			for range 1000 {
				w.token("filler")
			}
			w.publish()
			r := req(w)
			ctx := context.Background()
			if resp, _ := w.srv.Check(ctx, r); reasonOf(resp) != want.String() {
				b.Fatalf("reason = %s, want %s", reasonOf(resp), want)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.srv.Check(ctx, r)
			}
		})
	}
}

func BenchmarkDenyUnknownClientID(b *testing.B) {
	benchDeny(b, ReasonUnknownClientID, func(w *base) *authv3.CheckRequest {
		id, err := tokens.NewClientID()
		if err != nil {
			b.Fatal(err)
		}
		return tokenReq(id, w.alphaSecret) // a well-formed, real secret
	})
}

func BenchmarkDenyWrongSecret(b *testing.B) {
	benchDeny(b, ReasonWrongSecret, func(w *base) *authv3.CheckRequest {
		return tokenReq(w.alpha.ClientID, w.betaSecret) // well-formed, another token's
	})
}

// BenchmarkDenyMalformedSecret is the contrast: a secret whose checksum
// fails is refused before any lookup or digest, so it is cheaper; that
// reveals nothing about which client ids exist.
func BenchmarkDenyMalformedSecret(b *testing.B) {
	benchDeny(b, ReasonMalformedSecret, func(w *base) *authv3.CheckRequest {
		s := []byte(w.alphaSecret)
		s[len(s)-1] ^= 1
		return tokenReq(w.alpha.ClientID, string(s))
	})
}

// BenchmarkAuthenticateSecret isolates the credential check inside Check
// (format, lookup, digest, constant-time compares), where the two deny
// paths differ only in which token the digest is compared against.
func BenchmarkAuthenticateSecret(b *testing.B) {
	w := newBase(b, noLogger)
	for range 1000 {
		w.token("filler")
	}
	snap := w.publish()
	unknown, err := tokens.NewClientID()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name             string
		clientID, secret string
		want             Reason
	}{
		{"unknown_client_id", unknown, w.alphaSecret, ReasonUnknownClientID},
		{"wrong_secret", w.alpha.ClientID, w.betaSecret, ReasonWrongSecret},
	} {
		b.Run(c.name, func(b *testing.B) {
			var tok tokens.ServiceToken
			if _, r := authenticateSecret(snap, c.clientID, c.secret, w.now(), &tok); r != c.want {
				b.Fatalf("reason = %s, want %s", r, c.want)
			}
			now := w.now()
			b.ReportAllocs()
			for b.Loop() {
				authenticateSecret(snap, c.clientID, c.secret, now, &tok)
			}
		})
	}
}
