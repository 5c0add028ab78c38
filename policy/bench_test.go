package policy

import (
	"net/netip"
	"testing"
)

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"normal", "/api/v1/users/42?expand=true"},
		{"dirty", "/api//v1/./users/../users/%34%32;x=1?expand=true"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NormalizeHost("app.example.com:443")
	}
}

func BenchmarkRoute(b *testing.B) {
	e := mustCompile(b, manyApps(1000), nil)
	for _, bc := range []struct{ name, host, path string }{
		{"exact", "svc400.example.com", "/x"},
		{"wildcard", "a.b.tenant401.example.com", "/"},
		{"prefix", "shared.example.com", "/team402/api/v403/users/1"},
		{"miss", "nowhere.example.org", "/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e.Route(bc.host, bc.path) == nil && bc.name != "miss" {
					b.Fatal("no route")
				}
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	apps := manyApps(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(apps, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	// Ten policies; the request matches the last allow policy.
	pols := []*Policy{pol("bp", Bypass, 1, ipRule("198.51.100.0/24"))}
	for i, id := range []string{"n1", "n2", "n3", "n4"} {
		pols = append(pols, pol(id, NonIdentity, i, tokenRule("cccccccc-cccc-4ccc-8ccc-00000000000"+string(rune('0'+i)))))
	}
	pols = append(pols,
		pol("d1", Deny, 1, ipRule("203.0.113.0/24")),
		pol("d2", Deny, 2, Rule{Principal: &PrincipalRule{Prefix: "spiffe://evil/"}}),
		pol("a1", Allow, 3, Rule{CommonName: &CommonNameRule{CommonName: "other"}}),
		pol("a2", Allow, 4, tokenRule(tokB), ipRule("10.0.0.0/8")),
	)
	pols[len(pols)-1].Require = []Rule{{Certificate: empty}}
	a := compileOne(b, pols...)
	s := &Subject{TokenID: tokA, SourceIP: netip.MustParseAddr("::ffff:10.1.2.3"), HasCertificate: true, Principal: "spiffe://c/ns/x/sa/y"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := a.Bypass(s); ok {
			b.Fatal("bypassed")
		}
		if r := a.Evaluate(s); r.Decision != Allow {
			b.Fatal(r)
		}
	}
}
