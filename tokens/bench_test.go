package tokens

import (
	"testing"
)

// Run with: go test -run x -bench . -benchtime 200ms ./tokens/

func BenchmarkCheckSecret(b *testing.B) {
	s, err := NewSecret(SecretPrefix)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckSecret(s, SecretPrefix, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	s, err := NewSecret(SecretPrefix)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Digest(s)
	}
}

// BenchmarkVerifySecret is the whole credential check Check does once it
// has found the token: format check, digest, constant-time compares.
func BenchmarkVerifySecret(b *testing.B) {
	tok, secret, err := New("bench", DefaultDuration, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if CheckSecret(secret, SecretPrefix, true) != nil {
			b.Fatal("malformed")
		}
		d := Digest(secret)
		if tok.Verify(&d, t0) != VerifyOK {
			b.Fatal("not ok")
		}
	}
}

func benchmarkSign(b *testing.B, alg Alg) {
	ks := mustKeySet(b, fixtureKey(b, string(alg)))
	c := testClaims(t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, AlgRS256) }
func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, AlgES256) }
func BenchmarkSignEdDSA(b *testing.B) { benchmarkSign(b, AlgEdDSA) }

func BenchmarkVerifyJWT(b *testing.B) {
	for _, alg := range allAlgs {
		b.Run(string(alg), func(b *testing.B) {
			ks := mustKeySet(b, fixtureKey(b, string(alg)))
			tok, err := ks.Sign(testClaims(t0))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ks.Verify(tok, testIssuer, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
