package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func mintedCount(s *Server) int { return s.minted.len() }

func TestJWTReuse(t *testing.T) {
	b := newBase(t)
	req := tokenReq(b.alpha.ClientID, b.alphaSecret)
	first, _ := wantAllowToken(t, b.check(req))
	// The same JWT (and the same shared response) while half the 24h
	// session remains.
	b.clock.Advance(11 * time.Hour)
	resp := b.check(req)
	if again, _ := wantAllowToken(t, resp); again != first {
		t.Fatal("JWT re-signed while still fresh")
	}
	if b.check(req) != resp {
		t.Error("allow response rebuilt instead of shared")
	}
	// Past half its lifetime: a new one.
	b.clock.Advance(time.Hour + time.Second)
	second, _ := wantAllowToken(t, b.check(req))
	if second == first {
		t.Fatal("JWT reused past half its lifetime")
	}
	// A change to the token (here a rename; UpdatedAt moves) re-signs.
	b.clock.Advance(time.Second)
	c := b.alpha.Clone()
	c.Name, c.UpdatedAt = "alpha-renamed", b.now()
	b.srv.Publish(b.srv.Snapshot().Apply([]*tokens.ServiceToken{c}, nil))
	third, _ := wantAllowToken(t, b.check(req))
	if third == second {
		t.Fatal("JWT reused after the token changed")
	}
	if cl, _ := b.keys.Verify(third, testIssuer, b.now()); cl.ServiceTokenName != "alpha-renamed" {
		t.Errorf("service_token_name = %q after rename", cl.ServiceTokenName)
	}
	// A new signing key re-signs.
	next, _, err := tokens.RotateKeys(b.keys.Keys(), tokens.AlgES256, tokens.MaxSessionDuration, 0, b.now())
	if err != nil {
		t.Fatal(err)
	}
	b.keys = keySet(t, next...)
	b.srv.Publish(b.srv.Snapshot().WithKeys(b.keys))
	fourth, _ := wantAllowToken(t, b.check(req))
	if fourth == third {
		t.Fatal("JWT reused after key rotation")
	}
	if _, err := b.keys.Verify(fourth, testIssuer, b.now()); err != nil {
		t.Fatal(err)
	}
}

func TestJWTAfterSessionRevocation(t *testing.T) {
	b := newBase(t)
	req := tokenReq(b.alpha.ClientID, b.alphaSecret)
	old, _ := wantAllowToken(t, b.check(req))
	// Revoke in the middle of a second, the way an operator would.
	b.clock.Advance(500 * time.Millisecond)
	b.app.SessionsRevokedAt = b.now()
	b.app.UpdatedAt = b.now()
	b.publish()
	wantDeny(t, b.check(cookieReq(old)), ReasonSessionRevoked)

	// The very next request (same second) gets a JWT that is not revoked.
	fresh, _ := wantAllowToken(t, b.check(req))
	if fresh == old {
		t.Fatal("revoked JWT handed out again")
	}
	wantAllowToken(t, b.check(cookieReq(fresh)))
}

func TestExplainRecordsNothing(t *testing.T) {
	b := newBase(t)
	req := tokenReq(b.alpha.ClientID, b.alphaSecret)
	if v := b.srv.Explain(req); !v.Allowed || v.TokenName != "alpha" || v.PolicyDecision != "non_identity" || v.Rule == "" {
		t.Fatalf("Explain = %+v", v)
	}
	if n := mintedCount(b.srv); n != 0 {
		t.Errorf("Explain minted %d JWTs", n)
	}
	if seen := b.srv.DrainLastSeen(); len(seen) != 0 {
		t.Errorf("Explain recorded last-seen: %v", seen)
	}
	if logs := b.logs.String(); logs != "" {
		t.Errorf("Explain logged: %s", logs)
	}
}

func TestLastSeen(t *testing.T) {
	b := newBase(t)
	b.check(tokenReq(b.alpha.ClientID, b.alphaSecret))
	b.check(tokenReq(b.beta.ClientID, b.alphaSecret)) // wrong secret: not seen
	b.clock.Advance(5 * time.Second)
	jwt, _ := wantAllowToken(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))

	seen := b.srv.DrainLastSeen()
	if len(seen) != 1 || !seen[b.alpha.ID].Equal(b.now()) {
		t.Fatalf("last seen = %v, want alpha at %v", seen, b.now())
	}
	if again := b.srv.DrainLastSeen(); len(again) != 0 {
		t.Fatalf("second drain = %v, want empty", again)
	}
	// A session JWT counts as the token being used.
	b.clock.Advance(time.Minute)
	wantAllowToken(t, b.check(cookieReq(jwt)))
	if seen := b.srv.DrainLastSeen(); !seen[b.alpha.ID].Equal(b.now()) {
		t.Fatalf("last seen after JWT = %v", seen)
	}
}

func TestLastSeenTouchAllocs(t *testing.T) {
	l := newLastSeen()
	now := t0
	l.touch("a-token-id", now)
	if n := testing.AllocsPerRun(100, func() {
		now = now.Add(2 * time.Second)
		l.touch("a-token-id", now)
	}); n != 0 {
		t.Errorf("touch of a seen token allocates %v times", n)
	}
}

func TestLastSeenConcurrent(t *testing.T) {
	l := newLastSeen()
	var wg sync.WaitGroup
	ids := []string{"a", "b", "c", "d"}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				l.touch(ids[(g+i)%len(ids)], t0.Add(time.Duration(i)*time.Second))
			}
		}()
	}
	drained := map[string]time.Time{}
	for range 10 {
		for k, v := range l.drain() {
			if v.After(drained[k]) {
				drained[k] = v
			}
		}
	}
	wg.Wait()
	for k, v := range l.drain() {
		if v.After(drained[k]) {
			drained[k] = v
		}
	}
	for _, id := range ids {
		if drained[id].IsZero() {
			t.Errorf("token %s never drained", id)
		}
	}
}

func TestMintCacheBounded(t *testing.T) {
	c := newJWTCache()
	c.perShard = 8
	ks := keySet(t, testKey(t, tokens.AlgEdDSA, 0))
	app := &policy.Application{ID: "app", AUD: strings.Repeat("a", 64), SessionDuration: time.Hour}
	tok := &tokens.ServiceToken{ID: "tok", ClientID: "c", Name: "n", Enabled: true}
	per := c.perShard
	// Tokens whose ids fall in one shard.
	var ids []string
	for i := 0; len(ids) < per+1; i++ {
		if id := fmt.Sprintf("tok-%d", i); shardOf(id)%cacheShards == shardOf("tok")%cacheShards {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		tok.ID = id
		if m, r := c.get(ks, testIssuer, tok, app, nil, t0); m == nil {
			t.Fatalf("mint failed: %s", r)
		}
	}
	sh := &c.shards[shardOf("tok")%cacheShards]
	if sh.n != 1 || len(sh.m) != 1 {
		t.Errorf("shard holds %d entries (%d tokens) after overflowing its bound %d, want 1 (dropped, then the new one)", sh.n, len(sh.m), per)
	}
}

// TestMintCacheKeepsOnlyCurrentVersions: a token that changes (rotation,
// update) leaves one entry per application, not one per version, and
// ForgetTokens drops a token's entries.
func TestMintCacheKeepsOnlyCurrentVersions(t *testing.T) {
	c := newJWTCache()
	ks := keySet(t, testKey(t, tokens.AlgEdDSA, 0))
	apps := []*policy.Application{
		{ID: "app1", AUD: strings.Repeat("a", 64), SessionDuration: time.Hour},
		{ID: "app2", AUD: strings.Repeat("b", 64), SessionDuration: time.Hour},
	}
	tok := &tokens.ServiceToken{ID: "tok", ClientID: "c", Name: "n", Enabled: true}
	other := &tokens.ServiceToken{ID: "other", ClientID: "d", Name: "o", Enabled: true}
	for v := range 50 {
		tok.SecretVersion, tok.UpdatedAt = int64(v), t0.Add(time.Duration(v))
		for _, app := range apps {
			if m, r := c.get(ks, testIssuer, tok, app, nil, t0); m == nil {
				t.Fatalf("mint failed: %s", r)
			}
			if m, _ := c.get(ks, testIssuer, other, app, nil, t0); m == nil {
				t.Fatal("mint failed")
			}
		}
		// The same key again is a hit, not a second entry.
		a, _ := c.get(ks, testIssuer, tok, apps[0], nil, t0)
		b, _ := c.get(ks, testIssuer, tok, apps[0], nil, t0)
		if a != b {
			t.Fatal("a fresh entry was not reused")
		}
	}
	if n := c.len(); n != 4 {
		t.Errorf("after 50 versions of a token on 2 applications the cache holds %d entries, want 4", n)
	}
	c.forget([]string{"tok", "never-seen"})
	if n := c.len(); n != 2 {
		t.Errorf("after forgetting the token the cache holds %d entries, want 2 (the other token's)", n)
	}
	if m, _ := c.get(ks, testIssuer, other, apps[1], nil, t0); m == nil || c.len() != 2 {
		t.Errorf("the other token's entry was lost: %d entries", c.len())
	}
}

func TestMintRefusals(t *testing.T) {
	c := newJWTCache()
	ks := keySet(t, testKey(t, tokens.AlgEdDSA, 0))
	app := &policy.Application{ID: "app", AUD: strings.Repeat("a", 64), SessionDuration: time.Hour}
	tok := &tokens.ServiceToken{ID: "tok", ClientID: "c", Enabled: true, ExpiresAt: t0.Add(400 * time.Millisecond)}
	if m, r := c.get(ks, testIssuer, tok, app, nil, t0.Add(100*time.Millisecond)); m != nil || r != ReasonTokenExpired {
		t.Errorf("token with <1s left: %v, %s; want token_expired", m, r)
	}
	tok.ExpiresAt = time.Time{}
	if m, r := c.get(nil, testIssuer, tok, app, nil, t0); m != nil || r != ReasonNoSigningKey {
		t.Errorf("no keys: %v, %s", m, r)
	}
	if m, r := c.get(ks, "", tok, app, nil, t0); m != nil || r != ReasonNoSigningKey {
		t.Errorf("no issuer: %v, %s", m, r)
	}
}

func TestDecisionLog(t *testing.T) {
	b := newBase(t)
	jwt, _ := wantAllowToken(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))
	b.check(cookieReq(jwt))
	b.check(tokenReq(b.alpha.ClientID, b.betaSecret))
	lines := b.logs.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3: %s", len(lines), b.logs.String())
	}
	allow, deny := lines[0], lines[2]
	for k, want := range map[string]any{
		"msg": "authz", "request_id": "7b0e4c1a-2f3d-4e5f-9a8b-0c1d2e3f4a5b", "application": "app",
		"token_name": "alpha", "client_id": b.alpha.ClientID, "decision": "allow",
		"reason": "allowed_by_policy", "dry_run": false, "rule": "include[0] service_token",
	} {
		if allow[k] != want {
			t.Errorf("allow line %s = %v, want %v", k, allow[k], want)
		}
	}
	if _, ok := allow["latency_us"].(float64); !ok || allow["policy"] == "" {
		t.Errorf("allow line lacks latency_us or policy: %v", allow)
	}
	if deny["decision"] != "deny" || deny["reason"] != "wrong_secret" || deny["client_id"] != b.alpha.ClientID || deny["token_name"] != nil {
		t.Errorf("deny line = %v", deny)
	}
	for _, secret := range []string{b.alphaSecret, b.betaSecret, jwt} {
		if strings.Contains(b.logs.String(), secret) {
			t.Fatal("the decision log contains a secret or a JWT")
		}
	}
}

func TestDecisionLogSettings(t *testing.T) {
	t.Run("allowed lines off", func(t *testing.T) {
		b := newBase(t, func(c *Config) { c.LogAllowed = false })
		b.check(tokenReq(b.alpha.ClientID, b.alphaSecret))
		b.check(tokenReq(b.alpha.ClientID, b.betaSecret))
		lines := b.logs.lines(t)
		if len(lines) != 1 || lines[0]["decision"] != "deny" {
			t.Errorf("lines = %v, want only the deny", lines)
		}
	})
	t.Run("level disabled", func(t *testing.T) {
		logs := &lockedBuffer{}
		b := newBase(t, func(c *Config) {
			c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		})
		b.check(tokenReq(b.alpha.ClientID, b.betaSecret))
		if logs.String() != "" {
			t.Errorf("logged below the handler's level: %s", logs)
		}
	})
	t.Run("no logger", func(t *testing.T) {
		b := newBase(t, func(c *Config) { c.Logger = nil })
		wantDeny(t, b.check(tokenReq(b.alpha.ClientID, b.betaSecret)), ReasonWrongSecret)
	})
}

func TestCheckRecoversFromPanic(t *testing.T) {
	b := newBase(t)
	// A clock that panics stands for any bug on the Check path.
	b.srv.now = func() time.Time { panic("clock broke") }
	resp, err := b.srv.Check(context.Background(), tokenReq(b.alpha.ClientID, b.alphaSecret))
	if err != nil {
		t.Fatal(err)
	}
	wantDeny(t, resp, ReasonInternalError)
	if !strings.Contains(b.logs.String(), "clock broke") {
		t.Error("panic not logged")
	}
	if v := b.srv.Explain(tokenReq(b.alpha.ClientID, b.alphaSecret)); v.Allowed || v.Reason != ReasonInternalError {
		t.Errorf("Explain after panic = %+v", v)
	}
}

func TestConcurrentChecksAndPublish(t *testing.T) {
	b := newBase(t)
	jwt := b.sessionJWT(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // an admin publishing snapshots
		defer wg.Done()
		for i := range 500 {
			c := b.beta.Clone()
			c.UpdatedAt = t0.Add(time.Duration(i))
			b.srv.Publish(b.srv.Snapshot().Apply([]*tokens.ServiceToken{c}, nil))
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				resp, _ := b.srv.Check(context.Background(), tokenReq(b.alpha.ClientID, b.alphaSecret))
				if resp.GetStatus().GetCode() != 0 {
					t.Error("allow turned into deny under concurrency")
					return
				}
				resp, _ = b.srv.Check(context.Background(), cookieReq(jwt))
				if resp.GetStatus().GetCode() != 0 {
					t.Error("session allow turned into deny under concurrency")
					return
				}
				b.srv.DrainLastSeen()
			}
		}()
	}
	wg.Wait()
}

// TestJWTAcrossPrePublishedRotation: after a rotation with pre-publication
// the new key is in the JWKS at once, Checks keep minting (and reusing)
// JWTs with the old key until the hand-over, then mint with the new one;
// JWTs of the old key still work when presented back.
func TestJWTAcrossPrePublishedRotation(t *testing.T) {
	b := newBase(t)
	req := tokenReq(b.alpha.ClientID, b.alphaSecret)
	before, _ := wantAllowToken(t, b.check(req))
	oldKID := b.keys.ActiveAt(b.now()).KID

	next, added, err := tokens.RotateKeys(b.keys.Keys(), tokens.AlgES256, tokens.MaxSessionDuration, tokens.KeyPrePublish, b.now())
	if err != nil {
		t.Fatal(err)
	}
	b.keys = keySet(t, next...)
	b.srv.Publish(b.srv.Snapshot().WithKeys(b.keys))
	if !strings.Contains(string(b.keys.JWKS()), added.KID) {
		t.Fatal("the new key is not published at once")
	}
	during, _ := wantAllowToken(t, b.check(req))
	if kid := jwtKID(t, during); kid != oldKID {
		t.Fatalf("during pre-publication the JWT is signed by %s, want the old key %s", kid, oldKID)
	}
	if during != before {
		t.Error("the rotation's publication alone re-signed a JWT that is still reusable")
	}

	b.clock.Advance(added.ActiveFrom.Sub(b.now()))
	after, _ := wantAllowToken(t, b.check(req))
	if kid := jwtKID(t, after); kid != added.KID {
		t.Fatalf("after the hand-over the JWT is signed by %s, want the new key %s", kid, added.KID)
	}
	wantAllowToken(t, b.check(cookieReq(before))) // the old key's JWT still verifies
	wantAllowToken(t, b.check(cookieReq(after)))
}

// jwtKID reads the kid from a JWT's header, unverified.
func jwtKID(t *testing.T, jwt string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(hdr)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ KID string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

// TestForgetTokens: a token's minted JWTs go when it is deleted or changes
// (ForgetTokens, as serve's view calls it after publishing), and a JWT
// minted for a version of a token that is no longer published is not kept
// even when it was minted after the forget (a Check deciding on the old
// snapshot while the change was published).
func TestForgetTokens(t *testing.T) {
	b := newBase(t)
	wantAllowToken(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))
	if n := mintedCount(b.srv); n != 1 {
		t.Fatalf("%d minted JWTs after one allow, want 1", n)
	}
	b.srv.Publish(b.srv.Snapshot().Apply(nil, []string{b.alpha.ID}))
	b.srv.ForgetTokens([]string{b.alpha.ID})
	if n := mintedCount(b.srv); n != 0 {
		t.Fatalf("%d minted JWTs after the token was deleted and forgotten, want 0", n)
	}
	// The late Check: alpha as the old snapshot had it.
	snap := b.srv.Snapshot()
	app := snap.Engine().Apps()[0].App
	if m, r := b.srv.minted.get(snap.Keys(), testIssuer, b.alpha, app, nil, b.now()); m == nil {
		t.Fatalf("mint failed: %s", r)
	}
	if n := mintedCount(b.srv); n != 0 {
		t.Errorf("a JWT minted for a deleted token was kept (%d entries)", n)
	}
}

// TestForgetApplications: deleting an application or a policy drops the JWTs
// minted for it, of every token, and no others; a changed application
// replaces its token's entry instead of adding one.
func TestForgetApplications(t *testing.T) {
	c := newJWTCache()
	ks := keySet(t, testKey(t, tokens.AlgEdDSA, 0))
	app1 := &policy.Application{ID: "app1", AUD: strings.Repeat("a", 64), SessionDuration: time.Hour}
	app2 := &policy.Application{ID: "app2", AUD: strings.Repeat("b", 64), SessionDuration: time.Hour}
	pol := &policy.Policy{ID: "pol1"}
	var toks []*tokens.ServiceToken
	for i := range 10 {
		tok := &tokens.ServiceToken{ID: fmt.Sprintf("tok-%d", i), ClientID: fmt.Sprintf("c%d", i), Name: "n", Enabled: true}
		toks = append(toks, tok)
		c.get(ks, testIssuer, tok, app1, pol, t0)
		c.get(ks, testIssuer, tok, app2, nil, t0)
	}
	if n := c.len(); n != 20 {
		t.Fatalf("%d entries, want 20", n)
	}
	// app2 changes (revoke-sessions, say): re-mints replace, not add.
	app2.UpdatedAt = t0.Add(time.Second)
	for _, tok := range toks {
		c.get(ks, testIssuer, tok, app2, nil, t0)
	}
	if n := c.len(); n != 20 {
		t.Fatalf("%d entries after app2 changed, want 20", n)
	}
	c.forgetTargets(nil, []string{"pol1"})
	if n := c.len(); n != 10 {
		t.Fatalf("%d entries after pol1 was deleted, want 10", n)
	}
	c.forgetTargets([]string{"app2"}, nil)
	if n := c.len(); n != 0 {
		t.Fatalf("%d entries after app2 was deleted, want 0", n)
	}
}
