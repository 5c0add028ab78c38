package policy

import (
	"time"
)

// Decision is what a matching policy does with a request.
type Decision string

const (
	// Allow grants access. Gatehouse has no identity provider, so an allow
	// policy matches on the same selectors as NonIdentity; it is evaluated
	// with Deny, in precedence order, after the NonIdentity policies.
	Allow Decision = "allow"
	// Deny blocks the request (403).
	Deny Decision = "deny"
	// NonIdentity is Cloudflare's "Service Auth": service tokens, mTLS, IPs.
	NonIdentity Decision = "non_identity"
	// Bypass lets the request through with no credential and no JWT.
	Bypass Decision = "bypass"
)

// Application is a protected set of hosts and path prefixes. The JSON
// encoding is the store's record format.
type Application struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Domains are "host" or "host/path-prefix"; the host may be a wildcard
	// "*.example.com" (matching any name below example.com, not the apex).
	Domains []string `json:"domains"`
	// AUD is 64 lowercase hex characters, generated once.
	AUD string `json:"aud"`
	// SessionDuration is the session JWT lifetime (default 24h).
	SessionDuration time.Duration `json:"session_duration"`
	// ServiceTokenHeader, if set, names a header whose value is the JSON
	// object {"cf-access-client-id": "...", "cf-access-client-secret": "..."}.
	// Stored lower-case.
	ServiceTokenHeader string `json:"service_token_header,omitempty"`
	// SessionCookie: issue CF_Authorization and accept session JWTs back.
	// False is Cloudflare's strict mode.
	SessionCookie bool `json:"session_cookie"`
	// SessionsRevokedAt: JWTs issued at or before this instant are rejected.
	SessionsRevokedAt time.Time `json:"sessions_revoked_at,omitzero"`
	// DryRun: decide and log as usual, but always tell Envoy to allow.
	DryRun    bool      `json:"dry_run,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Policy decides requests to one application. The JSON encoding is the
// store's record format.
type Policy struct {
	ID            string   `json:"id"`
	ApplicationID string   `json:"application_id"`
	Name          string   `json:"name"`
	Decision      Decision `json:"decision"`
	// Precedence orders policies within an application, lowest first.
	Precedence int `json:"precedence"`
	// Include: any rule matches. Require: every rule matches. Exclude: no
	// rule matches. A policy needs at least one Include rule.
	Include []Rule `json:"include"`
	Require []Rule `json:"require,omitempty"`
	Exclude []Rule `json:"exclude,omitempty"`
	// SessionDuration, when non-zero, overrides the application's.
	SessionDuration time.Duration `json:"session_duration,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// Rule is one selector, in Cloudflare Access's JSON shape: exactly one field
// is set.
type Rule struct {
	ServiceToken         *ServiceTokenRule `json:"service_token,omitempty"`
	AnyValidServiceToken *struct{}         `json:"any_valid_service_token,omitempty"`
	IP                   *IPRule           `json:"ip,omitempty"`
	Principal            *PrincipalRule    `json:"principal,omitempty"`
	Certificate          *struct{}         `json:"certificate,omitempty"`
	CommonName           *CommonNameRule   `json:"common_name,omitempty"`
	Everyone             *struct{}         `json:"everyone,omitempty"`
}

// ServiceTokenRule matches one service token by its id (not its client id).
type ServiceTokenRule struct {
	TokenID string `json:"token_id"`
}

// IPRule matches the request's source address against a CIDR.
type IPRule struct {
	IP string `json:"ip"`
}

// PrincipalRule matches the mTLS peer identity (source.principal, for
// example a SPIFFE ID): Exact, or any principal starting with Prefix.
type PrincipalRule struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// CommonNameRule matches the client certificate's subject common name.
type CommonNameRule struct {
	CommonName string `json:"common_name"`
}
