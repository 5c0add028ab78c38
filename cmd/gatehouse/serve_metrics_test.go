package main

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/metadata"

	"github.com/gatehouse-dev/gatehouse/authz"
	"github.com/gatehouse-dev/gatehouse/policy"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// scrape fetches /metrics and parses the text format.
func scrape(t *testing.T, p *inProcess) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := p.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	return fams
}

// series finds the one series of family name with exactly these labels.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	var have []string
	for _, m := range f.GetMetric() {
		have = append(have, m.String())
	}
	t.Fatalf("%s has no series %v; it has:\n%s", name, labels, strings.Join(have, "\n"))
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return -1
}

// TestMetrics drives an in-process server (Checks over real gRPC, admin
// calls, a moving clock) and reads /metrics as Prometheus would.
func TestMetrics(t *testing.T) {
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	p := startInProcess(t, clock.Now)
	admin, ctx := p.adminClient(t)

	app, err := admin.CreateApplication(ctx, &adminv1.CreateApplicationRequest{Name: "metered-api", Domains: []string{"metered.test"}})
	if err != nil {
		t.Fatal(err)
	}
	dry, err := admin.CreateApplication(ctx, &adminv1.CreateApplicationRequest{Name: "trial-api", Domains: []string{"trial.test"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*adminv1.Application{app, dry} {
		if _, err := admin.CreatePolicy(ctx, &adminv1.CreatePolicyRequest{Application: a.GetId(), Name: "tokens", Decision: "non_identity", Include: anyValidToken()}); err != nil {
			t.Fatal(err)
		}
	}
	var created []*adminv1.ServiceToken
	for _, tc := range []struct{ name, duration string }{
		{"metrics-token-good", "8760h"},
		{"metrics-token-soon", "240h"}, // expiring within 30 days
		{"metrics-token-gone", "1h"},   // expired once the clock moves
		{"metrics-token-off", "8760h"}, // disabled below
	} {
		tok, err := admin.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: tc.name, Duration: tc.duration})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, tok)
	}
	good, off := created[0], created[3]
	if _, err := admin.SetServiceTokenEnabled(ctx, &adminv1.SetServiceTokenEnabledRequest{Id: off.GetId()}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)

	authzClient := authv3.NewAuthorizationClient(dial(t, p.authzAddr))
	check := func(req *authv3.CheckRequest, n int) {
		t.Helper()
		for range n {
			if _, err := authzClient.Check(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	creds := func(tok *adminv1.ServiceToken, secret string) []string {
		return []string{"cf-access-client-id", tok.GetClientId(), "cf-access-client-secret", secret, "x-request-id", "req-" + tok.GetName()}
	}
	wrong := created[1].GetClientSecret()
	check(checkReq("metered.test", "/v1", creds(good, good.GetClientSecret())...), 3)
	check(checkReq("metered.test", "/v1", creds(good, wrong)...), 2)
	check(checkReq("metered.test", "/v1", creds(off, off.GetClientSecret())...), 1)
	check(checkReq("nowhere.test", "/", creds(good, good.GetClientSecret())...), 1)
	check(checkReq("trial.test", "/", creds(good, wrong)...), 1)
	check(&authv3.CheckRequest{}, 1)

	// One admin call with a bad key, counted although the key check refuses it.
	badCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer ghak_not-a-key")
	if _, err := admin.ListServiceTokens(badCtx, &adminv1.ListServiceTokensRequest{}); err == nil {
		t.Fatal("a bad admin key was accepted")
	}

	fams := scrape(t, p)
	for _, c := range []struct {
		app, decision, reason, mode string
		want                        float64
	}{
		{"metered-api", "allow", "allowed_by_policy", "enforce", 3},
		{"metered-api", "deny", "wrong_secret", "enforce", 2},
		{"metered-api", "deny", "token_disabled", "enforce", 1},
		{"", "deny", "no_application", "enforce", 1},
		{"trial-api", "deny", "wrong_secret", "dry_run", 1},
		{"", "deny", "malformed_request", "enforce", 1},
	} {
		m := series(t, fams, "gatehouse_checks_total", map[string]string{"application": c.app, "decision": c.decision, "reason": c.reason, "mode": c.mode})
		if got := value(m); got != c.want {
			t.Errorf("checks_total{%s,%s,%s,%s} = %v, want %v", c.app, c.decision, c.reason, c.mode, got, c.want)
		}
	}
	if n := len(fams["gatehouse_checks_total"].GetMetric()); n != 6 {
		t.Errorf("%d checks_total series, want 6", n)
	}
	h := series(t, fams, "gatehouse_check_duration_seconds", map[string]string{}).GetHistogram()
	if h.GetSampleCount() != 9 || h.GetSampleSum() <= 0 {
		t.Errorf("check duration: %d samples, sum %v; want 9 and > 0", h.GetSampleCount(), h.GetSampleSum())
	}
	// The exposition may or may not end with the implicit +Inf bucket.
	b := h.GetBucket()
	if n := len(b); n > 0 && math.IsInf(b[n-1].GetUpperBound(), +1) {
		b = b[:n-1]
	}
	if len(b) != len(checkBuckets) || b[0].GetUpperBound() != 10e-6 || b[len(b)-1].GetUpperBound() != 0.25 {
		t.Errorf("duration buckets = %v", b)
	}

	for state, want := range map[string]float64{"active": 2, "expired": 1, "disabled": 1} {
		if got := value(series(t, fams, "gatehouse_service_tokens", map[string]string{"state": state})); got != want {
			t.Errorf("service_tokens{state=%q} = %v, want %v", state, got, want)
		}
	}
	if got := value(series(t, fams, "gatehouse_service_tokens_expiring", map[string]string{"within": "720h"})); got != 1 {
		t.Errorf("service_tokens_expiring = %v, want 1", got)
	}
	if got := value(series(t, fams, "gatehouse_signing_keys", map[string]string{})); got != 1 {
		t.Errorf("signing_keys = %v, want 1", got)
	}
	if got := value(series(t, fams, "gatehouse_store_size_bytes", map[string]string{})); got < 4096 {
		t.Errorf("store_size_bytes = %v", got)
	}
	if got := value(series(t, fams, "gatehouse_build_info", map[string]string{"version": buildVersion()})); got != 1 {
		t.Errorf("build_info = %v", got)
	}
	if got := value(series(t, fams, "gatehouse_last_seen_flush_lag_seconds", map[string]string{})); got < 0 || got > 60 {
		t.Errorf("last_seen_flush_lag_seconds = %v", got)
	}
	for _, c := range []struct {
		method, code string
		want         float64
	}{
		{"CreateServiceToken", "OK", 4},
		{"CreateApplication", "OK", 2},
		{"SetServiceTokenEnabled", "OK", 1},
		{"ListServiceTokens", "Unauthenticated", 1},
	} {
		if got := value(series(t, fams, "gatehouse_admin_rpcs_total", map[string]string{"method": c.method, "code": c.code})); got != c.want {
			t.Errorf("admin_rpcs_total{%s,%s} = %v, want %v", c.method, c.code, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are not registered", name)
		}
	}

	// A flush moves the lag back, and the lag reads the real clock.
	p.flushLastSeen()
	if got := value(series(t, scrape(t, p), "gatehouse_last_seen_flush_lag_seconds", map[string]string{})); got > 5 {
		t.Errorf("lag after a flush = %v", got)
	}

	// Nothing a client sent or a token is named ends up in a label.
	var secretish []string
	for _, tok := range created {
		secretish = append(secretish, tok.GetClientId(), tok.GetClientSecret(), tok.GetName(), tok.GetId(), "req-"+tok.GetName())
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, s := range secretish {
					if strings.Contains(lp.GetValue(), s) {
						t.Errorf("%s label %s=%q contains %q", name, lp.GetName(), lp.GetValue(), s)
					}
				}
			}
		}
	}
}

// TestMetricsCheckSeriesAreBounded: the check counter's labels come from
// configuration, so many requests with different hosts, paths and client
// ids make no new series.
func TestMetricsCheckSeriesAreBounded(t *testing.T) {
	p := startInProcess(t, nil)
	c := authv3.NewAuthorizationClient(dial(t, p.authzAddr))
	for i := range 50 {
		id := strings.Repeat("0", 31) + string(rune('a'+i%6)) + ".access"
		req := checkReq("host-"+string(rune('a'+i%26))+".test", "/p/"+id, "cf-access-client-id", id, "cf-access-client-secret", "x")
		if _, err := c.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, p)
	var got []string
	for _, m := range fams["gatehouse_checks_total"].GetMetric() {
		got = append(got, m.String())
	}
	sort.Strings(got)
	if len(got) != 1 || !strings.Contains(got[0], `value:"no_application"`) {
		t.Fatalf("series:\n%s", strings.Join(got, "\n"))
	}
}

// TestMetricsForgetDeletedApplications: an application's check series go
// when it is deleted or renamed, so creating and deleting applications does
// not grow /metrics without bound; the other applications' series stay.
func TestMetricsForgetDeletedApplications(t *testing.T) {
	p := startInProcess(t, nil)
	admin, actx := p.adminClient(t)
	c := authv3.NewAuthorizationClient(dial(t, p.authzAddr))
	var apps []*adminv1.Application
	for _, name := range []string{"keep", "doomed", "renamed"} {
		app, err := admin.CreateApplication(actx, &adminv1.CreateApplicationRequest{Name: name, Domains: []string{name + ".test"}})
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app)
		if _, err := c.Check(context.Background(), checkReq(name+".test", "/")); err != nil {
			t.Fatal(err)
		}
	}
	appSeries := func() []string {
		var got []string
		for _, m := range scrape(t, p)["gatehouse_checks_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "application" {
					got = append(got, l.GetValue())
				}
			}
		}
		sort.Strings(got)
		return got
	}
	if got := appSeries(); !slices.Equal(got, []string{"doomed", "keep", "renamed"}) {
		t.Fatalf("series for applications %v", got)
	}
	if _, err := admin.DeleteApplication(actx, &adminv1.DeleteApplicationRequest{Id: apps[1].GetId()}); err != nil {
		t.Fatal(err)
	}
	newName := "now-called"
	if _, err := admin.UpdateApplication(actx, &adminv1.UpdateApplicationRequest{Id: apps[2].GetId(), Name: &newName}); err != nil {
		t.Fatal(err)
	}
	if got := appSeries(); !slices.Equal(got, []string{"keep"}) {
		t.Fatalf("after deleting one application and renaming another, series for %v, want [keep]", got)
	}
	if _, err := c.Check(context.Background(), checkReq("renamed.test", "/")); err != nil {
		t.Fatal(err)
	}
	if got := appSeries(); !slices.Equal(got, []string{"keep", "now-called"}) {
		t.Fatalf("series for %v, want [keep now-called]", got)
	}
}

// TestObserveCheckDoesNotAllocate: once a label set has been seen, counting
// a Check is a map lookup and two atomic updates.
func TestObserveCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	m := newMetrics(&server{})
	app := &policy.Application{ID: "a1", Name: "api"}
	m.ObserveCheck(app, authz.ReasonAllowedByPolicy, false, time.Microsecond)
	m.ObserveCheck(nil, authz.ReasonNoApplication, false, time.Microsecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveCheck(app, authz.ReasonAllowedByPolicy, false, 42*time.Microsecond)
		m.ObserveCheck(nil, authz.ReasonNoApplication, false, 7*time.Microsecond)
	}); n != 0 {
		t.Fatalf("%v allocations per ObserveCheck pair, want 0", n)
	}
}

// BenchmarkObserveCheck is the metrics cost a Check pays (compare with
// BenchmarkCheck in ./authz), from all CPUs at once.
func BenchmarkObserveCheck(b *testing.B) {
	m := newMetrics(&server{})
	apps := make([]*policy.Application, 20)
	for i := range apps {
		apps[i] = &policy.Application{ID: string(rune('a' + i)), Name: "app-" + string(rune('a'+i))}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.ObserveCheck(apps[i%len(apps)], authz.ReasonAllowedByPolicy, i%7 == 0, 3*time.Microsecond)
			i++
		}
	})
}
