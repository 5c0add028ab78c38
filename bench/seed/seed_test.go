package main

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// TestSeed seeds a small store and reads it back the way the server does:
// the file passes store.Verify, the state loads and compiles, the routes
// land on the right applications, and every sampled credential verifies
// against its token.
func TestSeed(t *testing.T) {
	dir := t.TempDir()
	c := config{dataDir: dir, tokens: 2500, apps: 7, sample: 100, creds: dir + "/creds.json",
		host: "app.example.com", bypassHost: "public.example.com", chunk: 1000, prefix: "bench"}
	if err := seed(c); err != nil {
		t.Fatal(err)
	}
	if err := store.Verify(store.FilePath(dir)); err != nil {
		t.Fatalf("store.Verify: %v", err)
	}
	db, err := store.Open(store.FilePath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tokens) != c.tokens || len(st.Apps) != c.apps+1 || len(st.Policies) != c.apps+1 {
		t.Fatalf("loaded %d tokens, %d apps, %d policies; want %d, %d, %d",
			len(st.Tokens), len(st.Apps), len(st.Policies), c.tokens, c.apps+1, c.apps+1)
	}
	eng, err := policy.Compile(st.Apps, st.Policies)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host, app string
		bypass    bool
	}{
		{"app.example.com", "bench-app-0000", false},
		{"app-0003.example.com", "bench-app-0003", false},
		{"public.example.com", "bench-public", true},
	}
	for _, tt := range tests {
		a := eng.Route(tt.host, "/x")
		if a == nil || a.App.Name != tt.app {
			t.Fatalf("Route(%s) = %v, want %s", tt.host, a, tt.app)
		}
		if _, ok := a.Bypass(&policy.Subject{}); ok != tt.bypass {
			t.Errorf("%s: bypass = %v, want %v", tt.host, ok, tt.bypass)
		}
		if !tt.bypass {
			if r := a.Evaluate(&policy.Subject{TokenID: st.Tokens[0].ID}); r.Decision != policy.NonIdentity {
				t.Errorf("%s: a valid token gets %q, want non_identity", tt.host, r.Decision)
			}
		}
	}

	creds, err := checkreq.ReadCreds(c.creds)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != c.sample {
		t.Fatalf("%d credentials written, want %d", len(creds), c.sample)
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, cr := range creds {
		var tok *tokens.ServiceToken
		if err := db.View(func(tx *store.Tx) error {
			var err error
			tok, err = tx.TokenByClientID(cr.ClientID)
			return err
		}); err != nil {
			t.Fatalf("client id %s: %v", cr.ClientID, err)
		}
		d := tokens.Digest(cr.ClientSecret)
		if r := tok.Verify(&d, now); r != tokens.VerifyOK {
			t.Fatalf("token %s: sampled secret verifies as %v", tok.Name, r)
		}
		if seen[tok.ID] {
			t.Fatalf("token %s sampled twice", tok.Name)
		}
		seen[tok.ID] = true
	}
}

func TestSeedRefusesBadFlags(t *testing.T) {
	tests := []config{
		{tokens: 1, apps: 1}, // no data dir
		{dataDir: t.TempDir(), tokens: -1, apps: 1, chunk: 1},           // negative tokens
		{dataDir: t.TempDir(), tokens: 1, apps: 0, chunk: 1},            // no apps
		{dataDir: t.TempDir(), tokens: 1, apps: 1, chunk: 1, sample: 1}, // sample without creds file
	}
	for i, c := range tests {
		if err := seed(c); err == nil {
			t.Errorf("case %d: seed(%+v) succeeded", i, c)
		}
	}
}
