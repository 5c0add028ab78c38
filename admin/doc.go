// Package admin implements gatehouse.admin.v1.AdminService, the gRPC API that
// manages service tokens, applications, policies, session-JWT signing keys,
// admin keys and the audit log, over the store.
//
// # Model
//
// Every call is authenticated by UnaryInterceptor / StreamInterceptor with an
// admin key sent as `authorization: Bearer ghak_…`. The key is checked on
// every call against the store (a bbolt read transaction is a few
// microseconds), so a revocation takes effect on the very next call. A
// read-only key may call the List*/Get* methods and CheckAccess; everything
// else, Backup included (a backup holds secret digests and sealed private
// keys), needs a read-write key. Health and reflection services registered on
// the same gRPC server are not subject to admin authentication.
//
// Every mutating call is one store transaction: the change and its audit
// event commit together or not at all. Requests are validated before the
// transaction; references that need the store (an application by name, a
// service token named by a policy rule) are resolved inside it, so what is
// validated is what is written. A failed mutation is recorded in the audit
// log too, in a separate best-effort transaction, with the gRPC code name as
// its outcome. The store publishes each committed change to its subscribers;
// the server's wiring turns those into a new authorizer snapshot, so admin
// never talks to the authorizer directly (CheckAccess goes through the
// Decider interface).
//
// Errors are mapped to gRPC status codes in one place (toStatus): validation
// errors become InvalidArgument with a message that starts with the field
// name ("duration: …", "include[0].service_token.token_id: …"), store
// sentinels become NotFound / AlreadyExists / FailedPrecondition, anything
// unexpected becomes Internal with a generic message while the cause is
// logged.
//
// # Secrets
//
// A client secret is returned by CreateServiceToken and RotateServiceToken
// only, an admin key by CreateAdminKey and EnsureAdminKey (which writes it to
// a 0600 file) only. Neither is stored (only a digest is), logged, or put in
// an audit event or error message.
//
// # Signing keys
//
// Signing keys are rotated on SealedKey metadata: a new key is generated,
// sealed with the master key and published at once, but signs only from
// ActiveFrom = now + tokens.KeyPrePublish (publish before sign: verifiers
// caching the JWKS fetch it before its first JWT); the signing key retires
// at that same moment and stays published until RemoveAfter =
// RetiredAt + tokens.MaxSessionDuration, by which time every JWT it signed
// has expired; keys past RemoveAfter are dropped. An immediate rotation, or
// one with no key signing, hands over at once. Existing private keys are
// never unsealed for a rotation.
package admin
