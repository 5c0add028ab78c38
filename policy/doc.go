// Package policy decides which application a request is for and what that
// application's policies say about it. It is pure: standard library only,
// no I/O, no clock, no logging.
//
// # Model
//
// An Application is a set of domains, each "host" or "host/path-prefix",
// where the host may be a wildcard "*.example.com" (any name below
// example.com, not example.com itself). A Policy belongs to one
// application and has a Decision (allow, deny, non_identity, bypass), a
// Precedence and three lists of Rules, each Rule one selector in
// Cloudflare Access's JSON shape (service_token, any_valid_service_token,
// ip, principal, certificate, common_name, everyone).
//
// Records are checked with ValidateApplication, ValidatePolicy and
// ValidRule, and compiled with Compile into an immutable Engine that the
// Check hot path reads without locks or allocation.
//
// # Routing
//
// Engine.Route takes a host normalised by NormalizeHost and a path
// normalised by NormalizePath. An exact host beats a wildcard, a longer
// wildcard beats a shorter one, and within a host the longest path prefix
// wins, matching only at a segment boundary ("/api" covers "/api" and
// "/api/x", not "/apix"). A domain without a path is the prefix "/". The
// index is a map by host, a map by wildcard suffix (walked over the labels
// of the request host) and, per host, a map by prefix walked over the
// request path's '/' boundaries, so the cost does not grow with the number
// of applications.
//
// NormalizePath is where path tricks are dealt with: "..", "." and "//"
// are resolved, percent-escapes decoded, and anything backends disagree
// about (%2F, backslashes, NUL, broken escapes, overlong UTF-8, "..;")
// is refused with ErrPathAmbiguous rather than guessed at. Paths are
// compared case-sensitively: an application served by a case-insensitive
// backend must not rely on a path prefix alone.
//
// # Evaluation
//
// Evaluation follows Cloudflare Access: bypass policies first, then
// Service Auth (non_identity), then allow and block (deny) policies
// together; each group in precedence order (lowest first; ties by name,
// then id); the first policy that matches decides, and when none matches
// the request is denied (Access is deny-by-default: Result.Decision is ""
// and the caller denies). App.Bypass runs the first group, before the
// caller has looked at any credential; App.Evaluate runs the other two.
//
// One difference: Cloudflare's documentation runs bypass and Service Auth
// policies interleaved, top to bottom ("Allow A, Block B, Service Auth C,
// Bypass D, Allow E runs as C, D, A, B, E"); gatehouse runs every bypass
// policy before any Service Auth policy (D, C, A, B, E), so that bypass can
// be decided without authenticating the request. The two differ only for a
// request that matches both a bypass policy and a Service Auth policy of
// lower precedence.
//
// Gatehouse has no identity provider, so an allow policy matches on the
// same selectors as a non_identity one; the difference is only its place in
// the order.
//
// A policy matches when any include rule matches, every require rule
// matches and no exclude rule matches. Selectors:
//
//   - service_token: the authenticated token's id (not client id) equals
//     token_id;
//   - any_valid_service_token: some service token authenticated;
//   - ip: the source address (IPv4-mapped IPv6 addresses unmapped first)
//     is in the CIDR; an unknown address never matches;
//   - principal: source.principal equals exact, or starts with prefix; an
//     empty principal never matches;
//   - certificate: the client presented a certificate;
//   - common_name: the client certificate's common name equals the value;
//   - everyone: always.
//
// Bypass policies cannot use the service-token selectors (they are decided
// before credentials are checked). Result.Rule names the include rule that
// matched ("include[0] service_token") for logs and explain output.
package policy
