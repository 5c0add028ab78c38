package authz

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	lastSeenShards = 64
	// lastSeenResolution: a token seen again within this interval is not
	// re-recorded, so parallel Checks of one busy token do not keep writing
	// the same cache line.
	lastSeenResolution = time.Second
)

type seenShard struct {
	mu sync.RWMutex
	m  map[string]*atomic.Int64 // token id → unix nanoseconds
	_  [40]byte
}

// lastSeen records when each token last authenticated, for the flusher that
// writes it to the store off the hot path. Recording an already-seen token
// takes a read lock and an atomic store, and allocates nothing.
type lastSeen struct {
	shards [lastSeenShards]seenShard
}

func newLastSeen() *lastSeen {
	l := &lastSeen{}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*atomic.Int64)
	}
	return l
}

func (l *lastSeen) touch(id string, now time.Time) {
	ns := now.UnixNano()
	sh := &l.shards[shardOf(id)%lastSeenShards]
	sh.mu.RLock()
	p := sh.m[id]
	sh.mu.RUnlock()
	if p != nil {
		if ns-p.Load() >= int64(lastSeenResolution) {
			p.Store(ns)
		}
		return
	}
	sh.mu.Lock()
	if p = sh.m[id]; p == nil {
		p = new(atomic.Int64)
		sh.m[strings.Clone(id)] = p // id may point into a snapshot's chunks
	}
	sh.mu.Unlock()
	if ns > p.Load() {
		p.Store(ns)
	}
}

// drain returns everything recorded since the previous drain and forgets it.
// A touch racing with the drain of its shard may be lost; the token's next
// Check records it again.
func (l *lastSeen) drain() map[string]time.Time {
	out := make(map[string]time.Time)
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		m := sh.m
		sh.m = make(map[string]*atomic.Int64, len(m))
		sh.mu.Unlock()
		for id, p := range m {
			out[id] = time.Unix(0, p.Load()).UTC()
		}
	}
	return out
}
