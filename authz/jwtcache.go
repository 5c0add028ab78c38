package authz

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Cache sizes. Both caches are sharded; a shard that reaches its share of the
// bound is emptied (drop-all), which costs at most one re-sign or re-verify
// per live entry and needs no LRU bookkeeping on the hot path. Minted JWTs
// are kept by token: a token's entries for an older version of it are
// dropped when a JWT for the new one is minted, and all of them when the
// token changes or is deleted (Server.ForgetTokens), so churn in tokens does
// not fill the cache with entries that are never hit again.
const (
	cacheShards      = 32
	maxMinted        = 100_000 // (token, app, policy, key) → minted JWT
	maxVerified      = 65_536  // presented JWT → verified claims
	defaultSession   = 24 * time.Hour
	sessionSkewFloor = time.Second
)

// mintKey identifies a minted session JWT. Every input of the JWT and of the
// response built around it is covered: the token (id, secret version,
// UpdatedAt: name, expiry, enabled), the application (id, UpdatedAt: AUD,
// session, cookie mode, header name), the policy (id, UpdatedAt: session
// override, name) and the signing key.
type mintKey struct {
	tokenID       string
	secretVersion int64
	tokenUpdated  int64
	appID         string
	appUpdated    int64
	policyID      string
	policyUpdated int64
	kid           string
}

// variant is how the credential arrived; it decides the response shape
// (which headers to remove, whether to set the cookie).
type variant uint8

const (
	viaHeaders variant = iota // cf-access-client-id/secret
	viaCustom                 // the application's ServiceTokenHeader
	viaJWT                    // CF_Authorization cookie or cf-access-token
	numVariants
)

// minted is one session JWT and the CheckResponses that carry it, built on
// first use and then shared by every Check that gets this JWT. They are
// immutable once published (concurrent proto marshalling only reads them).
type minted struct {
	key        mintKey
	jwt        string
	iat, exp   time.Time
	reuseUntil time.Time // mint time + half the lifetime
	resp       [numVariants]atomic.Pointer[preEncoded]
}

// mintShard holds the minted JWTs of the tokens whose id falls in it, by
// token id: one entry per (version of the token, application, policy,
// signing key) in use, so a token's list is short.
type mintShard struct {
	mu sync.RWMutex
	m  map[string][]*minted
	n  int      // entries in m, all tokens together
	_  [32]byte // keep hot shards on separate cache lines
}

// lookup returns the entry for key, or nil. The caller holds mu.
func (sh *mintShard) lookup(key *mintKey) *minted {
	for _, e := range sh.m[key.tokenID] {
		if e.key == *key {
			return e
		}
	}
	return nil
}

// store adds e. It drops the token's entries that e supersedes, which can
// never be hit again: those for other versions of the token (secret version
// or UpdatedAt), and the one for the same application and policy (same key
// re-minted, or an older version of the application, policy or signing key).
// The caller holds mu.
func (sh *mintShard) store(e *minted, perShard int) {
	if sh.n >= perShard {
		clear(sh.m)
		sh.n = 0
	}
	old := sh.m[e.key.tokenID]
	kept := make([]*minted, 0, len(old)+1)
	for _, o := range old {
		sameToken := o.key.secretVersion == e.key.secretVersion && o.key.tokenUpdated == e.key.tokenUpdated
		sameTarget := o.key.appID == e.key.appID && o.key.policyID == e.key.policyID
		if sameToken && !sameTarget {
			kept = append(kept, o)
		}
	}
	sh.m[e.key.tokenID] = append(kept, e)
	sh.n += len(kept) + 1 - len(old)
}

// remove drops e if it is still held. The caller holds mu.
func (sh *mintShard) remove(e *minted) {
	list := sh.m[e.key.tokenID]
	if i := slices.Index(list, e); i >= 0 {
		if len(list) == 1 {
			delete(sh.m, e.key.tokenID)
		} else {
			sh.m[e.key.tokenID] = slices.Delete(slices.Clone(list), i, i+1)
		}
		sh.n--
	}
}

// forget drops every entry of the token. The caller holds mu.
func (sh *mintShard) forget(tokenID string) {
	sh.n -= len(sh.m[tokenID])
	delete(sh.m, tokenID)
}

// jwtCache holds minted session JWTs so that Check never signs per request:
// a JWT is reused while at least half of its lifetime remains.
type jwtCache struct {
	shards   [cacheShards]mintShard
	perShard int // bound per shard
	// current, if set, says whether the token with this id is still
	// published in this version (secret version, UpdatedAt). An entry
	// minted for a token that changed or went away meanwhile is taken out
	// again: forget may have run before it went in.
	current func(id string, secretVersion int64, updatedAt time.Time) bool
}

func newJWTCache() *jwtCache {
	c := &jwtCache{perShard: maxMinted / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]*minted)
	}
	return c
}

// forget drops the minted JWTs of these tokens.
func (c *jwtCache) forget(tokenIDs []string) {
	for _, id := range tokenIDs {
		sh := &c.shards[shardOf(id)%cacheShards]
		sh.mu.Lock()
		sh.forget(id)
		sh.mu.Unlock()
	}
}

// forgetTargets drops the minted JWTs for these applications and policies,
// of every token: a scan of the whole cache, for the rare deletion of an
// application or policy.
func (c *jwtCache) forgetTargets(appIDs, policyIDs []string) {
	if len(appIDs) == 0 && len(policyIDs) == 0 {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for tokenID, list := range sh.m {
			kept := slices.DeleteFunc(slices.Clone(list), func(e *minted) bool {
				return slices.Contains(appIDs, e.key.appID) || (e.key.policyID != "" && slices.Contains(policyIDs, e.key.policyID))
			})
			sh.n -= len(list) - len(kept)
			if len(kept) == 0 {
				delete(sh.m, tokenID)
			} else if len(kept) != len(list) {
				sh.m[tokenID] = kept
			}
		}
		sh.mu.Unlock()
	}
}

// len is the number of minted JWTs held.
func (c *jwtCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += sh.n
		sh.mu.RUnlock()
	}
	return n
}

// sessionDuration is the JWT lifetime for an allow by pol on app: the
// policy's session if set, else the application's, else 24 h; never more
// than tokens.MaxSessionDuration.
func sessionDuration(app *policy.Application, pol *policy.Policy) time.Duration {
	d := app.SessionDuration
	if pol != nil && pol.SessionDuration > 0 {
		d = pol.SessionDuration
	}
	if d <= 0 {
		d = defaultSession
	}
	return min(d, tokens.MaxSessionDuration)
}

func keyFor(tok *tokens.ServiceToken, app *policy.Application, pol *policy.Policy, kid string) mintKey {
	k := mintKey{
		tokenID:       tok.ID,
		secretVersion: tok.SecretVersion,
		tokenUpdated:  tok.UpdatedAt.UnixNano(),
		appID:         app.ID,
		appUpdated:    app.UpdatedAt.UnixNano(),
		kid:           kid,
	}
	if pol != nil {
		k.policyID = pol.ID
		k.policyUpdated = pol.UpdatedAt.UnixNano()
	}
	return k
}

// get returns a JWT for tok on app (allowed by pol), minting one with keys'
// active key when no cached JWT can be reused. Without one it says why:
// ReasonNoSigningKey (no active key, or signing failed) or
// ReasonTokenExpired (the token expires before a one-second JWT could).
func (c *jwtCache) get(keys *tokens.KeySet, issuer string, tok *tokens.ServiceToken, app *policy.Application, pol *policy.Policy, now time.Time) (*minted, Reason) {
	if keys == nil {
		return nil, ReasonNoSigningKey
	}
	active := keys.ActiveAt(now)
	if active == nil {
		return nil, ReasonNoSigningKey
	}
	key := keyFor(tok, app, pol, active.KID)
	sh := &c.shards[shardOf(tok.ID)%cacheShards]
	sh.mu.RLock()
	e := sh.lookup(&key)
	sh.mu.RUnlock()
	if e != nil && now.Before(e.reuseUntil) && e.iat.After(app.SessionsRevokedAt) {
		return e, ReasonNone
	}
	e, reason := mint(keys, issuer, tok, app, pol, now)
	if e == nil {
		return nil, reason
	}
	// The token's strings point into the snapshot's chunks: the entry
	// gets its own copy of the id, so that it does not keep them alive.
	key.tokenID = strings.Clone(key.tokenID)
	e.key = key
	sh.mu.Lock()
	sh.store(e, c.perShard)
	sh.mu.Unlock()
	if c.current != nil && !c.current(tok.ID, tok.SecretVersion, tok.UpdatedAt) {
		// Still good for this Check, which decided on the version it saw.
		sh.mu.Lock()
		sh.remove(e)
		sh.mu.Unlock()
	}
	return e, ReasonNone
}

// mint signs a session JWT. iat is now, except just after the application's
// sessions were revoked: JWT times have one-second precision, and a JWT
// whose iat second is not after SessionsRevokedAt would be refused when
// presented back, so iat is moved to the next second.
func mint(keys *tokens.KeySet, issuer string, tok *tokens.ServiceToken, app *policy.Application, pol *policy.Policy, now time.Time) (*minted, Reason) {
	iat := now.Truncate(time.Second)
	if !app.SessionsRevokedAt.IsZero() && !iat.After(app.SessionsRevokedAt) {
		iat = app.SessionsRevokedAt.Truncate(time.Second).Add(sessionSkewFloor)
	}
	exp := now.Add(sessionDuration(app, pol))
	if !tok.ExpiresAt.IsZero() && tok.ExpiresAt.Before(exp) {
		exp = tok.ExpiresAt
	}
	exp = exp.Truncate(time.Second)
	if !exp.After(iat) {
		return nil, ReasonTokenExpired // less than a second left
	}
	claims := tokens.Claims{
		Issuer:           issuer,
		Audience:         []string{app.AUD},
		IssuedAt:         iat,
		NotBefore:        iat,
		ExpiresAt:        exp,
		Type:             "app",
		CommonName:       tok.ClientID,
		ServiceTokenID:   tok.ID,
		ServiceTokenName: tok.Name,
	}
	jwt, err := keys.Sign(&claims)
	if err != nil {
		return nil, ReasonNoSigningKey
	}
	return &minted{
		jwt:        jwt,
		iat:        iat,
		exp:        exp,
		reuseUntil: now.Add(exp.Sub(now) / 2),
	}, ReasonNone
}

// verifiedJWT is a presented JWT that passed KeySet.Verify against keys.
// It stands until until: its exp, or earlier if one of the keys is due to be
// removed first (KeySet.Verify refuses JWTs of a removed key).
type verifiedJWT struct {
	claims *tokens.Claims
	keys   *tokens.KeySet
	until  time.Time
}

type verifyShard struct {
	mu sync.RWMutex
	m  map[string]verifiedJWT
	_  [40]byte
}

// verifyCache remembers JWTs whose signature already verified, so a client
// presenting the same CF_Authorization cookie on every request costs one
// map lookup instead of a signature check. An entry counts only with the key
// set that verified it (a key removal invalidates it) and only until exp;
// time and claim checks beyond the signature are redone by the caller.
type verifyCache struct {
	shards [cacheShards]verifyShard
}

func newVerifyCache() *verifyCache {
	c := &verifyCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string]verifiedJWT)
	}
	return c
}

// verify returns jwt's claims as KeySet.Verify would.
func (c *verifyCache) verify(keys *tokens.KeySet, jwt, issuer string, now time.Time) (*tokens.Claims, error) {
	sh := &c.shards[shardOf(jwt)%cacheShards]
	sh.mu.RLock()
	v, ok := sh.m[jwt]
	sh.mu.RUnlock()
	// Strictly inside [nbf, exp): KeySet.Verify's leeway windows take the
	// slow path so its rules stay the only ones.
	if ok && v.keys == keys && !now.Before(v.claims.NotBefore) && now.Before(v.until) {
		return v.claims, nil
	}
	claims, err := keys.Verify(jwt, issuer, now)
	if err != nil {
		return nil, err
	}
	if now.Before(claims.NotBefore) || !now.Before(claims.ExpiresAt) {
		return claims, nil // valid only by leeway: do not cache
	}
	until := claims.ExpiresAt
	for _, k := range keys.Keys() {
		if !k.RemoveAfter.IsZero() && k.RemoveAfter.Before(until) {
			until = k.RemoveAfter
		}
	}
	sh.mu.Lock()
	if len(sh.m) >= maxVerified/cacheShards {
		clear(sh.m)
	}
	// Clone: jwt may be a slice of a larger header value (the cookie).
	sh.m[strings.Clone(jwt)] = verifiedJWT{claims: claims, keys: keys, until: until}
	sh.mu.Unlock()
	return claims, nil
}
