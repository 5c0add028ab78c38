package authz

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

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

// sameToken: NewSnapshot keeps copies (compact), so tokens from it are
// compared by value.
func sameToken(a, b *tokens.ServiceToken) bool {
	return a != nil && b != nil && reflect.DeepEqual(*a, *b)
}

func sameMap(a, b tokenShard) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestSnapshotLookups(t *testing.T) {
	toks := mkTokens(t, 1000)
	s := NewSnapshot(toks, nil, nil)
	if s.Len() != 1000 {
		t.Fatalf("Len = %d", s.Len())
	}
	for _, tok := range toks {
		if !sameToken(s.TokenByClientID(tok.ClientID), tok) || s.TokenByID(tok.ID) != s.TokenByClientID(tok.ClientID) {
			t.Fatalf("token %s not found", tok.Name)
		}
	}
	if s.TokenByClientID("nope") != nil || s.TokenByID("nope") != nil {
		t.Error("unknown key found")
	}
	var zero Snapshot
	if zero.TokenByClientID("x") != nil {
		t.Error("zero Snapshot finds a token")
	}
	if z := zero.Apply(toks[:1], nil); z.TokenByID(toks[0].ID) != toks[0] {
		t.Error("Apply on a zero Snapshot lost the token")
	}
}

// TestNewSnapshotCompacts: the snapshot holds its own copies, laid out in
// one block and one arena, equal to what it was given and independent of
// it.
func TestNewSnapshotCompacts(t *testing.T) {
	toks := mkTokens(t, 100)
	toks[7].PreviousSecretDigest = []byte{1, 2, 3}
	want := make([]tokens.ServiceToken, len(toks))
	for i, tok := range toks {
		want[i] = *tok.Clone()
	}
	s := NewSnapshot(append(toks, nil), nil, nil)
	if s.Len() != len(toks) {
		t.Fatalf("Len = %d", s.Len())
	}
	first := s.TokenByID(toks[0].ID)
	for i, tok := range toks {
		got := s.TokenByID(tok.ID)
		if got == tok || !reflect.DeepEqual(*got, want[i]) {
			t.Fatalf("token %d: %p %+v, want a copy of %+v", i, got, got, want[i])
		}
		if got != first && (uintptr(unsafe.Pointer(got))-uintptr(unsafe.Pointer(first)))%unsafe.Sizeof(*got) != 0 {
			t.Errorf("token %d is not in the block", i)
		}
		// The caller's token may change afterwards without touching the
		// snapshot.
		tok.Name = "changed"
		tok.SecretDigest[0] ^= 0xff
	}
	for i := range toks {
		if got := s.TokenByID(want[i].ID); !reflect.DeepEqual(*got, want[i]) {
			t.Fatalf("token %d changed with the caller's copy", i)
		}
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
	if s2.TokenByID(added.ID) != added || s2.TokenByClientID(added.ClientID) != added {
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
	touchedC := map[int]bool{shardOf(toks[0].ClientID): true, shardOf(added.ClientID): true, shardOf(changed.ClientID): true}
	touchedI := map[int]bool{shardOf(toks[0].ID): true, shardOf(added.ID): true, shardOf(changed.ID): true}
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
	if s2.TokenByClientID(toks[0].ClientID) != nil || s2.TokenByClientID(moved.ClientID) != moved || s2.Len() != 2 {
		t.Error("client id change not reflected")
	}
	// Put then delete in one change: deleted.
	s3 := s.Apply([]*tokens.ServiceToken{moved}, []string{moved.ID})
	if s3.TokenByID(moved.ID) != nil || s3.TokenByClientID(moved.ClientID) != nil || s3.Len() != 1 {
		t.Error("a token put and deleted in one change survived")
	}
}

func TestSnapshotWith(t *testing.T) {
	toks := mkTokens(t, 3)
	s := NewSnapshot(toks, nil, nil)
	ks := keySet(t, testKey(t, tokens.AlgES256, 0))
	s2 := s.WithKeys(ks)
	if s2.Keys() != ks || s.Keys() != nil || s2.TokenByID(toks[2].ID) != s.TokenByID(toks[2].ID) || !sameToken(s2.TokenByID(toks[2].ID), toks[2]) {
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
		s.Apply(one, nil)
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
		for b.Loop() {
			if s.TokenByClientID(toks[i%len(toks)].ClientID) == nil {
				b.Fatal("miss")
			}
			i += 7919
		}
	})
	b.Run("unknown", func(b *testing.B) {
		const unknown = "ffffffffffffffffffffffffffffffff.access"
		b.ReportAllocs()
		for b.Loop() {
			if s.TokenByClientID(unknown) != nil {
				b.Fatal("hit")
			}
		}
	})
}
