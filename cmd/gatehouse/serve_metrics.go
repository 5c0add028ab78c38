package main

import (
	"context"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/authz"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// expiringWithin is the window of gatehouse_service_tokens_expiring: the 30
// days of the expiry warnings (warnExpiring); expiringLabel is its label.
const (
	expiringWithin = 30 * 24 * time.Hour
	expiringLabel  = "720h"
)

// checkBuckets span what a Check costs: a few µs for a cached allow, up to
// milliseconds when a session JWT is signed (RSA) or the host is loaded.
var checkBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
}

// metrics is serve's Prometheus instrumentation, on a private registry
// served at /metrics. Label values are bounded by configuration: an
// application's name (or ""), a Reason, a mode, an admin RPC name and a gRPC
// code. Never a client id, token name or anything else a request carries.
type metrics struct {
	reg *prometheus.Registry

	checks        *prometheus.CounterVec
	checkDuration prometheus.Histogram
	// checkCounters caches the resolved counter of each label set, so
	// ObserveCheck does one map lookup and an atomic add instead of
	// WithLabelValues (which allocates). Copy-on-write: new label sets are
	// rare (applications × reasons × modes), lookups are every Check.
	checkCounters atomic.Pointer[map[checkKey]prometheus.Counter]
	checkMu       sync.Mutex // serialises additions to checkCounters

	adminRPCs *prometheus.CounterVec
	// lastFlush is when last-seen times were last written (or found to be
	// nothing to write), in Unix nanoseconds of the real clock.
	lastFlush atomic.Int64
}

// checkKey identifies a gatehouse_checks_total series. The application is
// keyed by name, which is its label: a renamed application starts a series
// under its new name.
type checkKey struct {
	app    string
	reason authz.Reason
	dryRun bool
}

// labels are k's decision and mode label values.
func (k checkKey) labels() (decision, mode string) {
	decision, mode = "deny", "enforce"
	if k.reason.Allowed() {
		decision = "allow"
	}
	if k.dryRun {
		mode = "dry_run"
	}
	return decision, mode
}

var _ authz.Observer = (*metrics)(nil)

// newMetrics registers the process-wide metrics. The state gauges (tokens,
// keys, store size) read s at scrape time, once s is running.
func newMetrics(s *server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.checkCounters.Store(&map[checkKey]prometheus.Counter{})
	m.lastFlush.Store(time.Now().UnixNano())

	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_checks_total",
		Help: "ext_authz Checks decided, by application name (\"\" when none matched), decision (allow or deny, as the policies decided), reason, and mode (enforce, or dry_run: Envoy was told OK whatever the decision).",
	}, []string{"application", "decision", "reason", "mode"})
	m.checkDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gatehouse_check_duration_seconds",
		Help:    "Time spent in Check, from receiving the request to the response (decision log line included; gRPC transport excluded).",
		Buckets: checkBuckets,
	})
	m.adminRPCs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_admin_rpcs_total",
		Help: "Admin API calls finished, by RPC name and gRPC status code (Unauthenticated and PermissionDenied included).",
	}, []string{"method", "code"})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_build_info",
		Help: "Always 1; the version label is this binary's release or VCS revision.",
	}, []string{"version"})
	buildInfo.WithLabelValues(buildVersion()).Set(1)
	flushLag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_last_seen_flush_lag_seconds",
		Help: "Seconds since last_seen_at times were last flushed to the store; grows past --last-seen-flush when flushes fail.",
	}, func() float64 { return time.Since(time.Unix(0, m.lastFlush.Load())).Seconds() })

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.checks, m.checkDuration, m.adminRPCs, buildInfo, flushLag,
		&stateCollector{srv: s},
	)
	return m
}

// ObserveCheck counts one Check. It allocates only the first time a label
// set is seen.
func (m *metrics) ObserveCheck(app *policy.Application, reason authz.Reason, dryRun bool, elapsed time.Duration) {
	k := checkKey{reason: reason, dryRun: dryRun}
	if app != nil {
		k.app = app.Name
	}
	c, ok := (*m.checkCounters.Load())[k]
	if !ok {
		c = m.checkCounter(k)
	}
	c.Inc()
	m.checkDuration.Observe(elapsed.Seconds())
}

// checkCounter resolves and caches the counter of a new label set.
func (m *metrics) checkCounter(k checkKey) prometheus.Counter {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	cur := *m.checkCounters.Load()
	if c, ok := cur[k]; ok {
		return c
	}
	decision, mode := k.labels()
	c := m.checks.WithLabelValues(k.app, decision, k.reason.String(), mode)
	next := maps.Clone(cur)
	next[k] = c
	m.checkCounters.Store(&next)
	return c
}

// pruneApps removes the gatehouse_checks_total series of applications that
// no longer exist (deleted, or renamed: a renamed application's series
// carry its new name), so that creating and deleting applications does not
// grow the metrics without bound. A Check that was deciding on the old
// snapshot when the application went may bring one of its series back; the
// next change to applications removes it again.
func (m *metrics) pruneApps(live map[string]bool) {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	cur := *m.checkCounters.Load()
	var next map[checkKey]prometheus.Counter
	for k := range cur {
		if k.app == "" || live[k.app] {
			continue
		}
		if next == nil {
			next = maps.Clone(cur)
		}
		delete(next, k)
	}
	if next == nil {
		return
	}
	m.checkCounters.Store(&next)
	for k := range cur {
		if _, kept := next[k]; !kept {
			decision, mode := k.labels()
			m.checks.DeleteLabelValues(k.app, decision, k.reason.String(), mode)
		}
	}
}

// flushed records a successful last-seen flush.
func (m *metrics) flushed() { m.lastFlush.Store(time.Now().UnixNano()) }

// handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// rpcName is the short name of a gRPC method: "/pkg.Service/Method" →
// "Method".
func rpcName(fullMethod string) string {
	return fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
}

// unaryInterceptor counts admin RPCs. It is chained first, so calls the
// admin key check refuses are counted too.
func (m *metrics) unaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		m.adminRPCs.WithLabelValues(rpcName(info.FullMethod), status.Code(err).String()).Inc()
		return resp, err
	}
}

// streamInterceptor counts streaming admin RPCs (Backup, health Watch) when
// they end.
func (m *metrics) streamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		m.adminRPCs.WithLabelValues(rpcName(info.FullMethod), status.Code(err).String()).Inc()
		return err
	}
}

// stateCollector reports the served state at scrape time: tokens by state
// from the published snapshot (never the store: a scrape costs no disk
// read), signing keys, and the data file's size.
type stateCollector struct{ srv *server }

var (
	descTokens = prometheus.NewDesc("gatehouse_service_tokens",
		"Service tokens in the published state: active (enabled, not expired), expired (enabled, past expires_at) or disabled.",
		[]string{"state"}, nil)
	descExpiring = prometheus.NewDesc("gatehouse_service_tokens_expiring",
		"Active service tokens that expire within the window (refresh or rotate them).",
		[]string{"within"}, nil)
	descSigningKeys = prometheus.NewDesc("gatehouse_signing_keys",
		"Session-JWT signing keys published in the JWKS (the active one and those still verifying).",
		nil, nil)
	descStoreSize = prometheus.NewDesc("gatehouse_store_size_bytes",
		"Size of the bbolt data file.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTokens
	ch <- descExpiring
	ch <- descSigningKeys
	ch <- descStoreSize
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv
	if s.authz == nil {
		return // not started
	}
	snap := s.authz.Snapshot()
	now := s.now()
	soon := now.Add(expiringWithin)
	var active, expired, disabled, expiring int
	snap.ForEachToken(func(t *tokens.ServiceToken) bool {
		switch {
		case !t.Enabled:
			disabled++
		case t.Expired(now):
			expired++
		default:
			active++
			if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(soon) {
				expiring++
			}
		}
		return true
	})
	ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(expired), "expired")
	ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(disabled), "disabled")
	ch <- prometheus.MustNewConstMetric(descExpiring, prometheus.GaugeValue, float64(expiring), expiringLabel)

	keys := 0
	if ks := snap.Keys(); ks != nil {
		keys = len(ks.Keys())
	}
	ch <- prometheus.MustNewConstMetric(descSigningKeys, prometheus.GaugeValue, float64(keys))

	if s.db != nil {
		if fi, err := os.Stat(s.db.Path()); err == nil {
			ch <- prometheus.MustNewConstMetric(descStoreSize, prometheus.GaugeValue, float64(fi.Size()))
		}
	}
}
