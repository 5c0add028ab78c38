// Package tokens holds gatehouse's credentials model: service tokens and
// their secrets, admin key secrets, and the keys that sign session JWTs. It
// is pure: no storage, no network, and the clock is always passed in.
//
// # Service tokens
//
// A ServiceToken is what Cloudflare Access calls a service token: a client
// id ("<32 lowercase hex>.access") and a client secret that a client sends
// in the cf-access-client-id and cf-access-client-secret headers. The token
// has a lifetime (Duration, "forever" for none) that New and Refresh turn
// into ExpiresAt, and can be disabled. Only a digest of the secret is kept;
// the secret itself is returned once, by New or Rotate.
//
// # Secret format
//
// A gatehouse secret is ASCII and has three parts, concatenated with no
// separator (the prefix ends in an underscore); spaced out:
//
//	ghst_  dYp2...43 chars...Q7  1tKz0a
//	prefix random                checksum
//
// The parts are:
//
//   - prefix: "ghst_" for a service token client secret, "ghak_" for an
//     admin API key.
//   - random: 43 characters of the base62 alphabet
//     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
//     each drawn uniformly from crypto/rand by rejection sampling (62^43 >
//     2^256: a 256-bit secret).
//   - checksum: the CRC-32 (IEEE polynomial, as in hash/crc32.ChecksumIEEE,
//     zlib and PNG) of the ASCII bytes of prefix+random, written as exactly
//     6 base62 digits in the alphabet above, most significant digit first,
//     left-padded with '0' (62^6 > 2^32).
//
// A secret is therefore 54 characters and matches the regular expression
//
//	\bgh(st|ak)_[0-9A-Za-z]{49}\b
//
// Secret scanners can confirm a match offline by recomputing the checksum,
// which gives near-zero false positives; gatehouse does the same in
// CheckSecret, before any lookup, so a mistyped or truncated secret is
// reported as malformed rather than wrong, and costs no hashing. The
// checksum is not a MAC: it catches accidents, not forgeries, which the
// 256 random bits do.
//
// Cloudflare's own secrets (64 hex characters) can be imported (Import) and
// are accepted where CheckSecret is called with legacyHex. They are hashed
// exactly as given, so a client must present them in the case they were
// imported with.
//
// # Secret digests
//
// A token stores Digest(secret) = SHA-256("gatehouse.secret.v1\x00" +
// secret). A fast hash, not a password hash (bcrypt, Argon2), is the right
// choice: the secrets are 256 random bits, so a stolen database gives
// nothing to brute-force or look up, and the check on every request stays
// at well under a microsecond. Input longer than MaxSecretLen is rejected
// before hashing. Digests are compared in constant time, and Verify always
// compares with both the current and the previous digest, so timing does
// not tell which matched.
//
// # Rotation grace
//
// Rotate issues a new secret for the same client id. With a grace period
// (MinGrace to MaxGrace, as Cloudflare's 1 hour to 30 days) the replaced
// secret keeps working until PreviousSecretExpiresAt, exclusive; with 0 it
// stops at once. Only one previous secret is kept. Disabling a token ends
// the grace period for good: enabling it again brings back the current
// secret only.
//
// # Session JWTs and signing keys
//
// After a successful check gatehouse sends the upstream a session JWT like
// Cloudflare's application token (Claims), signed by the active key of a
// KeySet: RS256 (2048-bit RSA, Cloudflare's algorithm and the default),
// ES256 or EdDSA. A key's kid is the hex SHA-256 of its public key's
// SubjectPublicKeyInfo, and every key carries a self-signed certificate, so
// the set can be served both as a plain JWKS and in Cloudflare's
// /cdn-cgi/access/certs shape. KeySet.Verify accepts a JWT only under the
// algorithm of the key its kid names, so "none", HMAC-with-the-public-key
// and cross-algorithm forgeries fail.
//
// Keys rotate (RotateKeys, every DefaultKeyRotation by default): the new
// key signs at once, and the retired key stays in the set, verifying and
// published, for MaxSessionDuration, the longest a JWT it signed can live.
//
// # Key sealing
//
// Private keys are never stored in clear. Seal encrypts a key's PKCS#8 DER
// with AES-256-GCM under a 32-byte master key kept outside the database,
// with a random nonce and the kid as additional authenticated data, so a
// sealed key cannot be moved to another kid's record. Open checks that the
// decrypted key is the one the kid, algorithm and certificate name. Losing
// the master key only means generating new signing keys; leaking the
// database without it leaks no private key.
package tokens
