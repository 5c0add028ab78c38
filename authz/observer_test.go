package authz

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// observation is one ObserveCheck call.
type observation struct {
	app     string // name; "" when no application
	reason  Reason
	dryRun  bool
	elapsed time.Duration
}

// recorder is an Observer that keeps every call.
type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) ObserveCheck(app *policy.Application, reason Reason, dryRun bool, elapsed time.Duration) {
	o := observation{reason: reason, dryRun: dryRun, elapsed: elapsed}
	if app != nil {
		o.app = app.Name
	}
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

func (r *recorder) take() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.obs
	r.obs = nil
	return o
}

// countingObserver is the cheapest useful Observer: one atomic add per
// Check. The benchmarks and the allocation budget use it to show what the
// hook itself costs.
type countingObserver struct{ byReason [256]atomic.Int64 }

func (c *countingObserver) ObserveCheck(_ *policy.Application, reason Reason, _ bool, _ time.Duration) {
	c.byReason[reason].Add(1)
}

func observed(obs Observer) func(*Config) { return func(c *Config) { c.Observer = obs } }

func TestObserverSeesEveryCheckOnce(t *testing.T) {
	rec := &recorder{}
	b := newBase(t, observed(rec))
	dry := b.app_("dry", "dry.example.com")
	dry.DryRun = true
	b.policy(dry, policy.NonIdentity, tokenRule(b.alpha))
	b.publish()

	for _, tt := range []struct {
		name string
		req  *authv3.CheckRequest
		want observation
	}{
		{"token allow", tokenReq(b.alpha.ClientID, b.alphaSecret), observation{app: "app", reason: ReasonAllowedByPolicy}},
		{"wrong secret", tokenReq(b.alpha.ClientID, b.betaSecret), observation{app: "app", reason: ReasonWrongSecret}},
		{"token not in the policy", tokenReq(b.beta.ClientID, b.betaSecret), observation{app: "app", reason: ReasonNoPolicyMatched}},
		{"no application", httpReq("elsewhere.example.com", "/"), observation{reason: ReasonNoApplication}},
		{"malformed", &authv3.CheckRequest{}, observation{reason: ReasonMalformedRequest}},
		{"dry run deny", httpReq("dry.example.com", "/", headerClientID, b.alpha.ClientID, headerClientSecret, b.betaSecret),
			observation{app: "dry", reason: ReasonWrongSecret, dryRun: true}},
		{"dry run allow", httpReq("dry.example.com", "/", headerClientID, b.alpha.ClientID, headerClientSecret, b.alphaSecret),
			observation{app: "dry", reason: ReasonAllowedByPolicy, dryRun: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b.check(tt.req)
			got := rec.take()
			if len(got) != 1 {
				t.Fatalf("%d observations, want 1: %+v", len(got), got)
			}
			if got[0].elapsed <= 0 {
				t.Errorf("elapsed = %v, want > 0", got[0].elapsed)
			}
			got[0].elapsed = 0
			if got[0] != tt.want {
				t.Errorf("observed %+v, want %+v", got[0], tt.want)
			}
		})
	}

	// Explain records nothing, observations included.
	b.srv.Explain(tokenReq(b.alpha.ClientID, b.alphaSecret))
	if got := rec.take(); len(got) != 0 {
		t.Errorf("Explain was observed: %+v", got)
	}
}

// panicky panics on its first n calls.
type panicky struct{ calls, n atomic.Int32 }

func (p *panicky) ObserveCheck(*policy.Application, Reason, bool, time.Duration) {
	if p.calls.Add(1) <= p.n.Load() {
		panic("observer bug")
	}
}

func TestPanickingObserverDoesNotBreakCheck(t *testing.T) {
	p := &panicky{}
	p.n.Store(1)
	b := newBase(t, observed(p))
	resp, err := b.srv.Check(context.Background(), tokenReq(b.alpha.ClientID, b.alphaSecret))
	if err != nil || resp == nil {
		t.Fatalf("Check = %v, %v", resp, err)
	}
	// The observer panicked after the decision: Check answers internal_error
	// (it cannot tell where the panic came from) and does not call the
	// observer a second time.
	wantDeny(t, resp, ReasonInternalError)
	if n := p.calls.Load(); n != 1 {
		t.Errorf("observer called %d times, want 1", n)
	}
	wantAllowToken(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)))
	if n := p.calls.Load(); n != 2 {
		t.Errorf("observer called %d times after a second Check, want 2", n)
	}
}

func TestObserverSeesPanickedCheck(t *testing.T) {
	rec := &recorder{}
	b := newBase(t, observed(rec))
	// A nil snapshot engine cannot panic; a nil clock can.
	b.srv.now = func() time.Time { panic("clock bug") }
	wantDeny(t, b.check(tokenReq(b.alpha.ClientID, b.alphaSecret)), ReasonInternalError)
	got := rec.take()
	if len(got) != 1 || got[0].reason != ReasonInternalError || got[0].app != "" {
		t.Fatalf("observed %+v, want one internal_error without an application", got)
	}
}

func TestSnapshotForEachToken(t *testing.T) {
	var toks []*tokens.ServiceToken
	for i := range 600 { // more than the shard count
		tok, _, err := tokens.New("t"+string(rune('A'+i%26))+time.Duration(i).String(), tokens.Forever, t0)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	s := NewSnapshot(toks, nil, nil).Apply(nil, []string{toks[0].ID})
	seen := map[string]int{}
	s.ForEachToken(func(tok *tokens.ServiceToken) bool { seen[tok.ID]++; return true })
	if len(seen) != len(toks)-1 || seen[toks[0].ID] != 0 {
		t.Fatalf("visited %d distinct tokens (deleted one visited %d times), want %d", len(seen), seen[toks[0].ID], len(toks)-1)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("token %s visited %d times", id, n)
		}
	}
	calls := 0
	s.ForEachToken(func(*tokens.ServiceToken) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Fatalf("returning false did not stop the walk: %d calls", calls)
	}
}
