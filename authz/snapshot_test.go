package authz

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

func mkTokens(tb testing.TB, n int) []*tokens.ServiceToken {
	tb.Helper()
	out := make([]*tokens.ServiceToken, n)
	for i := range out {
		t, _, err := tokens.New(fmt.Sprintf("tok-%d", i), tokens.Forever, t0)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = t
	}
	return out
}

// normal returns a copy of t with its times in the form the snapshot gives
// them back (UTC, no monotonic reading), for reflect.DeepEqual.
func normal(t *tokens.ServiceToken) tokens.ServiceToken {
	c := *t.Clone()
	for _, tm := range []*time.Time{&c.CreatedAt, &c.UpdatedAt, &c.ExpiresAt, &c.LastSeenAt, &c.PreviousSecretExpiresAt} {
		*tm = tm.UTC().Round(0)
	}
	return c
}

// sameToken: the snapshot keeps copies, so tokens from it are compared by
// value.
func sameToken(a, b *tokens.ServiceToken) bool {
	return a != nil && b != nil && reflect.DeepEqual(normal(a), normal(b))
}

func sameMap[M any](a, b M) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func clientShard(tb testing.TB, clientID string) int {
	k, ok := clientKey(clientID)
	if !ok {
		tb.Fatalf("client id %q is not canonical", clientID)
	}
	return k.shard()
}

func idShard(tb testing.TB, id string) int {
	k, ok := idKey(id)
	if !ok {
		tb.Fatalf("id %q is not canonical", id)
	}
	return k.shard()
}

func TestSnapshotLookups(t *testing.T) {
	toks := mkTokens(t, 1000)
	s := NewSnapshot(toks, nil, nil)
	if s.Len() != 1000 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, tok := range toks {
		if !sameToken(s.TokenByClientID(tok.ClientID), tok) || !sameToken(s.TokenByID(tok.ID), tok) {
			t.Fatalf("token %s not found", tok.Name)
		}
		var got tokens.ServiceToken
		if !s.lookupClientID(tok.ClientID, &got) || !sameToken(&got, tok) {
			t.Fatalf("lookupClientID(%s) = %+v", tok.Name, got)
		}
		if !s.lookupID(tok.ID, &got) || !sameToken(&got, tok) {
			t.Fatalf("lookupID(%s) = %+v", tok.Name, got)
		}
	}
	for _, key := range []string{"nope", "", toks[0].ClientID[:32], strings.ToUpper(toks[0].ClientID), strings.ToUpper(toks[0].ID),
		"ffffffffffffffffffffffffffffffff.access", "00000000-0000-4000-8000-000000000000"} {
		if s.TokenByClientID(key) != nil || s.TokenByID(key) != nil {
			t.Errorf("unknown key %q found", key)
		}
	}
	var zero Snapshot
	if zero.TokenByClientID("x") != nil || zero.TokenByID(toks[0].ID) != nil {
		t.Error("zero Snapshot finds a token")
	}
	if z := zero.Apply(toks[:1], nil); !sameToken(z.TokenByID(toks[0].ID), toks[0]) || z.Len() != 1 {
		t.Error("Apply on a zero Snapshot lost the token")
	}
}

// TestSnapshotRoundTrip: every field of a token comes back exactly, the
// times as the same instants in UTC, including zero and extreme ones.
func TestSnapshotRoundTrip(t *testing.T) {
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	old := time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	tok := &tokens.ServiceToken{
		ID: "0b6d3a4e-1c2f-4a5b-8c7d-9e0f1a2b3c4d", Name: "ünïcode name ✓", ClientID: "0123456789abcdef0123456789abcdef.access",
		SecretDigest: []byte{1, 2, 3}, SecretVersion: 7, PreviousSecretDigest: []byte{4, 5},
		PreviousSecretExpiresAt: far, Enabled: true,
		CreatedAt: old, UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)),
		ExpiresAt: time.Date(1960, 1, 1, 0, 0, 0, 5, time.UTC), Duration: tokens.Duration(time.Hour), Imported: true,
	}
	s := NewSnapshot([]*tokens.ServiceToken{tok}, nil, nil)
	got := s.TokenByID(tok.ID)
	if !sameToken(got, tok) {
		t.Fatalf("got  %+v\nwant %+v", normal(got), normal(tok))
	}
	for _, tm := range []time.Time{got.CreatedAt, got.UpdatedAt, got.ExpiresAt, got.LastSeenAt, got.PreviousSecretExpiresAt} {
		if tm.Location() != time.UTC {
			t.Errorf("time %v not in UTC", tm)
		}
	}
	if !got.LastSeenAt.IsZero() || got.LastSeenAt != (time.Time{}) {
		t.Errorf("zero LastSeenAt came back as %#v", got.LastSeenAt)
	}
	// Empty strings and digests come back empty (nil digests).
	bare := &tokens.ServiceToken{ID: "bare"}
	s = s.Apply([]*tokens.ServiceToken{bare}, nil)
	if got := s.TokenByID("bare"); got == nil || got.SecretDigest != nil || got.Name != "" || got.ClientID != "" {
		t.Errorf("bare token = %+v", got)
	}
}

// TestSnapshotRecordsHaveNoPointers: the point of the layout. The record,
// the index maps' keys and values and the byte chunks must stay free of
// pointers, or the garbage collector scans a million of them again.
func TestSnapshotRecordsHaveNoPointers(t *testing.T) {
	var hasPointers func(reflect.Type) bool
	hasPointers = func(t reflect.Type) bool {
		switch t.Kind() {
		case reflect.Array:
			return hasPointers(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if hasPointers(t.Field(i).Type) {
					return true
				}
			}
			return false
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
			return true
		default:
			return false
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[tokenRec](), reflect.TypeFor[key16](), reflect.TypeFor[ref]()} {
		if hasPointers(typ) {
			t.Errorf("%v holds pointers", typ)
		}
	}
	if typ := reflect.TypeFor[refShard](); hasPointers(typ.Key()) || hasPointers(typ.Elem()) {
		t.Errorf("%v has pointers in its entries", typ)
	}
}

// TestNewSnapshotCopies: the snapshot holds its own copies, equal to what it
// was given and independent of it.
func TestNewSnapshotCopies(t *testing.T) {
	toks := mkTokens(t, 100)
	toks[7].PreviousSecretDigest = []byte{1, 2, 3}
	want := make([]tokens.ServiceToken, len(toks))
	for i, tok := range toks {
		want[i] = normal(tok)
	}
	s := NewSnapshot(append(toks, nil), nil, nil)
	if s.Len() != len(toks) {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, tok := range toks {
		// The caller's token may change afterwards without touching the
		// snapshot.
		tok.Name = "changed"
		tok.SecretDigest[0] ^= 0xff
	}
	for i := range toks {
		if got := s.TokenByID(want[i].ID); !reflect.DeepEqual(normal(got), want[i]) {
			t.Fatalf("token %d changed with the caller's copy", i)
		}
	}
	// What TokenByID returns is the caller's to change, too.
	got := s.TokenByID(want[3].ID)
	got.SecretDigest[0] ^= 0xff
	if again := s.TokenByID(want[3].ID); !reflect.DeepEqual(normal(again), want[3]) {
		t.Error("changing a returned token changed the snapshot")
	}
	if NewSnapshot(nil, nil, nil).Len() != 0 || NewSnapshot([]*tokens.ServiceToken{nil}, nil, nil).Len() != 0 {
		t.Error("empty snapshots")
	}
}

func TestSnapshotApplyCopiesOnlyTouchedShards(t *testing.T) {
	toks := mkTokens(t, 2000)
	s1 := NewSnapshot(toks, nil, nil)

	added := mkTokens(t, 1)[0]
	changed := toks[1].Clone()
	changed.Name = "renamed"
	s2 := s1.Apply([]*tokens.ServiceToken{added, changed}, []string{toks[0].ID, "no-such-id"})

	// s2 has the change.
	if s2.Len() != 2000 { // +1 added, -1 deleted
		t.Errorf("Len = %d, want 2000", s2.Len())
	}
	if s2.TokenByID(toks[0].ID) != nil || s2.TokenByClientID(toks[0].ClientID) != nil {
		t.Error("deleted token still there")
	}
	if !sameToken(s2.TokenByID(added.ID), added) || !sameToken(s2.TokenByClientID(added.ClientID), added) {
		t.Error("added token missing")
	}
	if s2.TokenByClientID(changed.ClientID).Name != "renamed" {
		t.Error("replaced token not replaced")
	}
	// s1 is untouched.
	if s1.Len() != 2000 || !sameToken(s1.TokenByID(toks[0].ID), toks[0]) || s1.TokenByID(added.ID) != nil ||
		!sameToken(s1.TokenByClientID(changed.ClientID), toks[1]) {
		t.Error("Apply modified the original snapshot")
	}
	// Only the touched shards were copied.
	touchedC := map[int]bool{clientShard(t, toks[0].ClientID): true, clientShard(t, added.ClientID): true, clientShard(t, changed.ClientID): true}
	touchedI := map[int]bool{idShard(t, toks[0].ID): true, idShard(t, added.ID): true, idShard(t, changed.ID): true}
	for i := range shardCount {
		if got := !sameMap(s1.byClientID[i], s2.byClientID[i]); got != touchedC[i] {
			t.Errorf("client-id shard %d copied = %v, want %v", i, got, touchedC[i])
		}
		if got := !sameMap(s1.byID[i], s2.byID[i]); got != touchedI[i] {
			t.Errorf("id shard %d copied = %v, want %v", i, got, touchedI[i])
		}
	}
}

func TestSnapshotApplyClientIDChange(t *testing.T) {
	toks := mkTokens(t, 2)
	s := NewSnapshot(toks, nil, nil)
	moved := toks[0].Clone()
	moved.ClientID = "ffffffffffffffffffffffffffffffff.access"
	s2 := s.Apply([]*tokens.ServiceToken{moved}, nil)
	if s2.TokenByClientID(toks[0].ClientID) != nil || !sameToken(s2.TokenByClientID(moved.ClientID), moved) || s2.Len() != 2 {
		t.Error("client id change not reflected")
	}
	// Put then delete in one change: deleted.
	s3 := s.Apply([]*tokens.ServiceToken{moved}, []string{moved.ID})
	if s3.TokenByID(moved.ID) != nil || s3.TokenByClientID(moved.ClientID) != nil || s3.Len() != 1 {
		t.Error("a token put and deleted in one change survived")
	}
}

// TestSnapshotApplySameTokenTwice: one change that puts two versions of a
// token keeps the last, even when the first lands in a new chunk.
func TestSnapshotApplySameTokenTwice(t *testing.T) {
	for _, n := range []int{0, 1, minRecChunk, maxRecChunk} {
		toks := mkTokens(t, n+1)
		s := NewSnapshot(toks[:n], nil, nil)
		v1, v2 := toks[n].Clone(), toks[n].Clone()
		v2.Name, v2.ClientID = "second", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.access"
		s2 := s.Apply([]*tokens.ServiceToken{v1, v2}, nil)
		if s2.Len() != n+1 || !sameToken(s2.TokenByID(v1.ID), v2) || s2.TokenByClientID(v1.ClientID) != nil || !sameToken(s2.TokenByClientID(v2.ClientID), v2) {
			t.Errorf("%d tokens before: got %+v", n, s2.TokenByID(v1.ID))
		}
	}
}

// TestSnapshotOddKeys: ids and client ids outside the canonical forms the
// 16-byte keys decode (the server never makes them, a restored or hand-made
// store might hold them) are indexed exactly too, and never confused with
// canonical ones that decode alike.
func TestSnapshotOddKeys(t *testing.T) {
	toks := mkTokens(t, 3)
	odd := toks[0].Clone()
	odd.ID, odd.ClientID = strings.ToUpper(toks[1].ID), strings.ToUpper(toks[1].ClientID)
	s := NewSnapshot([]*tokens.ServiceToken{odd, toks[1], toks[2]}, nil, nil)
	if s.Len() != 3 || !sameToken(s.TokenByID(odd.ID), odd) || !sameToken(s.TokenByClientID(odd.ClientID), odd) ||
		!sameToken(s.TokenByID(toks[1].ID), toks[1]) || !sameToken(s.TokenByClientID(toks[1].ClientID), toks[1]) {
		t.Fatal("odd and canonical keys confused")
	}
	seen := 0
	s.ForEachToken(func(*tokens.ServiceToken) bool { seen++; return true })
	if seen != 3 {
		t.Errorf("ForEachToken saw %d tokens", seen)
	}
	// Changing the odd token's client id to a canonical one and back.
	moved := odd.Clone()
	moved.ClientID = toks[0].ClientID
	s2 := s.Apply([]*tokens.ServiceToken{moved}, nil)
	if s2.TokenByClientID(odd.ClientID) != nil || !sameToken(s2.TokenByClientID(moved.ClientID), moved) || s.TokenByClientID(moved.ClientID) != nil {
		t.Error("odd → canonical client id")
	}
	s3 := s2.Apply(nil, []string{odd.ID})
	if s3.TokenByID(odd.ID) != nil || s3.TokenByClientID(moved.ClientID) != nil || s3.Len() != 2 || !sameToken(s2.TokenByID(odd.ID), moved) {
		t.Error("deleting the odd token")
	}
}

// TestSnapshotApplyBranches: two snapshots derived from the same one share
// its store; neither may see, or overwrite, the other's tokens.
func TestSnapshotApplyBranches(t *testing.T) {
	toks := mkTokens(t, 10)
	base := NewSnapshot(toks, nil, nil)
	a1, b1 := toks[0].Clone(), toks[0].Clone()
	a1.Name, b1.Name = "branch-a", "branch-b"
	a := base.Apply([]*tokens.ServiceToken{a1}, nil)
	b := base.Apply([]*tokens.ServiceToken{b1}, nil)
	extra := mkTokens(t, 2)
	a = a.Apply(extra[:1], nil)
	b = b.Apply(extra[1:], nil)
	if a.TokenByID(toks[0].ID).Name != "branch-a" || b.TokenByID(toks[0].ID).Name != "branch-b" || base.TokenByID(toks[0].ID).Name != toks[0].Name {
		t.Error("branches overwrote each other")
	}
	if a.TokenByID(extra[1].ID) != nil || b.TokenByID(extra[0].ID) != nil || !sameToken(a.TokenByID(extra[0].ID), extra[0]) || !sameToken(b.TokenByID(extra[1].ID), extra[1]) {
		t.Error("a branch sees the other's token")
	}
}

// TestSnapshotRebuild: replaced and deleted records are dropped once they
// pile up; the snapshots before and after hold what they should.
func TestSnapshotRebuild(t *testing.T) {
	toks := mkTokens(t, 100)
	s := NewSnapshot(toks, nil, nil)
	first := s
	rebuilt := 0
	for i := range 10_000 {
		tok := toks[i%len(toks)].Clone()
		tok.SecretVersion = int64(i)
		next := s.Apply([]*tokens.ServiceToken{tok}, nil)
		if next.store != s.store {
			rebuilt++
		}
		s = next
	}
	if rebuilt == 0 || rebuilt > 3 {
		t.Errorf("%d rebuilds in 10,000 writes to 100 tokens", rebuilt)
	}
	if s.store.nrec > 100+100/4+4096 {
		t.Errorf("store holds %d records for 100 tokens", s.store.nrec)
	}
	for i, tok := range toks {
		if got := s.TokenByID(tok.ID); got == nil || got.SecretVersion != int64(10_000-100+i) {
			t.Fatalf("token %d after rebuilds: %+v", i, got)
		}
		if !sameToken(first.TokenByID(tok.ID), tok) {
			t.Fatalf("the first snapshot lost token %d", i)
		}
	}
}

// TestSnapshotConcurrentReaders: lookups in published snapshots while a
// writer derives new ones from the same store (run with -race).
func TestSnapshotConcurrentReaders(t *testing.T) {
	toks := mkTokens(t, 500)
	var cur sync.Map
	s := NewSnapshot(toks, nil, nil)
	cur.Store("s", s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var got tokens.ServiceToken
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v, _ := cur.Load("s")
				snap := v.(*Snapshot)
				tok := toks[i%len(toks)]
				if !snap.lookupClientID(tok.ClientID, &got) || got.ID != tok.ID || got.ClientID != tok.ClientID {
					t.Errorf("lookup of %s: %+v", tok.Name, got)
					return
				}
			}
		})
	}
	for i := range 6000 {
		tok := toks[i%len(toks)].Clone()
		tok.Name = fmt.Sprintf("v%d", i)
		s = s.Apply([]*tokens.ServiceToken{tok}, nil)
		cur.Store("s", s)
	}
	close(stop)
	wg.Wait()
}

func TestSnapshotWith(t *testing.T) {
	toks := mkTokens(t, 3)
	s := NewSnapshot(toks, nil, nil)
	ks := keySet(t, testKey(t, tokens.AlgES256, 0))
	s2 := s.WithKeys(ks)
	if s2.Keys() != ks || s.Keys() != nil || !sameToken(s2.TokenByID(toks[2].ID), toks[2]) {
		t.Error("WithKeys")
	}
	s3 := s2.WithEngine(nil)
	if s3.Keys() != ks || s3.Engine() != nil {
		t.Error("WithEngine")
	}
}

func BenchmarkSnapshotApplyOne(b *testing.B) {
	s := NewSnapshot(mkTokens(b, 100_000), nil, nil)
	one := mkTokens(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		s = s.Apply(one, nil)
	}
}

// BenchmarkTokenByClientID: the lookup a service-token Check makes, in a
// 100k-token snapshot, for a hit and for an unknown client id (the two
// must cost alike: see also BenchmarkDenyUnknownClientID).
func BenchmarkTokenByClientID(b *testing.B) {
	toks := mkTokens(b, 100_000)
	s := NewSnapshot(toks, nil, nil)
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		var tok tokens.ServiceToken
		for b.Loop() {
			if !s.lookupClientID(toks[i%len(toks)].ClientID, &tok) {
				b.Fatal("miss")
			}
			i += 7919
		}
	})
	b.Run("unknown", func(b *testing.B) {
		const unknown = "ffffffffffffffffffffffffffffffff.access"
		b.ReportAllocs()
		var tok tokens.ServiceToken
		for b.Loop() {
			if s.lookupClientID(unknown, &tok) {
				b.Fatal("hit")
			}
		}
	})
}
