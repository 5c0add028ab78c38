package authz

import (
	"hash/maphash"
	"maps"
	"unsafe"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// shardCount is the number of copy-on-write token shards. With a million
// tokens a write copies one shard of ~500 entries (per index) instead of
// the whole map. (256 shards of ~4k entries made the copy 20 % of the CPU
// under 100 token writes a second: docs/performance.md.)
const shardCount = 2048

// shardSeed spreads keys over shards. It is fixed for the process so that
// every Snapshot derived from another agrees on where a key lives.
var shardSeed = maphash.MakeSeed()

func shardOf(key string) int {
	return int(maphash.String(shardSeed, key) % shardCount)
}

type tokenShard map[string]*tokens.ServiceToken

// Snapshot is the immutable state a Check reads: service tokens indexed by
// client id and by id, the compiled application/policy engine and the
// signing keys. A new Snapshot is derived with Apply, WithEngine or WithKeys
// and published with Server.Publish; readers never see a partial update.
//
// Tokens handed to NewSnapshot or Apply belong to the Snapshot from then on:
// callers must not modify them (pass a Clone).
type Snapshot struct {
	byClientID [shardCount]tokenShard
	byID       [shardCount]tokenShard
	n          int
	engine     *policy.Engine
	keys       *tokens.KeySet
	// headers are the engine's custom credential header names
	// (ServiceTokenHeader): the CheckRequest decoder keeps them.
	headers *headerNames
}

// NewSnapshot builds a Snapshot. eng and keys may be nil: with no engine no
// application matches; with no keys no JWT can be minted or verified.
//
// The tokens are copied into one block, their strings and digests into one
// byte arena (compact): a million tokens decoded from the store are some six
// million small heap objects, and marking them was most of the garbage
// collector's work, which every Check paid for. The Snapshot keeps the
// copies; the tokens passed in are not retained.
func NewSnapshot(toks []*tokens.ServiceToken, eng *policy.Engine, keys *tokens.KeySet) *Snapshot {
	s := &Snapshot{engine: eng, keys: keys, headers: newHeaderNames(eng)}
	toks = compact(toks)
	hint := len(toks)/shardCount + 1
	for i := range s.byClientID {
		s.byClientID[i] = make(tokenShard, hint)
		s.byID[i] = make(tokenShard, hint)
	}
	for _, t := range toks {
		if t == nil {
			continue
		}
		s.put(t)
	}
	return s
}

// compact returns copies of toks (nil entries dropped) that live in one
// slice of structs, with every string and digest in one byte arena. The
// arena is sized exactly first, so appending never moves it and the strings
// handed out (unsafe.String) stay valid; nothing writes to it afterwards.
// A copy that a later Apply replaces or deletes stays in the block until
// every copy of the load is gone: the block is bounded by the loaded set.
func compact(toks []*tokens.ServiceToken) []*tokens.ServiceToken {
	n, size := 0, 0
	for _, t := range toks {
		if t != nil {
			n++
			size += len(t.ID) + len(t.Name) + len(t.ClientID) + len(t.SecretDigest) + len(t.PreviousSecretDigest)
		}
	}
	if n == 0 {
		return nil
	}
	block := make([]tokens.ServiceToken, n)
	arena := make([]byte, 0, size)
	str := func(v string) string {
		if v == "" {
			return ""
		}
		start := len(arena)
		arena = append(arena, v...)
		return unsafe.String(&arena[start], len(v))
	}
	bytes := func(v []byte) []byte {
		if v == nil {
			return nil
		}
		start := len(arena)
		arena = append(arena, v...)
		return arena[start:len(arena):len(arena)]
	}
	out := make([]*tokens.ServiceToken, 0, n)
	for _, t := range toks {
		if t == nil {
			continue
		}
		c := &block[len(out)]
		*c = *t
		c.ID, c.Name, c.ClientID = str(t.ID), str(t.Name), str(t.ClientID)
		c.SecretDigest, c.PreviousSecretDigest = bytes(t.SecretDigest), bytes(t.PreviousSecretDigest)
		out = append(out, c)
	}
	return out
}

// put inserts t into shards the caller owns.
func (s *Snapshot) put(t *tokens.ServiceToken) {
	ids := s.byID[shardOf(t.ID)]
	if old, ok := ids[t.ID]; ok {
		if old.ClientID != t.ClientID {
			delete(s.byClientID[shardOf(old.ClientID)], old.ClientID)
		}
	} else {
		s.n++
	}
	ids[t.ID] = t
	s.byClientID[shardOf(t.ClientID)][t.ClientID] = t
}

// Apply returns a Snapshot with put inserted or replaced (by id) and the
// tokens with ids in deleted removed; s itself is unchanged. Only the shards
// the change touches are copied. A token both put and deleted ends up
// deleted.
func (s *Snapshot) Apply(put []*tokens.ServiceToken, deleted []string) *Snapshot {
	ns := *s
	var ownC, ownI [shardCount]bool
	ownClient := func(key string) tokenShard {
		i := shardOf(key)
		if !ownC[i] {
			ns.byClientID[i] = cloneShard(ns.byClientID[i])
			ownC[i] = true
		}
		return ns.byClientID[i]
	}
	ownID := func(key string) tokenShard {
		i := shardOf(key)
		if !ownI[i] {
			ns.byID[i] = cloneShard(ns.byID[i])
			ownI[i] = true
		}
		return ns.byID[i]
	}
	for _, t := range put {
		if t == nil {
			continue
		}
		ids := ownID(t.ID)
		if old, ok := ids[t.ID]; ok {
			if old.ClientID != t.ClientID {
				delete(ownClient(old.ClientID), old.ClientID)
			}
		} else {
			ns.n++
		}
		ids[t.ID] = t
		ownClient(t.ClientID)[t.ClientID] = t
	}
	for _, id := range deleted {
		old, ok := ns.byID[shardOf(id)][id]
		if !ok {
			continue
		}
		delete(ownID(id), id)
		if cur := ns.byClientID[shardOf(old.ClientID)][old.ClientID]; cur == old {
			delete(ownClient(old.ClientID), old.ClientID)
		}
		ns.n--
	}
	return &ns
}

// cloneShard copies a shard (nil for a zero Snapshot) so it can be written.
func cloneShard(m tokenShard) tokenShard {
	if m == nil {
		return make(tokenShard)
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

// TokenByClientID returns the token with this client id, or nil.
func (s *Snapshot) TokenByClientID(clientID string) *tokens.ServiceToken {
	return s.byClientID[shardOf(clientID)][clientID]
}

// TokenByID returns the token with this id, or nil.
func (s *Snapshot) TokenByID(id string) *tokens.ServiceToken {
	return s.byID[shardOf(id)][id]
}

// ForEachToken calls fn with every token, in no particular order, until fn
// returns false. It walks the whole snapshot: for metrics and reports, never
// for the Check path. fn must not modify the tokens.
func (s *Snapshot) ForEachToken(fn func(*tokens.ServiceToken) bool) {
	for _, shard := range s.byID {
		for _, t := range shard {
			if !fn(t) {
				return
			}
		}
	}
}

// Len is the number of tokens.
func (s *Snapshot) Len() int { return s.n }

// Engine is the compiled application/policy engine (nil if none).
func (s *Snapshot) Engine() *policy.Engine { return s.engine }

// Keys is the signing key set (nil if none).
func (s *Snapshot) Keys() *tokens.KeySet { return s.keys }
