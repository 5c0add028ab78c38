package authz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestCheckAllocBudget holds the hot path to its allocation budget (counts,
// not timings). The service-token allow returns a shared, prebuilt response;
// with a JSON decision log slog adds one record slice.
func TestCheckAllocBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, logging := range []struct {
		name string
		cfg  func(*Config)
		// budgets per path
		token, jwt, deny, bypass float64
	}{
		{"unlogged", noLogger, 0, 0, 10, 10},
		{"json log", benchLogger, 2, 2, 12, 12},
		// An Observer (metrics) must not add any.
		{"unlogged, observed", func(c *Config) { noLogger(c); c.Observer = &countingObserver{} }, 0, 0, 10, 10},
		{"json log, observed", func(c *Config) { benchLogger(c); c.Observer = &countingObserver{} }, 2, 2, 12, 12},
	} {
		t.Run(logging.name, func(t *testing.T) {
			b, reqs := pathRequests(t, logging.cfg)
			for _, c := range []struct {
				name   string
				req    *authv3.CheckRequest
				budget float64
			}{
				{"service_token", reqs["service_token"], logging.token},
				{"jwt_cookie", reqs["jwt_cookie"], logging.jwt},
				{"deny_wrong_secret", reqs["deny"], logging.deny},
				{"bypass", reqs["bypass"], logging.bypass},
			} {
				ctx := context.Background()
				b.srv.Check(ctx, c.req) // warm the caches
				if n := testing.AllocsPerRun(200, func() { b.srv.Check(ctx, c.req) }); n > c.budget {
					t.Errorf("%s: %v allocs per Check, budget %v", c.name, n, c.budget)
				}
			}
		})
	}
}
