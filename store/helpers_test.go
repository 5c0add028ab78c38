package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// t0 is the tests' fixed clock: UTC and without a monotonic reading, so
// records compare equal after a JSON round trip.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fast opens a store for tests that are not about durability.
var fast = Options{NoSync: true}

func openTest(t testing.TB, opts Options) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), FileName), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testID(kind byte, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8%03x-%012x", i, kind, i)
}

func newToken(i int) *tokens.ServiceToken {
	return &tokens.ServiceToken{
		ID:            testID(1, i),
		Name:          fmt.Sprintf("token-%d", i),
		ClientID:      fmt.Sprintf("%032x.access", i),
		SecretDigest:  bytes.Repeat([]byte{byte(i)}, 32),
		SecretVersion: 1,
		Enabled:       true,
		CreatedAt:     t0,
		UpdatedAt:     t0,
		ExpiresAt:     t0.Add(8760 * time.Hour),
		Duration:      tokens.DefaultDuration,
	}
}

func newApp(i int) *policy.Application {
	return &policy.Application{
		ID:              testID(2, i),
		Name:            fmt.Sprintf("app-%d", i),
		Domains:         []string{fmt.Sprintf("app%d.example.com", i), fmt.Sprintf("*.app%d.example.com/api", i)},
		AUD:             fmt.Sprintf("%064x", i),
		SessionDuration: 24 * time.Hour,
		SessionCookie:   true,
		CreatedAt:       t0,
		UpdatedAt:       t0,
	}
}

func newPolicy(i int, appID, tokenID string) *policy.Policy {
	return &policy.Policy{
		ID:            testID(3, i),
		ApplicationID: appID,
		Name:          fmt.Sprintf("policy-%d", i),
		Decision:      policy.NonIdentity,
		Precedence:    i,
		Include:       []policy.Rule{{ServiceToken: &policy.ServiceTokenRule{TokenID: tokenID}}},
		Exclude:       []policy.Rule{{IP: &policy.IPRule{IP: "10.0.0.0/8"}}},
		CreatedAt:     t0,
		UpdatedAt:     t0,
	}
}

func newSealedKey(i int) *tokens.SealedKey {
	return &tokens.SealedKey{
		KID:       fmt.Sprintf("%064x", i),
		Alg:       "ES256",
		Sealed:    []byte(fmt.Sprintf("sealed-%d", i)),
		CertDER:   []byte(fmt.Sprintf("cert-%d", i)),
		CreatedAt: t0.Add(time.Duration(i) * time.Hour),
	}
}

func newAdminKey(i int) *AdminKey {
	return &AdminKey{
		ID:        testID(4, i),
		Name:      fmt.Sprintf("admin-%d", i),
		Digest:    bytes.Repeat([]byte{byte(100 + i)}, 32),
		CreatedAt: t0.Add(time.Duration(i) * time.Minute),
	}
}

// changeLog is a subscriber that keeps every Change it is given.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
}

func (l *changeLog) all() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Change(nil), l.changes...)
}

func (l *changeLog) last(t *testing.T) Change {
	t.Helper()
	all := l.all()
	if len(all) == 0 {
		t.Fatal("no change delivered")
	}
	return all[len(all)-1]
}

func subscribe(db *DB) *changeLog {
	l := &changeLog{}
	db.Subscribe(l.add)
	return l
}

func mustUpdate(t testing.TB, db *DB, fn func(*Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustLoad(t testing.TB, db *DB) *State {
	t.Helper()
	st, err := db.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}
