package authz

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"sync"
	"time"
	"unsafe"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// shardCount is the number of copy-on-write shards of each token index.
// With a million tokens a write copies one shard of ~500 entries (per
// index) instead of the whole map. (256 shards of ~4k entries made the copy
// 20 % of the CPU under 100 token writes a second: docs/performance.md.)
const shardCount = 2048

// shardSeed spreads string keys over shards (the JWT cache and last-seen
// shards). It is fixed for the process.
var shardSeed = maphash.MakeSeed()

func shardOf(key string) int {
	return int(maphash.String(shardSeed, key) % shardCount)
}

// Snapshot is the immutable state a Check reads: service tokens indexed by
// client id and by id, the compiled application/policy engine and the
// signing keys. A new Snapshot is derived with Apply, WithEngine or WithKeys
// and published with Server.Publish; readers never see a partial update.
//
// The tokens are held without a single pointer the garbage collector would
// have to follow: each is a fixed-size record (tokenRec) whose strings and
// digests live in byte chunks, and both indexes map a 16-byte key (the
// client id's and the id's hex, decoded) to a record reference. With a
// million tokens the live heap is a few hundred megabytes that a collection
// marks without scanning, instead of millions of objects and pointers it
// would walk on every cycle while Checks wait on it. A lookup copies the
// record into a caller's tokens.ServiceToken whose strings point into the
// chunks (no allocation).
type Snapshot struct {
	byClientID [shardCount]refShard
	byID       [shardCount]refShard
	// oddClientID and oddID index tokens whose client id or id is not in
	// the canonical form the 16-byte keys decode (tokens.ValidClientID, a
	// lowercase UUID). The server never creates such tokens, so these are
	// nearly always empty; they are copied whole on write.
	oddClientID map[string]ref
	oddID       map[string]ref
	n           int

	// The records, read through the chunk lists captured when this Snapshot
	// was made (see tokenStore).
	store *tokenStore
	recs  [][]tokenRec
	bytes [][]byte

	engine *policy.Engine
	keys   *tokens.KeySet
	// headers are the engine's custom credential header names
	// (ServiceTokenHeader): the CheckRequest decoder keeps them.
	headers *headerNames
}

// key16 is a canonical client id's 32 hex digits, or a canonical UUID's,
// decoded.
type key16 [16]byte

// refShard is one shard of an index: key → record reference.
type refShard map[key16]ref

// shard picks the shard of a key. Client ids are 128 random bits, but ids
// are time-ordered UUIDs (version 7) whose first 48 bits are a timestamp;
// the mix of both halves spreads either evenly.
func (k *key16) shard() int {
	x := binary.LittleEndian.Uint64(k[:8]) ^ binary.LittleEndian.Uint64(k[8:])*0x9E3779B97F4A7C15
	return int((x * 0xBF58476D1CE4E5B9 >> 32) % shardCount)
}

// hexVal maps a lowercase hex digit to its value, anything else to 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// unhex decodes 2·len(dst) lowercase hex digits of s into dst.
func unhex(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		if hi|lo == 0xff {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// clientKey decodes a canonical client id (tokens.ValidClientID: 32
// lowercase hex digits and ".access"). Distinct canonical ids give distinct
// keys, so the key index is exact.
func clientKey(s string) (k key16, ok bool) {
	const suffix = ".access"
	if len(s) != 32+len(suffix) || s[32:] != suffix {
		return k, false
	}
	return k, unhex(k[:], s[:32])
}

// idKey decodes a canonical UUID: lowercase, 8-4-4-4-12 hex digits.
func idKey(s string) (k key16, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return k, false
	}
	ok = unhex(k[0:4], s[0:8]) && unhex(k[4:6], s[9:13]) && unhex(k[6:8], s[14:18]) &&
		unhex(k[8:10], s[19:23]) && unhex(k[10:16], s[24:36])
	return k, ok
}

// NewSnapshot builds a Snapshot from copies of toks (nil entries are
// skipped; the tokens are not retained). eng and keys may be nil: with no
// engine no application matches; with no keys no JWT can be minted or
// verified.
func NewSnapshot(toks []*tokens.ServiceToken, eng *policy.Engine, keys *tokens.KeySet) *Snapshot {
	n, size := 0, 0
	for _, t := range toks {
		if t != nil {
			n++
			size += recBytes(t)
		}
	}
	b := newBuilder(n, size)
	for _, t := range toks {
		if t != nil {
			b.Add(t)
		}
	}
	return b.Snapshot(eng, keys)
}

// SnapshotBuilder builds a Snapshot one token at a time, so that a store can
// be loaded without holding all its tokens decoded at once: with a million
// tokens that is as much memory again as the snapshot itself.
type SnapshotBuilder struct {
	s *Snapshot
}

// NewSnapshotBuilder returns an empty builder.
func NewSnapshotBuilder() *SnapshotBuilder { return newBuilder(0, 0) }

func newBuilder(n, size int) *SnapshotBuilder {
	s := &Snapshot{store: newTokenStore(n, size)}
	hint := n/shardCount + 1
	for i := range s.byClientID {
		s.byClientID[i] = make(refShard, hint)
		s.byID[i] = make(refShard, hint)
	}
	return &SnapshotBuilder{s: s}
}

// Add copies t into the snapshot being built (t is not retained), replacing
// a token added before with the same id.
func (b *SnapshotBuilder) Add(t *tokens.ServiceToken) {
	st := b.s.store
	st.mu.Lock()
	r := st.add(t)
	b.s.recs, b.s.bytes = st.recs, st.bytes
	st.mu.Unlock()
	b.s.put(t, r)
}

// Len is the number of tokens added (those with distinct ids).
func (b *SnapshotBuilder) Len() int { return b.s.n }

// Snapshot returns the Snapshot of the tokens added, with eng and keys (see
// NewSnapshot). The builder must not be used afterwards.
func (b *SnapshotBuilder) Snapshot(eng *policy.Engine, keys *tokens.KeySet) *Snapshot {
	s := b.s
	b.s = nil
	s.engine, s.keys, s.headers = eng, keys, newHeaderNames(eng)
	return s
}

// put indexes record r (token t) in shards and maps the caller owns,
// replacing any record with t's id.
func (s *Snapshot) put(t *tokens.ServiceToken, r ref) {
	if old, ok := s.refByID(t.ID); ok {
		if oldClient := s.clientIDOf(old); oldClient != t.ClientID {
			s.unindexClient(oldClient)
		}
	} else {
		s.n++
	}
	if k, ok := idKey(t.ID); ok {
		s.byID[k.shard()][k] = r
	} else {
		if s.oddID == nil { // NewSnapshot: s is new
			s.oddID = make(map[string]ref)
		}
		s.oddID[t.ID] = r
	}
	if k, ok := clientKey(t.ClientID); ok {
		s.byClientID[k.shard()][k] = r
	} else {
		if s.oddClientID == nil {
			s.oddClientID = make(map[string]ref)
		}
		s.oddClientID[t.ClientID] = r
	}
}

// Apply returns a Snapshot with put inserted or replaced (by id) and the
// tokens with ids in deleted removed; s itself is unchanged. Only the index
// shards the change touches are copied; the tokens are copied into the
// snapshot (put is not retained). A token both put and deleted ends up
// deleted.
func (s *Snapshot) Apply(put []*tokens.ServiceToken, deleted []string) *Snapshot {
	ns := *s
	if ns.store == nil {
		ns.store = newTokenStore(0, 0)
	}
	w := shardWriter{s: &ns}
	ns.store.mu.Lock()
	for _, t := range put {
		if t != nil {
			w.own(t.ID, t.ClientID)
			if old, ok := ns.refByID(t.ID); ok {
				w.own("", ns.clientIDOf(old))
			}
			r := ns.store.add(t)
			// Capture the chunks now: a later put of the same id reads
			// this record.
			ns.recs, ns.bytes = ns.store.recs, ns.store.bytes
			ns.put(t, r)
		}
	}
	ns.store.mu.Unlock()
	for _, id := range deleted {
		old, ok := ns.refByID(id)
		if !ok {
			continue
		}
		client := ns.clientIDOf(old)
		w.own(id, client)
		ns.unindexID(id)
		if cur, ok := ns.refByClientID(client); ok && cur == old {
			ns.unindexClient(client)
		}
		ns.n--
	}
	if live := uint32(ns.n); ns.store.garbage(live) {
		return ns.rebuilt()
	}
	return &ns
}

// shardWriter copies, once per Apply, the index shards and maps a change
// writes to.
type shardWriter struct {
	s              *Snapshot
	ownC, ownI     [shardCount]bool
	oddC, oddIDown bool
}

// own makes the shards holding id and clientID (either may be "") writable.
func (w *shardWriter) own(id, clientID string) {
	s := w.s
	if id != "" {
		if k, ok := idKey(id); ok {
			if i := k.shard(); !w.ownI[i] {
				s.byID[i], w.ownI[i] = cloneShard(s.byID[i]), true
			}
		} else if !w.oddIDown {
			s.oddID, w.oddIDown = cloneOdd(s.oddID), true
		}
	}
	if clientID != "" {
		if k, ok := clientKey(clientID); ok {
			if i := k.shard(); !w.ownC[i] {
				s.byClientID[i], w.ownC[i] = cloneShard(s.byClientID[i]), true
			}
		} else if !w.oddC {
			s.oddClientID, w.oddC = cloneOdd(s.oddClientID), true
		}
	}
}

func (s *Snapshot) unindexID(id string) {
	if k, ok := idKey(id); ok {
		delete(s.byID[k.shard()], k)
	} else {
		delete(s.oddID, id)
	}
}

func (s *Snapshot) unindexClient(clientID string) {
	if k, ok := clientKey(clientID); ok {
		delete(s.byClientID[k.shard()], k)
	} else {
		delete(s.oddClientID, clientID)
	}
}

// rebuilt returns a copy of s whose records sit in a new store holding only
// s's tokens, so that the records replaced and deleted since the last build
// can be collected. Apply calls it when the store's garbage says so.
func (s *Snapshot) rebuilt() *Snapshot {
	toks := make([]*tokens.ServiceToken, 0, s.n)
	s.ForEachToken(func(t *tokens.ServiceToken) bool {
		c := *t // strings stay valid: they keep the old chunks alive until copied
		toks = append(toks, &c)
		return true
	})
	return NewSnapshot(toks, s.engine, s.keys)
}

func cloneShard(m refShard) refShard {
	if m == nil {
		return make(refShard)
	}
	return maps.Clone(m)
}

func cloneOdd(m map[string]ref) map[string]ref {
	if m == nil {
		return make(map[string]ref)
	}
	return maps.Clone(m)
}

// WithEngine returns a Snapshot that shares s's tokens and keys and uses eng.
func (s *Snapshot) WithEngine(eng *policy.Engine) *Snapshot {
	ns := *s
	ns.engine = eng
	ns.headers = newHeaderNames(eng)
	return &ns
}

// WithKeys returns a Snapshot that shares s's tokens and engine and uses keys.
func (s *Snapshot) WithKeys(keys *tokens.KeySet) *Snapshot {
	ns := *s
	ns.keys = keys
	return &ns
}

func (s *Snapshot) refByClientID(clientID string) (ref, bool) {
	if k, ok := clientKey(clientID); ok {
		r, ok := s.byClientID[k.shard()][k]
		return r, ok
	}
	r, ok := s.oddClientID[clientID]
	return r, ok
}

func (s *Snapshot) refByID(id string) (ref, bool) {
	if k, ok := idKey(id); ok {
		r, ok := s.byID[k.shard()][k]
		return r, ok
	}
	r, ok := s.oddID[id]
	return r, ok
}

func (s *Snapshot) rec(r ref) *tokenRec { return &s.recs[r>>refShift][r&refMask] }

// clientIDOf is record r's client id.
func (s *Snapshot) clientIDOf(r ref) string {
	rec := s.rec(r)
	return rec.field(s.bytes, fClientID)
}

// lookupClientID fills dst with the token with this client id and reports
// whether there is one. dst's strings and digests point into the snapshot:
// read them, never write them.
func (s *Snapshot) lookupClientID(clientID string, dst *tokens.ServiceToken) bool {
	r, ok := s.refByClientID(clientID)
	if ok {
		s.rec(r).fill(s.bytes, dst)
	}
	return ok
}

// lookupID is lookupClientID by token id.
func (s *Snapshot) lookupID(id string, dst *tokens.ServiceToken) bool {
	r, ok := s.refByID(id)
	if ok {
		s.rec(r).fill(s.bytes, dst)
	}
	return ok
}

// isVersion reports whether the token with id is published with this
// secret version and UpdatedAt, the version a session JWT is minted for.
func (s *Snapshot) isVersion(id string, secretVersion int64, updatedAt time.Time) bool {
	r, ok := s.refByID(id)
	if !ok {
		return false
	}
	rec := s.rec(r)
	return rec.secretVersion == secretVersion &&
		rec.secs[tUpdated] == updatedAt.Unix() && rec.nsecs[tUpdated] == int32(updatedAt.Nanosecond())
}

// TokenByClientID returns a copy of the token with this client id, or nil.
// It allocates: the Check path uses lookupClientID.
func (s *Snapshot) TokenByClientID(clientID string) *tokens.ServiceToken {
	var t tokens.ServiceToken
	if !s.lookupClientID(clientID, &t) {
		return nil
	}
	return t.Clone()
}

// TokenByID returns a copy of the token with this id, or nil.
func (s *Snapshot) TokenByID(id string) *tokens.ServiceToken {
	var t tokens.ServiceToken
	if !s.lookupID(id, &t) {
		return nil
	}
	return t.Clone()
}

// ForEachToken calls fn with every token, in no particular order, until fn
// returns false. It walks the whole snapshot: for metrics and reports, never
// for the Check path. fn must neither modify nor keep the token it is given
// (the same value is refilled for the next call); its strings may be kept.
func (s *Snapshot) ForEachToken(fn func(*tokens.ServiceToken) bool) {
	var t tokens.ServiceToken
	each := func(r ref) bool {
		s.rec(r).fill(s.bytes, &t)
		return fn(&t)
	}
	for _, shard := range s.byID {
		for _, r := range shard {
			if !each(r) {
				return
			}
		}
	}
	for _, r := range s.oddID {
		if !each(r) {
			return
		}
	}
}

// Len is the number of tokens.
func (s *Snapshot) Len() int { return s.n }

// Engine is the compiled application/policy engine (nil if none).
func (s *Snapshot) Engine() *policy.Engine { return s.engine }

// Keys is the signing key set (nil if none).
func (s *Snapshot) Keys() *tokens.KeySet { return s.keys }

// ref is a record's place in a tokenStore: chunk<<refShift | index.
type ref uint32

const (
	refShift     = 12
	refMask      = 1<<refShift - 1
	maxRecChunk  = 1 << refShift // records per chunk, at most
	minRecChunk  = 16
	maxByteChunk = 1 << 20
	minByteChunk = 1 << 10
)

// The times and variable-length fields of a token record.
const (
	tCreated = iota
	tUpdated
	tExpires
	tLastSeen
	tPrevExpires
	nTimes
)

const (
	fID = iota
	fClientID
	fName
	fDigest
	fPrevDigest
	nFields
)

const (
	flagEnabled = 1 << iota
	flagImported
)

// tokenRec is a service token without pointers. Times are kept exactly
// (seconds and nanoseconds; the zero time round-trips) and come back in UTC.
// The fields are stored back to back in bytes[chunk][off:].
type tokenRec struct {
	secs          [nTimes]int64
	nsecs         [nTimes]int32
	lens          [nFields]uint32
	secretVersion int64
	duration      int64
	chunk, off    uint32
	flags         uint8
}

// recBytes is how many bytes of a chunk t's fields take.
func recBytes(t *tokens.ServiceToken) int {
	return len(t.ID) + len(t.ClientID) + len(t.Name) + len(t.SecretDigest) + len(t.PreviousSecretDigest)
}

// field returns field f (a string one) of the record.
func (r *tokenRec) field(bytes [][]byte, f int) string {
	off := r.off
	for i := range f {
		off += r.lens[i]
	}
	if r.lens[f] == 0 {
		return ""
	}
	return unsafe.String(&bytes[r.chunk][off], r.lens[f])
}

// fill sets every field of dst from the record; dst's strings and digests
// point into bytes.
func (r *tokenRec) fill(bytes [][]byte, dst *tokens.ServiceToken) {
	b := bytes[r.chunk][r.off:]
	var fields [nFields][]byte
	for i, n := range r.lens {
		fields[i], b = b[:n:n], b[n:]
	}
	str := func(v []byte) string {
		if len(v) == 0 {
			return ""
		}
		return unsafe.String(&v[0], len(v))
	}
	bs := func(v []byte) []byte {
		if len(v) == 0 {
			return nil
		}
		return v
	}
	tm := func(i int) time.Time { return time.Unix(r.secs[i], int64(r.nsecs[i])).UTC() }
	*dst = tokens.ServiceToken{
		ID:                      str(fields[fID]),
		Name:                    str(fields[fName]),
		ClientID:                str(fields[fClientID]),
		SecretDigest:            bs(fields[fDigest]),
		SecretVersion:           r.secretVersion,
		PreviousSecretDigest:    bs(fields[fPrevDigest]),
		PreviousSecretExpiresAt: tm(tPrevExpires),
		Enabled:                 r.flags&flagEnabled != 0,
		CreatedAt:               tm(tCreated),
		UpdatedAt:               tm(tUpdated),
		ExpiresAt:               tm(tExpires),
		Duration:                tokens.Duration(r.duration),
		LastSeenAt:              tm(tLastSeen),
		Imported:                r.flags&flagImported != 0,
	}
}

// tokenStore holds the records and bytes of a snapshot and of the snapshots
// Apply derives from it. It only grows: a record is written once, when it is
// added, at a place no published snapshot refers to yet; chunks are
// allocated at their full length and never resized, and the chunk lists are
// only appended to; a snapshot reads only the records its indexes refer to,
// through chunk lists captured under mu after those records were written
// (so readers need no lock). Replaced and deleted records stay until a
// rebuild (garbage) moves the live ones to a new store.
type tokenStore struct {
	mu    sync.Mutex
	recs  [][]tokenRec
	bytes [][]byte
	cur   int    // the record chunk being filled
	fill  int    // records used in recs[cur]
	used  int    // bytes used in the last byte chunk
	nrec  uint32 // records added
}

// newTokenStore returns a store with room for n records of size bytes.
func newTokenStore(n, size int) *tokenStore {
	st := &tokenStore{}
	if size > 0 {
		st.bytes = append(st.bytes, make([]byte, size))
	}
	for n > 0 {
		c := min(n, maxRecChunk)
		st.recs = append(st.recs, make([]tokenRec, c))
		n -= c
	}
	return st
}

// add copies t into the store and returns its reference. The caller holds mu.
func (st *tokenStore) add(t *tokens.ServiceToken) ref {
	need := recBytes(t)
	if len(st.bytes) == 0 || st.used+need > len(st.bytes[len(st.bytes)-1]) {
		size := minByteChunk
		if len(st.bytes) > 0 {
			size = min(2*len(st.bytes[len(st.bytes)-1]), maxByteChunk)
		}
		st.bytes = append(st.bytes, make([]byte, max(size, need)))
		st.used = 0
	}
	chunk := len(st.bytes) - 1
	rec := tokenRec{chunk: uint32(chunk), off: uint32(st.used), secretVersion: t.SecretVersion, duration: int64(t.Duration)}
	b := st.bytes[chunk][st.used:]
	for i, v := range [nFields][]byte{
		fID: unsafe.Slice(unsafe.StringData(t.ID), len(t.ID)), fClientID: unsafe.Slice(unsafe.StringData(t.ClientID), len(t.ClientID)),
		fName: unsafe.Slice(unsafe.StringData(t.Name), len(t.Name)), fDigest: t.SecretDigest, fPrevDigest: t.PreviousSecretDigest,
	} {
		rec.lens[i] = uint32(copy(b, v))
		b = b[len(v):]
	}
	st.used += need
	for i, tm := range [nTimes]time.Time{
		tCreated: t.CreatedAt, tUpdated: t.UpdatedAt, tExpires: t.ExpiresAt, tLastSeen: t.LastSeenAt, tPrevExpires: t.PreviousSecretExpiresAt,
	} {
		rec.secs[i], rec.nsecs[i] = tm.Unix(), int32(tm.Nanosecond())
	}
	if t.Enabled {
		rec.flags |= flagEnabled
	}
	if t.Imported {
		rec.flags |= flagImported
	}
	for st.cur < len(st.recs) && st.fill == len(st.recs[st.cur]) {
		st.cur, st.fill = st.cur+1, 0
	}
	if st.cur == len(st.recs) {
		size := minRecChunk
		if st.cur > 0 {
			size = min(2*len(st.recs[st.cur-1]), maxRecChunk)
		}
		st.recs = append(st.recs, make([]tokenRec, size))
	}
	st.recs[st.cur][st.fill] = rec
	st.fill++
	st.nrec++
	return ref(st.cur<<refShift | (st.fill - 1))
}

// garbage reports whether the replaced and deleted records in the store
// amount to more than a quarter of the live ones (plus some slack, so that
// small sets are not rebuilt on every write). A rebuild costs one
// NewSnapshot (about a second with a million tokens, on the writer's
// goroutine), so with a million tokens one comes every 250,000 writes.
func (st *tokenStore) garbage(live uint32) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.nrec > live+live/4+4096
}
