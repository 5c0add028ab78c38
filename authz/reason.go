package authz

import (
	"google.golang.org/grpc/codes"
)

// Reason says why a Check was decided the way it was. It is a closed set:
// every value has a stable snake_case String(), which is what appears in
// deny bodies, dynamic metadata and decision logs, so operators can alert on
// it. Never add a reason that would carry request data.
type Reason uint8

// Allow reasons.
const (
	// ReasonNone is the zero value; it is never the reason of a decision.
	ReasonNone Reason = iota
	// ReasonAllowedByPolicy: a non_identity or allow policy matched.
	ReasonAllowedByPolicy
	// ReasonBypass: a bypass policy matched; no credential was checked.
	ReasonBypass
	// ReasonUnmatchedAllowed: no application covers the request and
	// Config.UnmatchedAllow is set.
	ReasonUnmatchedAllowed

	// Request problems (400, INVALID_ARGUMENT).

	// ReasonMalformedRequest: the CheckRequest has no attributes.request.http
	// (an L4 filter or a broken client).
	ReasonMalformedRequest
	// ReasonAmbiguousPath: the path could be read two ways (%2F, backslash,
	// NUL, bad escapes, not absolute): refusing beats guessing which one the
	// upstream will use.
	ReasonAmbiguousPath

	// Routing (403, PERMISSION_DENIED).

	// ReasonUnknownApplication: context_extensions names an application that
	// does not exist.
	ReasonUnknownApplication
	// ReasonNoApplication: no application covers host+path and unmatched
	// requests are denied.
	ReasonNoApplication

	// Credential problems (401, UNAUTHENTICATED).

	// ReasonMissingCredentials: no credential, and no policy admitted the
	// request without one.
	ReasonMissingCredentials
	// ReasonIncompleteCredentials: only one of client id and secret.
	ReasonIncompleteCredentials
	// ReasonDuplicateCredentials: a credential header arrived more than once
	// (repeated entries, or values Envoy joined with ",").
	ReasonDuplicateCredentials
	// ReasonConflictingCredentials: both the standard headers and the
	// application's service-token header, or a cf-access-token header and a
	// CF_Authorization cookie that differ.
	ReasonConflictingCredentials
	// ReasonMalformedCredentialHeader: the application's service-token header
	// is not exactly {"cf-access-client-id": "...", "cf-access-client-secret": "..."}.
	ReasonMalformedCredentialHeader
	// ReasonDuplicateCookie: CF_Authorization appears more than once.
	ReasonDuplicateCookie
	// ReasonMalformedSecret: the secret is not a gatehouse or Cloudflare
	// legacy secret (length, alphabet or checksum).
	ReasonMalformedSecret
	// ReasonUnknownClientID: no token has this client id.
	ReasonUnknownClientID
	// ReasonWrongSecret: the secret does not match (nor a previous secret in
	// its grace period).
	ReasonWrongSecret
	// ReasonTokenExpired: the service token has expired.
	ReasonTokenExpired
	// ReasonTokenDisabled: the service token is disabled.
	ReasonTokenDisabled
	// ReasonJWTMalformed: the session JWT cannot be parsed.
	ReasonJWTMalformed
	// ReasonJWTUnknownKID: the JWT's kid is not a current signing key.
	ReasonJWTUnknownKID
	// ReasonJWTAlgorithm: the JWT's alg is not its key's algorithm (or none).
	ReasonJWTAlgorithm
	// ReasonJWTSignature: the JWT's signature does not verify.
	ReasonJWTSignature
	// ReasonJWTExpired: the JWT's exp has passed (30 s leeway).
	ReasonJWTExpired
	// ReasonJWTNotYetValid: the JWT's nbf is in the future (30 s leeway).
	ReasonJWTNotYetValid
	// ReasonJWTIssuer: the JWT's iss is not Config.Issuer.
	ReasonJWTIssuer
	// ReasonJWTClaims: the JWT's claims are missing or of the wrong type.
	ReasonJWTClaims
	// ReasonJWTWrongAudience: the JWT was issued for another application.
	ReasonJWTWrongAudience
	// ReasonSessionRevoked: the JWT was issued at or before the application's
	// SessionsRevokedAt.
	ReasonSessionRevoked
	// ReasonTokenRevoked: the JWT's service token was deleted, disabled or
	// has expired since the JWT was issued.
	ReasonTokenRevoked

	// Policy (403, PERMISSION_DENIED).

	// ReasonDeniedByPolicy: a deny policy matched.
	ReasonDeniedByPolicy
	// ReasonNoPolicyMatched: a service token authenticated but no policy
	// admits it.
	ReasonNoPolicyMatched

	// Server problems.

	// ReasonNoSigningKey: the request would be allowed but there is no active
	// signing key to mint its session JWT (503, UNAVAILABLE).
	ReasonNoSigningKey
	// ReasonInternalError: a bug; Check recovered from a panic (500, INTERNAL).
	ReasonInternalError

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:                      "",
	ReasonAllowedByPolicy:           "allowed_by_policy",
	ReasonBypass:                    "bypass",
	ReasonUnmatchedAllowed:          "unmatched_allowed",
	ReasonMalformedRequest:          "malformed_request",
	ReasonAmbiguousPath:             "ambiguous_path",
	ReasonUnknownApplication:        "unknown_application",
	ReasonNoApplication:             "no_application",
	ReasonMissingCredentials:        "missing_credentials",
	ReasonIncompleteCredentials:     "incomplete_credentials",
	ReasonDuplicateCredentials:      "duplicate_credentials",
	ReasonConflictingCredentials:    "conflicting_credentials",
	ReasonMalformedCredentialHeader: "malformed_credential_header",
	ReasonDuplicateCookie:           "duplicate_cookie",
	ReasonMalformedSecret:           "malformed_secret",
	ReasonUnknownClientID:           "unknown_client_id",
	ReasonWrongSecret:               "wrong_secret",
	ReasonTokenExpired:              "token_expired",
	ReasonTokenDisabled:             "token_disabled",
	ReasonJWTMalformed:              "jwt_malformed",
	ReasonJWTUnknownKID:             "jwt_unknown_kid",
	ReasonJWTAlgorithm:              "jwt_algorithm",
	ReasonJWTSignature:              "jwt_signature",
	ReasonJWTExpired:                "jwt_expired",
	ReasonJWTNotYetValid:            "jwt_not_yet_valid",
	ReasonJWTIssuer:                 "jwt_issuer",
	ReasonJWTClaims:                 "jwt_claims",
	ReasonJWTWrongAudience:          "jwt_wrong_audience",
	ReasonSessionRevoked:            "session_revoked",
	ReasonTokenRevoked:              "token_revoked",
	ReasonDeniedByPolicy:            "denied_by_policy",
	ReasonNoPolicyMatched:           "no_policy_matched",
	ReasonNoSigningKey:              "no_signing_key",
	ReasonInternalError:             "internal_error",
}

// String returns the reason's stable snake_case name.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Allowed reports whether r is the reason of an allow.
func (r Reason) Allowed() bool {
	return r == ReasonAllowedByPolicy || r == ReasonBypass || r == ReasonUnmatchedAllowed
}

// HTTPStatus is the status Envoy returns to the client for a deny with this
// reason, or 200 for an allow reason.
func (r Reason) HTTPStatus() int {
	switch r {
	case ReasonAllowedByPolicy, ReasonBypass, ReasonUnmatchedAllowed:
		return 200
	case ReasonMalformedRequest, ReasonAmbiguousPath:
		return 400
	case ReasonUnknownApplication, ReasonNoApplication, ReasonDeniedByPolicy, ReasonNoPolicyMatched:
		return 403
	case ReasonNoSigningKey:
		return 503
	case ReasonInternalError, ReasonNone:
		return 500
	default:
		return 401
	}
}

// Code is the gRPC code of the CheckResponse status for this reason; Envoy
// denies on anything but OK.
func (r Reason) Code() codes.Code {
	switch r.HTTPStatus() {
	case 200:
		return codes.OK
	case 400:
		return codes.InvalidArgument
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 503:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}
