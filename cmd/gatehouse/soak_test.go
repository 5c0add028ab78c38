package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

var soakFor = flag.Duration("soak", 0, "TestSoak: how long to run the load (`make soak`); 0 runs the short version CI runs")

// TestSoak is `make soak` (and, short, part of `make test`): Checks at high
// concurrency against a real server (bbolt with fsync, all three listeners)
// while one admin client creates, rotates and deletes tokens and creates and
// deletes applications as fast as the store acknowledges them.
//
// Every request the checkers send has an expectation that the churner keeps
// exact: it marks a request "in flux" before the RPC that changes its answer
// and sets the new answer only once the RPC has returned. A Check is judged
// only when the expectation was the same, and definite, before it was sent
// and after its answer came back, so any allow or deny it contradicts is a
// bug (a stale snapshot, a lost write, a cache that outlives a deletion), not
// a race in the test.
//
// Afterwards: the admin API lists exactly the acknowledged tokens and
// applications; the server restarts on the same data dir and every surviving
// secret still verifies, every deleted or rotated-out one is still refused;
// goroutines and heap are back where they were before the load; goleak finds
// nothing left running.
func TestSoak(t *testing.T) {
	duration, workers := 3*time.Second, 32
	if *soakFor > 0 {
		duration, workers = *soakFor, 64
	} else if testing.Short() {
		duration = time.Second
	}
	leaks := goleak.IgnoreCurrent()

	dataDir := t.TempDir()
	withDir := func(c *serveConfig) {
		c.DataDir = dataDir
		c.Issuer = "https://gatehouse.soak.test" // the default names the (random) HTTP port
		c.LogAllowed = false
		c.LastSeenFlush = 200 * time.Millisecond // flushes run during the load, too
	}
	// Denies are logged, as in production; the lines are counted and
	// dropped, so that the heap measured is the server's.
	logs := &lineCounter{}
	p := startInProcessLogging(t, logs, nil, withDir)
	w := newSoakWorld(t, p)
	w.setUp(16)

	// Quiescent baseline: the connections are open and warm, nothing in flight.
	w.runLoad(workers, 200*time.Millisecond, false)
	base := quiescentSample()

	samples := make(chan soakSample, 64)
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Go(func() {
		tick := time.NewTicker(max(duration/10, 100*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				close(samples)
				return
			case <-tick.C:
				samples <- liveSample()
			}
		}
	})
	start := time.Now()
	w.runLoad(workers, duration, true)
	elapsed := time.Since(start)
	close(stopSampling)
	samplerDone.Wait()
	end := quiescentSample()

	var series []string
	for s := range samples {
		series = append(series, fmt.Sprintf("%d/%.1fMiB", s.goroutines, float64(s.heap)/(1<<20)))
	}
	t.Logf("soak: %d workers for %v: %d checks (%.0f/s), %d judged; %d unexpected allows, %d unexpected denies, %d errors",
		workers, elapsed.Round(time.Millisecond), w.checks.Load(), float64(w.checks.Load())/elapsed.Seconds(), w.judged.Load(),
		w.badAllow.Load(), w.badDeny.Load(), w.errs.Load())
	t.Logf("soak: %d decision and other log lines written", logs.lines.Load())
	t.Logf("soak: churn acknowledged %d token creates, %d rotations, %d token deletes, %d application creates, %d application deletes",
		w.ops["create"], w.ops["rotate"], w.ops["delete"], w.ops["app-create"], w.ops["app-delete"])
	t.Logf("soak: goroutines %d before, %d after; heap in use %.1f MiB before, %.1f MiB after; under load (goroutines/heap): %s",
		base.goroutines, end.goroutines, float64(base.heap)/(1<<20), float64(end.heap)/(1<<20), strings.Join(series, " "))

	for _, f := range w.failures() {
		t.Error(f)
	}
	if w.judged.Load() == 0 || w.ops["create"] == 0 || w.ops["rotate"] == 0 || w.ops["delete"] == 0 || w.ops["app-create"] == 0 {
		t.Errorf("the soak did not exercise every path: %d judged checks, ops %v", w.judged.Load(), w.ops)
	}
	// Between two quiescent points nothing should have been left running.
	// A few goroutines of slack: gRPC keeps per-connection and timer
	// goroutines that come and go.
	if end.goroutines > base.goroutines+8 {
		t.Errorf("goroutines grew from %d to %d over the soak", base.goroutines, end.goroutines)
	}
	if end.heap > base.heap*3/2+32<<20 {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB over the soak", float64(base.heap)/(1<<20), float64(end.heap)/(1<<20))
	}

	// Every acknowledged write is there, and nothing else.
	w.verifyListed()

	// ... and it survives a restart.
	w.close()
	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p = startInProcessLogging(t, logs, nil, withDir)
	w.reconnect(p)
	w.verifyAfterRestart()
	w.close()
	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	goleak.VerifyNone(t, leaks)
}

// lineCounter is a log destination that counts lines and keeps none.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

type soakSample struct {
	goroutines int
	heap       uint64
}

func liveSample() soakSample {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return soakSample{runtime.NumGoroutine(), m.HeapInuse}
}

// quiescentSample lets in-flight goroutines finish and collects garbage
// before reading.
func quiescentSample() soakSample {
	var s soakSample
	for range 5 { // settle: goroutines that are exiting, a GC cycle's sweep
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		s = liveSample()
	}
	return s
}

// Expectations. A probe's state packs a generation counter above the
// expectation, so a checker can tell "the same state" from "changed and
// changed back".
const (
	expectFlux  = 0 // an RPC that changes the answer is in flight
	expectAllow = 1
	expectDeny  = 2
)

// probe is one request the checkers send and what it must be answered.
type probe struct {
	what  string // for failure messages: names, never a secret
	req   *authv3.CheckRequest
	state atomic.Uint64
}

func newProbe(what string, req *authv3.CheckRequest, expect uint64) *probe {
	p := &probe{what: what, req: req}
	p.state.Store(expect)
	return p
}

// set moves the probe to a new expectation in a new generation.
func (p *probe) set(expect uint64) {
	for {
		old := p.state.Load()
		if p.state.CompareAndSwap(old, (old>>2+1)<<2|expect) {
			return
		}
	}
}

// churnToken is a token the churner owns, with its probes.
type churnToken struct {
	tok     *adminv1.ServiceToken
	current *probe // the current secret
}

type churnApp struct {
	app   *adminv1.Application
	probe *probe // a stable token's request to the app's host
}

type soakWorld struct {
	t     *testing.T
	p     *server
	conns []*grpc.ClientConn
	authz []authv3.AuthorizationClient
	admin adminv1.AdminServiceClient
	actx  context.Context

	stableApp    *adminv1.Application
	stableTokens []*adminv1.ServiceToken
	fixed        []*probe // never change: stable tokens' secrets and cookies, wrong secrets, no credential

	rw   sync.RWMutex // guards pool: the churner writes, the checkers read
	pool []*probe     // the churned probes the checkers pick from

	// The churner's own state (read by the test once the churner is done).
	rng      *rand.Rand
	tokens   []*churnToken
	apps     []*churnApp
	dead     []*probe // rotated-out secrets and deleted tokens/apps, for the restart check
	deadSeen int
	ops      map[string]int

	checks, judged, badAllow, badDeny, errs atomic.Int64
	failMu                                  sync.Mutex
	fails                                   []string
}

func newSoakWorld(t *testing.T, p *server) *soakWorld {
	w := &soakWorld{t: t, ops: map[string]int{}, rng: rand.New(rand.NewPCG(42, 42))}
	w.reconnect(p)
	return w
}

func (w *soakWorld) reconnect(p *server) {
	w.p = p
	w.conns, w.authz = nil, nil
	for range 4 { // as Envoy does: a few HTTP/2 connections to the cluster
		conn, err := grpc.NewClient(p.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			w.t.Fatal(err)
		}
		w.conns = append(w.conns, conn)
		w.authz = append(w.authz, authv3.NewAuthorizationClient(conn))
	}
	conn, err := grpc.NewClient(p.adminAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		w.t.Fatal(err)
	}
	w.conns = append(w.conns, conn)
	w.admin = adminv1.NewAdminServiceClient(conn)
	key := strings.TrimSpace(readFile(w.t, p.cfg.AdminKeyFile))
	w.actx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

func (w *soakWorld) close() {
	for _, c := range w.conns {
		c.Close()
	}
	w.conns, w.authz = nil, nil
}

func (w *soakWorld) fail(format string, args ...any) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	if len(w.fails) < 20 {
		w.fails = append(w.fails, fmt.Sprintf(format, args...))
	}
}

func (w *soakWorld) failures() []string {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	return slices.Clone(w.fails)
}

const (
	soakStableHost = "stable.soak.test"
	soakChurnHost  = "churn.soak.test"
)

func tokenProbe(what, host string, tok *adminv1.ServiceToken, secret string, expect uint64) *probe {
	return newProbe(what, checkRequest(host, "/", map[string]string{
		"cf-access-client-id": tok.GetClientId(), "cf-access-client-secret": secret,
		"x-request-id": "soak-" + what,
	}), expect)
}

// setUp creates the stable application with a policy naming n stable tokens,
// the churn application (any valid service token), and the fixed probes.
func (w *soakWorld) setUp(n int) {
	t := w.t
	var err error
	w.stableApp, err = w.admin.CreateApplication(w.actx, &adminv1.CreateApplicationRequest{Name: "soak-stable", Domains: []string{soakStableHost}})
	if err != nil {
		t.Fatal(err)
	}
	var named []*adminv1.Rule
	for i := range n {
		tok, err := w.admin.CreateServiceToken(w.actx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("soak-stable-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		w.stableTokens = append(w.stableTokens, tok)
		named = append(named, &adminv1.Rule{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: tok.GetId()}}})
	}
	if _, err := w.admin.CreatePolicy(w.actx, &adminv1.CreatePolicyRequest{
		Application: w.stableApp.GetId(), Name: "stable tokens", Decision: "non_identity", Include: named,
	}); err != nil {
		t.Fatal(err)
	}
	createAnyTokenApp(t, w.admin, w.actx, "soak-churn", soakChurnHost)

	for i, tok := range w.stableTokens {
		sp := tokenProbe(tok.GetName(), soakStableHost, tok, tok.GetClientSecret(), expectAllow)
		resp, err := w.authz[0].Check(context.Background(), sp.req)
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Fatalf("%s: first check: %v %v", tok.GetName(), resp.GetStatus(), err)
		}
		cookie := responseCookie(resp)
		if cookie == "" {
			t.Fatalf("%s: no CF_Authorization cookie in the allow", tok.GetName())
		}
		w.fixed = append(w.fixed,
			sp,
			newProbe(tok.GetName()+" session cookie", checkRequest(soakStableHost, "/", map[string]string{"cookie": "CF_Authorization=" + cookie}), expectAllow),
			tokenProbe(tok.GetName()+" with a wrong secret", soakStableHost, tok, wrongSecret(tok.GetClientSecret()), expectDeny),
			// Any valid token is let into the churn application too.
			tokenProbe(tok.GetName()+" on the churn app", soakChurnHost, tok, tok.GetClientSecret(), expectAllow),
		)
		if i == 0 {
			w.fixed = append(w.fixed, newProbe("no credential", checkRequest(soakStableHost, "/", nil), expectDeny))
		}
	}
}

// responseCookie is the CF_Authorization value an allow sets.
func responseCookie(resp *authv3.CheckResponse) string {
	for _, h := range resp.GetOkResponse().GetResponseHeadersToAdd() {
		if strings.EqualFold(h.GetHeader().GetKey(), "set-cookie") {
			v, ok := strings.CutPrefix(h.GetHeader().GetValue(), "CF_Authorization=")
			if ok {
				v, _, _ = strings.Cut(v, ";")
				return v
			}
		}
	}
	return ""
}

// wrongSecret changes one character in the random part, keeping the format
// (prefix, length) so it is the lookup and comparison that refuse it.
func wrongSecret(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// runLoad sends Checks from the given number of workers for d; with churn,
// one admin client changes tokens and applications meanwhile.
func (w *soakWorld) runLoad(workers int, d time.Duration, churn bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { w.checker(ctx, i) })
	}
	if churn {
		wg.Go(func() { w.churner(ctx) })
	}
	wg.Wait()
}

func (w *soakWorld) checker(ctx context.Context, id int) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	client := w.authz[id%len(w.authz)]
	for ctx.Err() == nil {
		var pr *probe
		w.rw.RLock()
		if len(w.pool) > 0 && rng.IntN(2) == 0 {
			pr = w.pool[rng.IntN(len(w.pool))]
		}
		w.rw.RUnlock()
		if pr == nil {
			pr = w.fixed[rng.IntN(len(w.fixed))]
		}
		before := pr.state.Load()
		// Checks get their own deadline, as Envoy's filter has: the load's
		// end must not cut one short and count it as an error.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.Check(cctx, pr.req)
		cancel()
		after := pr.state.Load()
		w.checks.Add(1)
		if err != nil {
			w.errs.Add(1)
			w.fail("check %s: %v", pr.what, err)
			continue
		}
		if before != after || before&3 == expectFlux {
			continue
		}
		w.judged.Add(1)
		allowed := resp.GetStatus().GetCode() == int32(codes.OK)
		switch {
		case allowed && before&3 == expectDeny:
			w.badAllow.Add(1)
			w.fail("unexpected allow: %s", pr.what)
		case !allowed && before&3 == expectAllow:
			w.badDeny.Add(1)
			w.fail("unexpected deny: %s: %s", pr.what, resp.GetDeniedResponse().GetBody())
		}
	}
}

func (w *soakWorld) addProbe(p *probe) {
	w.rw.Lock()
	defer w.rw.Unlock()
	w.pool = append(w.pool, p)
	// Keep the pool bounded: forget the settled denials (dead keeps them
	// for the restart check).
	if len(w.pool) > 512 {
		w.pool = slices.DeleteFunc(w.pool, func(q *probe) bool { return q.state.Load()&3 == expectDeny })
	}
}

// addDead keeps a settled denial for the restart check: all of the first
// 1024, then a uniform sample of that size (reservoir), so the test's own
// memory stays bounded however long the soak.
func (w *soakWorld) addDead(p *probe) {
	w.deadSeen++
	if len(w.dead) < 1024 {
		w.dead = append(w.dead, p)
	} else if i := w.rng.IntN(w.deadSeen); i < len(w.dead) {
		w.dead[i] = p
	}
}

// churner creates, rotates and deletes tokens and creates and deletes
// applications, one acknowledged RPC after another, until ctx ends.
func (w *soakWorld) churner(ctx context.Context) {
	rng := w.rng
	for i := 0; ctx.Err() == nil; i++ {
		switch {
		case i%10 == 5:
			w.churnApps(ctx, i)
		case len(w.tokens) < 8 || rng.IntN(3) == 0:
			w.createToken(ctx, i)
		case rng.IntN(2) == 0:
			w.rotateToken(ctx, w.tokens[rng.IntN(len(w.tokens))])
		default:
			w.deleteToken(ctx, rng.IntN(len(w.tokens)))
		}
	}
}

// rpcErr reports an admin RPC's failure, unless the load ended during it.
func (w *soakWorld) rpcErr(ctx context.Context, what string, err error) bool {
	if err == nil {
		return false
	}
	if ctx.Err() == nil {
		w.fail("%s: %v", what, err)
	}
	return true
}

func (w *soakWorld) createToken(ctx context.Context, i int) {
	tok, err := w.admin.CreateServiceToken(w.actx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("soak-churn-%d", i)})
	if w.rpcErr(ctx, "create token", err) {
		return
	}
	ct := &churnToken{tok: tok, current: tokenProbe(tok.GetName(), soakChurnHost, tok, tok.GetClientSecret(), expectAllow)}
	w.tokens = append(w.tokens, ct)
	w.addProbe(ct.current)
	w.ops["create"]++
}

// rotateToken rotates with no grace: the old secret is refused from the
// moment the RPC returns, the new one accepted.
func (w *soakWorld) rotateToken(ctx context.Context, ct *churnToken) {
	old := ct.current
	old.set(expectFlux)
	tok, err := w.admin.RotateServiceToken(w.actx, &adminv1.RotateServiceTokenRequest{Id: ct.tok.GetId()})
	if w.rpcErr(ctx, "rotate token", err) {
		return // old stays in flux: never judged again
	}
	old.set(expectDeny)
	ct.current = tokenProbe(fmt.Sprintf("%s v%d", tok.GetName(), tok.GetClientSecretVersion()), soakChurnHost, tok, tok.GetClientSecret(), expectAllow)
	w.addProbe(ct.current)
	w.addDead(old)
	w.ops["rotate"]++
}

func (w *soakWorld) deleteToken(ctx context.Context, i int) {
	ct := w.tokens[i]
	ct.current.set(expectFlux)
	_, err := w.admin.DeleteServiceToken(w.actx, &adminv1.DeleteServiceTokenRequest{Id: ct.tok.GetId()})
	if w.rpcErr(ctx, "delete token", err) {
		return
	}
	ct.current.set(expectDeny)
	w.tokens = slices.Delete(w.tokens, i, i+1)
	w.addDead(ct.current)
	w.ops["delete"]++
}

// churnApps creates an application (its own host, any valid token) and,
// with more than four, deletes the oldest: its host then matches no
// application and is denied.
func (w *soakWorld) churnApps(ctx context.Context, i int) {
	host := fmt.Sprintf("app%d.soak.test", i)
	app, err := w.admin.CreateApplication(w.actx, &adminv1.CreateApplicationRequest{Name: fmt.Sprintf("soak-app-%d", i), Domains: []string{host}})
	if w.rpcErr(ctx, "create application", err) {
		return
	}
	stable := w.stableTokens[i%len(w.stableTokens)]
	pr := tokenProbe(stable.GetName()+" on "+app.GetName(), host, stable, stable.GetClientSecret(), expectDeny)
	w.addProbe(pr) // no policy yet: denied
	pr.set(expectFlux)
	_, err = w.admin.CreatePolicy(w.actx, &adminv1.CreatePolicyRequest{Application: app.GetId(), Name: "any token", Decision: "non_identity", Include: anyValidToken()})
	if w.rpcErr(ctx, "create policy", err) {
		return
	}
	pr.set(expectAllow)
	w.apps = append(w.apps, &churnApp{app: app, probe: pr})
	w.ops["app-create"]++

	if len(w.apps) > 4 {
		oldest := w.apps[0]
		oldest.probe.set(expectFlux)
		_, err := w.admin.DeleteApplication(w.actx, &adminv1.DeleteApplicationRequest{Id: oldest.app.GetId()})
		if w.rpcErr(ctx, "delete application", err) {
			return
		}
		oldest.probe.set(expectDeny)
		w.apps = w.apps[1:]
		w.addDead(oldest.probe)
		w.ops["app-delete"]++
	}
}

// verifyListed compares the admin API's listings with the acknowledged
// writes.
func (w *soakWorld) verifyListed() {
	t := w.t
	want := map[string]bool{}
	for _, tok := range w.stableTokens {
		want[tok.GetId()] = true
	}
	for _, ct := range w.tokens {
		want[ct.tok.GetId()] = true
	}
	list, err := w.admin.ListServiceTokens(w.actx, &adminv1.ListServiceTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tok := range list.GetServiceTokens() {
		got[tok.GetId()] = true
		if !want[tok.GetId()] {
			t.Errorf("token %s is listed but was deleted (or never acknowledged)", tok.GetName())
		}
	}
	for _, ct := range w.tokens {
		if !got[ct.tok.GetId()] {
			t.Errorf("acknowledged token %s is missing", ct.tok.GetName())
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d tokens listed, %d acknowledged and not deleted", len(got), len(want))
	}

	apps, err := w.admin.ListApplications(w.actx, &adminv1.ListApplicationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantApps := []string{"soak-churn", "soak-stable"}
	for _, a := range w.apps {
		wantApps = append(wantApps, a.app.GetName())
	}
	var gotApps []string
	for _, a := range apps.GetApplications() {
		gotApps = append(gotApps, a.GetName())
	}
	slices.Sort(wantApps)
	slices.Sort(gotApps)
	if !slices.Equal(gotApps, wantApps) {
		t.Errorf("applications listed %v, acknowledged %v", gotApps, wantApps)
	}
}

// verifyAfterRestart checks every settled probe once against the restarted
// server: surviving secrets and cookies allowed, rotated-out secrets,
// deleted tokens and deleted applications denied.
func (w *soakWorld) verifyAfterRestart() {
	probes := slices.Concat(w.fixed, w.dead)
	for _, ct := range w.tokens {
		probes = append(probes, ct.current)
	}
	for _, a := range w.apps {
		probes = append(probes, a.probe)
	}
	n := 0
	for _, pr := range probes {
		expect := pr.state.Load() & 3
		if expect == expectFlux {
			continue
		}
		resp, err := w.authz[0].Check(context.Background(), pr.req)
		if err != nil {
			w.t.Fatalf("after restart, %s: %v", pr.what, err)
		}
		n++
		if allowed := resp.GetStatus().GetCode() == int32(codes.OK); allowed != (expect == expectAllow) {
			w.t.Errorf("after restart, %s: allowed=%v, want %v (%s)", pr.what, allowed, expect == expectAllow, resp.GetDeniedResponse().GetBody())
		}
	}
	w.t.Logf("soak: after a restart on the same data dir, %d settled requests answered as acknowledged", n)
}
