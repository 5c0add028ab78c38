package authz

import (
	"errors"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// contextKeyApplication is the context_extensions key (set per route in
// Envoy's ExtAuthzPerRoute) that names the application, bypassing routing.
const contextKeyApplication = "application"

// decision is the outcome of deciding one request, before rendering.
type decision struct {
	reason Reason
	app    *policy.App
	result policy.Result // the policy that decided, if any
	// token is the authenticated token when hasToken. It is held by value
	// (its strings point into the snapshot) so that a decision on the
	// stack stays there: the Check path allocates nothing for it.
	token    tokens.ServiceToken
	hasToken bool
	via      variant // how the token authenticated (when token != nil)
	// header is the application's ServiceTokenHeader when the credential
	// came from it (it is then removed before the upstream).
	header   string
	clientID string // presented client id, only if well-formed (for logs)
	previous bool   // authenticated with the previous secret (grace period)
	dryRun   bool
}

// tok is the authenticated token, or nil.
func (d *decision) tok() *tokens.ServiceToken {
	if !d.hasToken {
		return nil
	}
	return &d.token
}

// allowed reports whether policies admit the request (before dry run).
func (d *decision) allowed() bool { return d.reason.Allowed() }

// dummyToken is verified against when a client id is unknown, so that an
// unknown id costs the same digest and comparisons as a wrong secret.
var dummyToken = &tokens.ServiceToken{
	ID:                   "00000000-0000-4000-8000-000000000000",
	ClientID:             "00000000000000000000000000000000.access",
	Name:                 "dummy",
	SecretDigest:         tokens.DummyDigest[:],
	PreviousSecretDigest: tokens.DummyDigest[:],
	Enabled:              true,
}

// dummyRecord is dummyToken as a snapshot record, filled like a found token
// so that the lookup of an unknown client id costs the same too.
var dummyRecord = func() *tokenStore {
	st := newTokenStore(1, recBytes(dummyToken))
	st.add(dummyToken)
	return st
}()

// decider is what deciding reads besides the request and the snapshot:
// configuration, and side caches that memoise pure functions (peer
// certificate names, JWT signature checks). It records nothing.
type decider struct {
	issuer         string
	unmatchedAllow bool
	trustedProxies int
	certs          *certNames
	verified       *verifyCache
}

// decide runs route → bypass → authenticate → evaluate for a parsed request.
// It is pure: no last-seen, no signing, no logging.
func (dc *decider) decide(snap *Snapshot, r *request, now time.Time) (d decision) {
	path, err := policy.NormalizePath(r.path)
	if err != nil {
		d.reason = ReasonAmbiguousPath
		return d
	}
	host := policy.NormalizeHost(r.host)

	// Route.
	eng := snap.engine
	if name, ok := r.attrs.GetContextExtensions()[contextKeyApplication]; ok {
		if eng != nil {
			d.app = eng.AppByName(name)
		}
		if d.app == nil {
			d.reason = ReasonUnknownApplication
			return d
		}
	} else if eng != nil {
		d.app = eng.Route(host, path)
	}
	if d.app == nil {
		if dc.unmatchedAllow {
			d.reason = ReasonUnmatchedAllowed
		} else {
			d.reason = ReasonNoApplication
		}
		return d
	}
	app := d.app.App
	d.dryRun = app.DryRun

	// Bypass: decided on the connection alone, before any credential.
	src := r.attrs.GetSource()
	subj := policy.Subject{
		SourceIP:       r.sourceIP(dc.trustedProxies),
		Principal:      src.GetPrincipal(),
		HasCertificate: src.GetCertificate() != "",
	}
	if subj.HasCertificate {
		subj.CommonName = dc.certs.commonName(src.GetCertificate())
	}
	if res, ok := d.app.Bypass(&subj); ok {
		d.result = res
		d.reason = ReasonBypass
		return d
	}

	// Authenticate.
	cred, reason := r.credentials(app.ServiceTokenHeader, app.SessionCookie)
	if reason != ReasonNone {
		d.reason = reason
		return d
	}
	switch cred.kind {
	case credHeaders, credCustom:
		if tokens.ValidClientID(cred.clientID) {
			d.clientID = cred.clientID
		}
		d.via = viaHeaders
		if cred.kind == credCustom {
			d.via, d.header = viaCustom, app.ServiceTokenHeader
		}
		if d.previous, d.reason = authenticateSecret(snap, cred.clientID, cred.secret, now, &d.token); d.reason != ReasonNone {
			return d
		}
		d.hasToken = true
	case credJWT:
		d.via = viaJWT
		if d.reason = dc.authenticateJWT(snap, app, cred.jwt, now, &d.token); d.reason != ReasonNone {
			return d
		}
		d.hasToken = true
		d.clientID = d.token.ClientID
	}

	// Evaluate.
	if d.hasToken {
		subj.TokenID = d.token.ID
	}
	d.result = d.app.Evaluate(&subj)
	switch d.result.Decision {
	case policy.NonIdentity, policy.Allow:
		d.reason = ReasonAllowedByPolicy
	case policy.Deny:
		d.reason = ReasonDeniedByPolicy
	default:
		if !d.hasToken {
			d.reason = ReasonMissingCredentials
		} else {
			d.reason = ReasonNoPolicyMatched
		}
	}
	return d
}

// authenticateSecret checks a client id and secret against the snapshot.
// The shape of the secret is checked first (cheap, no lookup); an unknown
// client id is answered only after the same digest and comparisons a known
// one costs, so timing does not reveal which client ids exist. On success
// tok holds the token; previous reports a match with the previous secret
// (rotation grace period).
func authenticateSecret(snap *Snapshot, clientID, secret string, now time.Time, tok *tokens.ServiceToken) (previous bool, r Reason) {
	if err := tokens.CheckSecret(secret, tokens.SecretPrefix, true); err != nil {
		return false, ReasonMalformedSecret
	}
	digest := tokens.Digest(secret)
	if !snap.lookupClientID(clientID, tok) {
		dummyRecord.recs[0][0].fill(dummyRecord.bytes, tok)
		tok.Verify(&digest, now)
		return false, ReasonUnknownClientID
	}
	switch tok.Verify(&digest, now) {
	case tokens.VerifyOK:
		return false, ReasonNone
	case tokens.VerifyOKPrevious:
		return true, ReasonNone
	case tokens.VerifyExpired:
		return false, ReasonTokenExpired
	case tokens.VerifyDisabled:
		return false, ReasonTokenDisabled
	default:
		return false, ReasonWrongSecret
	}
}

// authenticateJWT checks a presented session JWT: signature, issuer and
// times (KeySet.Verify), then that it was issued for this application after
// its last session revocation, for a token that still exists, is enabled and
// has not expired. On success tok holds the token.
func (dc *decider) authenticateJWT(snap *Snapshot, app *policy.Application, jwt string, now time.Time, tok *tokens.ServiceToken) Reason {
	if snap.keys == nil {
		return ReasonJWTUnknownKID
	}
	claims, err := dc.verified.verify(snap.keys, jwt, dc.issuer, now)
	if err != nil {
		return jwtReason(err)
	}
	if claims.Type != "app" || claims.ServiceTokenID == "" {
		return ReasonJWTClaims
	}
	if !slices.Contains(claims.Audience, app.AUD) {
		return ReasonJWTWrongAudience
	}
	if !app.SessionsRevokedAt.IsZero() && !claims.IssuedAt.After(app.SessionsRevokedAt) {
		return ReasonSessionRevoked
	}
	if !snap.lookupID(claims.ServiceTokenID, tok) || !tok.Enabled || tok.Expired(now) {
		return ReasonTokenRevoked
	}
	if tok.ClientID != claims.CommonName {
		return ReasonJWTClaims
	}
	return ReasonNone
}

// jwtReason maps KeySet.Verify's sentinel errors to deny reasons.
func jwtReason(err error) Reason {
	switch {
	case errors.Is(err, tokens.ErrJWTUnknownKID):
		return ReasonJWTUnknownKID
	case errors.Is(err, tokens.ErrJWTAlg):
		return ReasonJWTAlgorithm
	case errors.Is(err, tokens.ErrJWTSignature):
		return ReasonJWTSignature
	case errors.Is(err, tokens.ErrJWTExpired):
		return ReasonJWTExpired
	case errors.Is(err, tokens.ErrJWTNotYetValid):
		return ReasonJWTNotYetValid
	case errors.Is(err, tokens.ErrJWTIssuer):
		return ReasonJWTIssuer
	case errors.Is(err, tokens.ErrJWTClaims):
		return ReasonJWTClaims
	default:
		return ReasonJWTMalformed
	}
}
