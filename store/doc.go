// Package store keeps gatehouse's state (service tokens, applications,
// policies, session signing keys, admin keys and the admin audit trail) in
// one bbolt file, <data dir>/gatehouse.db. It is the only package that
// knows bbolt.
//
// # Bucket layout
//
//	meta               "schema_version" → uint64 (8 bytes, big-endian), "rev" → uint64
//	tokens             token id → JSON tokens.ServiceToken
//	token_names        token name → token id
//	token_client_ids   client id → token id
//	apps               application id → JSON policy.Application
//	app_names          application name → application id
//	app_auds           application aud → application id
//	policies           policy id → JSON policy.Policy
//	app_policies       "<application id>/<policy id>" → policy id (schema 2)
//	token_policies     "<token id>/<policy id>" → policy id, for each token a policy's rules name (schema 2)
//	signing_keys       kid → JSON tokens.SealedKey (private key sealed with the master key)
//	admin_keys         admin key id → JSON AdminKey
//	admin_key_digests  secret digest (32 bytes) → admin key id
//	audit              sequence (8 bytes, big-endian, bucket.NextSequence) → JSON AuditEvent
//
// Records are the JSON encoding of the types' own json tags, so a record
// can be read with `bbolt get` and a field can be added without a
// migration. No secret is ever stored: tokens and admin keys keep
// tokens.Digest of the secret, signing keys are sealed (AES-256-GCM under a
// master key that lives outside the file). The file is created mode 0600.
//
// Indexes live in the same transaction as their records; Put methods check
// every uniqueness constraint (token name, token client id, application
// name, application aud, admin key digest) before writing anything. Names
// are compared exactly (case-sensitive), as stored.
//
// SchemaVersion is written on the first Open. A file with a higher version
// is refused with ErrNewerSchema and left untouched (an old binary must not
// rewrite records it does not understand); a lower version is migrated
// inside Open's transaction (all or nothing). Schema 2 added app_policies
// and token_policies, so that an application's policies and the policies
// naming a token are read without decoding every policy (a token deletion
// with 1,000 applications went from ~20 ms of JSON decoding to a prefix
// scan); Verify accepts a schema-1 file without them. A bbolt file without a meta bucket is refused
// with ErrNotStore rather than adopted.
//
// Open holds bbolt's exclusive file lock until Close; a second process
// (a second server, or a CLI that tried to open the file instead of calling
// the admin API) fails after Options.LockTimeout with ErrLocked.
//
// # Revisions and changes
//
// meta "rev" counts committed Update/Batch calls. Each call bumps it inside
// its own transaction, so revisions are gapless and in commit order; a
// rolled-back call gives its number to the next. Every Put and Delete made
// through a Tx is recorded into the call's Change (the last operation per
// id wins), and after the commit the Change is delivered to subscribers
// strictly in revision order — even though bbolt runs commit handlers after
// releasing its writer lock, so concurrent committers reach them out of
// order (see hub). When Update or Batch returns nil, every subscriber has
// seen the call's Change: the admin API can answer "created" knowing the
// authz snapshot already serves the token.
//
// A Change may be empty (a call that only wrote admin keys or audit
// events); it is delivered anyway so that a subscriber's revision keeps up.
// TouchLastSeen is the exception to "every write bumps rev": last-seen
// times flow from the authz server to the store, not the other way, so a
// flush neither bumps the revision nor delivers anything.
//
// Load returns the whole State with the revision it was read at, from one
// read transaction. LoadAndSubscribe does both atomically, so a mirror
// starts from State and applies exactly the Changes with a higher Rev
// (deliveries, and so Update/Batch returns, wait while it loads: call it
// at startup).
//
// A commit that fails with an I/O error usually leaves nothing behind (a
// full disk fails before any write) and its revision is reused. If instead
// the final fsync fails after bbolt wrote its meta page, the new revision
// is visible although no commit handler ran; the store then delivers that
// change itself (so delivery does not stall) and refuses every later write
// with ErrFailed (see DB.Err), because after a failed fsync only a restart,
// which reads the file back, can tell what is really on disk.
//
// # Why Batch
//
// With fsync on (the default; Options.NoSync is for tests), a commit costs
// one or two fsyncs, so a loop of Updates is bounded by the disk's sync
// rate. Batch coalesces concurrent calls (up to MaxBatchSize, or whatever
// arrives within MaxBatchDelay, 2ms by default rather than bbolt's 10ms)
// into one bbolt transaction and one fsync.
// Each call still gets its own revision and Change. bbolt may run a call's
// fn more than once: when one fn fails, the whole transaction is rolled
// back and retried without it, and the failing call is re-run alone. So fn
// must be idempotent apart from the Tx, and the store starts each run with
// a fresh Change and reads the revision inside the transaction.
//
// # A replaceable backend
//
// This package exports a concrete *DB; the consumers own the interfaces.
// The authz side needs only "give me the state, then every change in
// order" (Load/LoadAndSubscribe and Change); the admin side needs
// transactional reads and writes with uniqueness checks. A replicated
// backend (etcd, with its own revision numbers and watch streams, maps
// naturally onto Rev and Change) could provide the same Load/Apply/Subscribe
// shape without either side changing.
package store
