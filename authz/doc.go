// Package authz is gatehouse's Envoy ext_authz v3 gRPC server
// (envoy.service.auth.v3.Authorization/Check): the hot path.
//
// # Model
//
// A Server reads one immutable Snapshot per Check (held in an
// atomic.Pointer; Publish swaps it). A Snapshot holds the service tokens in
// 2048 copy-on-write shards indexed by client id and by id, the compiled
// policy.Engine (applications and policies) and the tokens.KeySet. Apply,
// WithEngine and WithKeys derive a new Snapshot copying only what changed,
// so a write to one token among a million copies one shard.
//
// A Check goes:
//
//  1. parse: a small view of the CheckRequest (request.go). Headers come
//     from attributes.request.http.headers, or header_map when Envoy sends
//     raw headers; only the few names gatehouse needs are looked at, case-
//     insensitively, and repeated credential headers are counted rather
//     than merged. No attributes.request.http → 400 malformed_request.
//  2. route: policy.NormalizePath (an ambiguous path → 400 ambiguous_path)
//     and NormalizeHost, then context_extensions["application"] if Envoy's
//     route names one, else Engine.Route. No application → 403
//     no_application, or an allow without identity if Config.UnmatchedAllow.
//  3. bypass: bypass policies see only the connection (source address,
//     mTLS principal and certificate): a match allows with no JWT.
//  4. authenticate: cf-access-client-id + cf-access-client-secret, or the
//     application's ServiceTokenHeader holding
//     {"cf-access-client-id":"…","cf-access-client-secret":"…"}; else, for
//     applications with SessionCookie, a session JWT from the
//     CF_Authorization cookie or the cf-access-token header. Anything
//     ambiguous (a joined or repeated header, half a pair, two credential
//     styles, the cookie twice) is a 401 with its reason, never a guess.
//     An unknown client id costs the same digest and comparisons as a
//     wrong secret.
//  5. evaluate: App.Evaluate with the subject (token id if any). non_identity
//     or allow → allow; deny → 403 denied_by_policy; nothing → 401
//     missing_credentials without a token, 403 no_policy_matched with one.
//
// An allow with a token identity sends the upstream cf-access-jwt-assertion
// (append_action OVERWRITE_IF_EXISTS_OR_ADD, append unset: the one form
// every Envoy version treats as overwrite) and removes the client secret
// (and the custom credential header); when the secret came in (either
// header pair, or the application's service_token_header) and the
// application keeps sessions, the client also gets a CF_Authorization
// Set-Cookie (append: true, so upstream cookies survive). An allow without
// a token removes any client-sent cf-access-jwt-assertion. Denies are
// CheckResponses with UNAUTHENTICATED (401), PERMISSION_DENIED (403) or
// INVALID_ARGUMENT (400) and a JSON body {"error","reason"}: never a gRPC
// error, which fail-open Envoys would turn into an allow. Reasons are the
// closed Reason enum. In an application's dry run everything is decided and
// logged but Envoy is always told OK.
//
// # Cost
//
// Session JWTs are never signed per request: a JWT is cached per (token,
// application, policy, signing key, and the UpdatedAt of each) and reused
// while at least half its lifetime remains; the CheckResponse carrying it is
// built once and shared, so an allow allocates only the response envelope.
// Presented JWTs whose signature verified are remembered too. Deny bodies
// are prebuilt per reason. Last-seen times go to a sharded map of atomics
// (no allocation for a token already seen) drained by DrainLastSeen.
// Both caches are bounded per shard and emptied when a shard fills.
//
// # Caveats
//
// Responses share immutable messages: callers must not modify what Check
// returns. The caches trust UpdatedAt: whoever changes a token, application
// or policy must bump it (the store and admin API do). Explain decides
// exactly like Check without recording anything (no last-seen, no minting,
// no log).
package authz
