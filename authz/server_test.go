package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want error
	}{
		{Config{Issuer: testIssuer}, nil},
		{Config{Issuer: testIssuer, TrustedProxies: 2}, nil},
		{Config{}, ErrNoIssuer},
		{Config{Issuer: testIssuer, TrustedProxies: -1}, ErrTrustedProxies},
	} {
		if err := tt.cfg.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%+v: Validate() = %v, want %v", tt.cfg, err, tt.want)
		}
	}
}

func TestDecisionLogBoundsRequestID(t *testing.T) {
	b := newBase(t)
	req := tokenReq(b.alpha.ClientID, b.betaSecret)
	long := strings.Repeat("r", 10_000)
	req.Attributes.Request.Http.Headers["x-request-id"] = long
	b.check(req)
	lines := b.logs.lines(t)
	if got := lines[len(lines)-1]["request_id"]; got != long[:maxRequestIDLog] {
		t.Errorf("request_id logged as %d bytes, want %d", len(got.(string)), maxRequestIDLog)
	}
}
