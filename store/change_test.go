package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestChangeContents(t *testing.T) {
	tok1, tok2 := newToken(1), newToken(2)
	app1 := newApp(1)
	pol1 := newPolicy(1, app1.ID, tok1.ID)
	tests := []struct {
		name  string
		setup func(*Tx) error // committed before, its change ignored
		op    func(*Tx) error
		want  Change // Rev is filled in
	}{{
		name: "put token",
		op:   func(tx *Tx) error { return tx.PutToken(tok1) },
		want: Change{Tokens: []*tokens.ServiceToken{tok1}},
	}, {
		name:  "delete token",
		setup: func(tx *Tx) error { return tx.PutToken(tok1) },
		op:    func(tx *Tx) error { return tx.DeleteToken(tok1.ID) },
		want:  Change{DeletedTokens: []string{tok1.ID}},
	}, {
		name:  "delete then put the same token ends as a put",
		setup: func(tx *Tx) error { return tx.PutToken(tok1) },
		op: func(tx *Tx) error {
			if err := tx.DeleteToken(tok1.ID); err != nil {
				return err
			}
			return tx.PutToken(tok1)
		},
		want: Change{Tokens: []*tokens.ServiceToken{tok1}},
	}, {
		name: "put then delete the same token ends as a delete",
		op: func(tx *Tx) error {
			if err := tx.PutToken(tok1); err != nil {
				return err
			}
			if err := tx.PutToken(tok2); err != nil {
				return err
			}
			return tx.DeleteToken(tok1.ID)
		},
		want: Change{Tokens: []*tokens.ServiceToken{tok2}, DeletedTokens: []string{tok1.ID}},
	}, {
		name: "two puts of one token keep the last",
		op: func(tx *Tx) error {
			first := newToken(1)
			first.Enabled = false
			if err := tx.PutToken(first); err != nil {
				return err
			}
			return tx.PutToken(tok1)
		},
		want: Change{Tokens: []*tokens.ServiceToken{tok1}},
	}, {
		name: "put app and policy",
		op: func(tx *Tx) error {
			if err := tx.PutApp(app1); err != nil {
				return err
			}
			return tx.PutPolicy(pol1)
		},
		want: Change{Apps: []*policy.Application{app1}, Policies: []*policy.Policy{pol1}},
	}, {
		name: "delete app cascades",
		setup: func(tx *Tx) error {
			if err := tx.PutApp(app1); err != nil {
				return err
			}
			return tx.PutPolicy(pol1)
		},
		op:   func(tx *Tx) error { return tx.DeleteApp(app1.ID) },
		want: Change{DeletedApps: []string{app1.ID}, DeletedPolicies: []string{pol1.ID}},
	}, {
		name:  "delete policy",
		setup: func(tx *Tx) error { return errors.Join(tx.PutApp(app1), tx.PutPolicy(pol1)) },
		op:    func(tx *Tx) error { return tx.DeletePolicy(pol1.ID) },
		want:  Change{DeletedPolicies: []string{pol1.ID}},
	}, {
		name: "put signing key",
		op:   func(tx *Tx) error { return tx.PutSigningKey(newSealedKey(1)) },
		want: Change{SigningKeysChanged: true},
	}, {
		name:  "delete signing key",
		setup: func(tx *Tx) error { return tx.PutSigningKey(newSealedKey(1)) },
		op:    func(tx *Tx) error { return tx.DeleteSigningKey(newSealedKey(1).KID) },
		want:  Change{SigningKeysChanged: true},
	}, {
		name: "admin key and audit only: empty change",
		op: func(tx *Tx) error {
			return errors.Join(tx.PutAdminKey(newAdminKey(1)), tx.AppendAudit(&AuditEvent{Time: t0}))
		},
		want: Change{},
	}, {
		name: "reads only: empty change",
		op:   func(tx *Tx) error { _, err := tx.Token(tok1.ID); return ignoreNotFound(err) },
		want: Change{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTest(t, fast)
			if tt.setup != nil {
				mustUpdate(t, db, tt.setup)
			}
			log := subscribe(db)
			mustUpdate(t, db, tt.op)
			all := log.all()
			if len(all) != 1 {
				t.Fatalf("got %d changes, want 1", len(all))
			}
			want := tt.want
			want.Rev = mustLoad(t, db).Rev
			if !reflect.DeepEqual(all[0], want) {
				t.Errorf("change =\n%+v\nwant\n%+v", all[0], want)
			}
			if all[0].Empty() != reflect.DeepEqual(tt.want, Change{}) {
				t.Errorf("Empty() = %v", all[0].Empty())
			}
		})
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func TestChangeRecordsAreCopies(t *testing.T) {
	db := openTest(t, fast)
	log := subscribe(db)
	tok, app := newToken(1), newApp(1)
	mustUpdate(t, db, func(tx *Tx) error { return errors.Join(tx.PutToken(tok), tx.PutApp(app)) })
	tok.SecretDigest[0] ^= 0xff
	app.Domains[0] = "changed.example.com"
	c := log.last(t)
	if c.Tokens[0].SecretDigest[0] == tok.SecretDigest[0] {
		t.Error("Change token shares SecretDigest with the caller's token")
	}
	if c.Apps[0].Domains[0] == "changed.example.com" {
		t.Error("Change app shares Domains with the caller's app")
	}
}

func TestRevisionMonotonic(t *testing.T) {
	db := openTest(t, fast)
	log := subscribe(db)
	for i := range 5 {
		mustUpdate(t, db, func(tx *Tx) error {
			if got := tx.Rev(); got != uint64(i) {
				t.Errorf("Tx.Rev inside update %d = %d", i, got)
			}
			return tx.PutToken(newToken(i))
		})
		if got := mustLoad(t, db).Rev; got != uint64(i+1) {
			t.Errorf("Load().Rev after %d updates = %d", i+1, got)
		}
	}
	for i, c := range log.all() {
		if c.Rev != uint64(i+1) {
			t.Errorf("change %d has rev %d", i, c.Rev)
		}
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	db := openTest(t, Options{}) // fsync on: this is about durability
	log := subscribe(db)
	boom := errors.New("boom")
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutToken(newToken(1)); err != nil {
			return err
		}
		if err := tx.PutApp(newApp(1)); err != nil {
			return err
		}
		return boom // midway: the token and app are already put
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic in fn did not propagate")
			}
		}()
		_ = db.Update(func(tx *Tx) error {
			if err := tx.PutToken(newToken(2)); err != nil {
				return err
			}
			panic("fn panics after a put")
		})
	}()
	if n := len(log.all()); n != 0 {
		t.Errorf("%d changes delivered for failed updates", n)
	}
	path := db.Path()
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := mustLoad(t, db)
	if st.Rev != 0 || len(st.Tokens) != 0 || len(st.Apps) != 0 {
		t.Errorf("after failed updates: %+v, want empty at rev 0", st)
	}
	err = db.View(func(tx *Tx) error {
		if _, err := tx.TokenByName(newToken(1).Name); !errors.Is(err, ErrNotFound) {
			t.Errorf("name index survived a failed update: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentBatchDeliveryOrder: 100 concurrent Batch calls (fsync on,
// so they really coalesce) plus a few Updates. Every change must reach the
// subscriber exactly once, in gapless revision order, before its call
// returns.
func TestConcurrentBatchDeliveryOrder(t *testing.T) {
	db := openTest(t, Options{})
	// Hold back every third commit handler so later revisions reach the hub
	// first: without the reorder buffer they would be delivered early.
	db.testBeforeDeliver = func(rev uint64) {
		if rev%3 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	var (
		mu        sync.Mutex
		delivered = make(map[string]uint64) // token id -> rev
		revs      []uint64
	)
	db.Subscribe(func(c Change) {
		mu.Lock()
		defer mu.Unlock()
		revs = append(revs, c.Rev)
		for _, tok := range c.Tokens {
			delivered[tok.ID] = c.Rev
		}
	})
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			write := db.Batch
			if i%10 == 0 {
				write = db.Update
			}
			tok := newToken(i)
			if err := write(func(tx *Tx) error { return tx.PutToken(tok) }); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			_, ok := delivered[tok.ID]
			mu.Unlock()
			if !ok {
				errs <- fmt.Errorf("token %d: call returned before its change was delivered", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(revs) != n {
		t.Fatalf("%d changes delivered, want %d", len(revs), n)
	}
	for i, rev := range revs {
		if rev != uint64(i+1) {
			t.Fatalf("delivery %d has rev %d: out of order (%v)", i, rev, revs)
		}
	}
	st := mustLoad(t, db)
	if st.Rev != n || len(st.Tokens) != n {
		t.Errorf("Load: rev %d with %d tokens, want %d and %d", st.Rev, len(st.Tokens), n, n)
	}
}

// TestBatchFailureIsolated fills one bbolt batch (MaxBatchSize calls, a
// delay long enough that only the size triggers it) where some calls fail.
// bbolt then rolls the batch back and re-runs the others: each failing
// call alone gets its error, the others commit, and a re-run starts with a
// fresh Change.
func TestBatchFailureIsolated(t *testing.T) {
	const n = 20
	db := openTest(t, Options{NoSync: true, MaxBatchSize: n, MaxBatchDelay: time.Minute})
	log := subscribe(db)
	boom := errors.New("boom")
	var (
		wg       sync.WaitGroup
		runs     [n]atomic.Int32
		results  [n]error
		reruns   atomic.Int32
		variable = n - 1 // this call's fn writes a different token on each run
	)
	for i := range n {
		wg.Go(func() {
			results[i] = db.Batch(func(tx *Tx) error {
				run := runs[i].Add(1)
				if run > 1 {
					reruns.Add(1)
				}
				tok := newToken(i)
				if i == variable {
					tok = newToken(1000 + int(run))
				}
				if err := tx.PutToken(tok); err != nil {
					return err
				}
				if i%5 == 2 {
					return fmt.Errorf("call %d: %w", i, boom) // fails after a put
				}
				return nil
			})
		})
	}
	wg.Wait()
	if reruns.Load() == 0 {
		t.Fatal("no fn was re-run: the batch did not coalesce, the test proves nothing")
	}
	committed := map[string]bool{}
	for i, err := range results {
		if i%5 == 2 {
			if !errors.Is(err, boom) {
				t.Errorf("call %d = %v, want boom", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("call %d = %v, want success", i, err)
		}
	}
	changes := log.all()
	if len(changes) != n-n/5 {
		t.Fatalf("%d changes, want %d", len(changes), n-n/5)
	}
	for k, c := range changes {
		if c.Rev != uint64(k+1) {
			t.Errorf("change %d has rev %d", k, c.Rev)
		}
		if len(c.Tokens) != 1 || len(c.DeletedTokens) != 0 {
			t.Errorf("change %d = %+v, want exactly one token put", k, c)
			continue
		}
		committed[c.Tokens[0].ID] = true
	}
	st := mustLoad(t, db)
	if len(st.Tokens) != len(committed) {
		t.Errorf("store holds %d tokens, changes put %d", len(st.Tokens), len(committed))
	}
	for _, tok := range st.Tokens {
		if !committed[tok.ID] {
			t.Errorf("stored token %s (%s) was never delivered", tok.ID, tok.Name)
		}
	}
	want := newToken(1000 + int(runs[variable].Load())).ID
	if !committed[want] {
		t.Errorf("variable call: last run's token %s not in the changes", want)
	}
	for i := range n {
		if i%5 == 2 && committed[newToken(i).ID] {
			t.Errorf("failing call %d's token was committed", i)
		}
	}
}

func TestTouchLastSeen(t *testing.T) {
	db := openTest(t, fast)
	mustUpdate(t, db, func(tx *Tx) error {
		for i := range 3 {
			tok := newToken(i)
			tok.LastSeenAt = t0.Add(time.Hour)
			if err := tx.PutToken(tok); err != nil {
				return err
			}
		}
		return nil
	})
	log := subscribe(db)
	rev := mustLoad(t, db).Rev
	err := db.TouchLastSeen(map[string]time.Time{
		newToken(0).ID: t0.Add(2 * time.Hour), // forward: taken
		newToken(1).ID: t0,                    // backward: ignored
		"deleted-id":   t0.Add(3 * time.Hour), // no such token: ignored
	})
	if err != nil {
		t.Fatalf("TouchLastSeen: %v", err)
	}
	if err := db.TouchLastSeen(nil); err != nil {
		t.Fatalf("TouchLastSeen(nil): %v", err)
	}
	st := mustLoad(t, db)
	if st.Rev != rev {
		t.Errorf("TouchLastSeen moved rev %d -> %d", rev, st.Rev)
	}
	if n := len(log.all()); n != 0 {
		t.Errorf("TouchLastSeen delivered %d changes", n)
	}
	wantSeen := []time.Time{t0.Add(2 * time.Hour), t0.Add(time.Hour), t0.Add(time.Hour)}
	for i, tok := range st.Tokens {
		if !tok.LastSeenAt.Equal(wantSeen[i]) {
			t.Errorf("token %d LastSeenAt = %v, want %v", i, tok.LastSeenAt, wantSeen[i])
		}
	}
	if len(st.Tokens) != 3 {
		t.Errorf("TouchLastSeen created records: %d tokens", len(st.Tokens))
	}

	// A token read before the flush and put back afterwards must not move
	// last_seen_at backwards; and the next change is still delivered (no
	// stall behind TouchLastSeen).
	stale := newToken(0)
	stale.LastSeenAt = t0
	stale.Enabled = false
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(stale) })
	c := log.last(t)
	if c.Rev != rev+1 || !c.Tokens[0].LastSeenAt.Equal(t0.Add(2*time.Hour)) || c.Tokens[0].Enabled {
		t.Errorf("change after TouchLastSeen = rev %d %+v", c.Rev, c.Tokens[0])
	}
	if stale.LastSeenAt != t0 {
		t.Error("PutToken modified the caller's token")
	}
}

// TestTouchLastSeenChunks: a flush larger than one transaction's chunk
// writes every token.
func TestTouchLastSeenChunks(t *testing.T) {
	db := openTest(t, fast)
	const n = 2*touchChunk + 17
	seen := map[string]time.Time{}
	mustUpdate(t, db, func(tx *Tx) error {
		for i := range n {
			tok := newToken(i)
			seen[tok.ID] = t0.Add(time.Duration(i) * time.Second)
			if err := tx.PutToken(tok); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.TouchLastSeen(seen); err != nil {
		t.Fatal(err)
	}
	st := mustLoad(t, db)
	for _, tok := range st.Tokens {
		if !tok.LastSeenAt.Equal(seen[tok.ID]) {
			t.Fatalf("token %s LastSeenAt = %v, want %v", tok.Name, tok.LastSeenAt, seen[tok.ID])
		}
	}
	if len(st.Tokens) != n {
		t.Errorf("%d tokens", len(st.Tokens))
	}
}

func TestLoadAndSubscribe(t *testing.T) {
	t.Run("Load", func(t *testing.T) {
		testLoadAndSubscribe(t, func(db *DB, fn func(Change)) (*State, error) { return db.LoadAndSubscribe(fn) })
	})
	t.Run("Each", func(t *testing.T) {
		testLoadAndSubscribe(t, func(db *DB, fn func(Change)) (*State, error) {
			var toks []*tokens.ServiceToken
			st, err := db.LoadAndSubscribeEach(func(tok *tokens.ServiceToken) { toks = append(toks, tok.Clone()) }, fn)
			if st != nil {
				st.Tokens = toks
			}
			return st, err
		})
	})
}

func testLoadAndSubscribe(t *testing.T, load func(*DB, func(Change)) (*State, error)) {
	db := openTest(t, Options{})
	const writers, each = 4, 10
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				if err := db.Batch(func(tx *Tx) error { return tx.PutToken(newToken(w*each + i)) }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	time.Sleep(5 * time.Millisecond) // let some writes land before the load
	var (
		mu   sync.Mutex
		seen []Change
	)
	st, err := load(db, func(c Change) {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Mirror = state + changes must equal the final state, each rev once.
	mirror := map[string]bool{}
	for _, tok := range st.Tokens {
		mirror[tok.ID] = true
	}
	next := st.Rev + 1
	for _, c := range seen {
		if c.Rev != next {
			t.Fatalf("after state rev %d, change rev %d, want %d", st.Rev, c.Rev, next)
		}
		next++
		for _, tok := range c.Tokens {
			mirror[tok.ID] = true
		}
	}
	final := mustLoad(t, db)
	if next-1 != final.Rev || len(mirror) != len(final.Tokens) || len(final.Tokens) != writers*each {
		t.Errorf("mirror at rev %d with %d tokens; store at rev %d with %d", next-1, len(mirror), final.Rev, len(final.Tokens))
	}
}

// TestCommitFailed exercises what write does when bbolt's commit returns
// an error after fn succeeded (a real fsync failure cannot be provoked on a
// test machine, so the two outcomes are set up by hand).
func TestCommitFailed(t *testing.T) {
	t.Run("nothing reached the file", func(t *testing.T) {
		db := openTest(t, fast)
		log := subscribe(db)
		mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(newToken(1)) })
		db.commitFailed(Change{Rev: 2, Tokens: []*tokens.ServiceToken{newToken(2)}})
		if err := db.Err(); err != nil {
			t.Fatalf("Err() = %v after a clean failure", err)
		}
		mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(newToken(3)) })
		all := log.all()
		if len(all) != 2 || all[1].Rev != 2 || all[1].Tokens[0].ID != newToken(3).ID {
			t.Errorf("changes = %+v, want rev 1 then token 3 at rev 2", all)
		}
	})
	t.Run("meta reached the file", func(t *testing.T) {
		db := openTest(t, fast)
		log := subscribe(db)
		tok := newToken(1)
		// What a commit whose final fsync failed leaves: the record and
		// rev 1 visible, no commit handler run.
		if err := db.bolt.Update(func(btx *bolt.Tx) error {
			data, _ := encode(tok)
			return errors.Join(
				btx.Bucket(bucketTokens).Put([]byte(tok.ID), data),
				btx.Bucket(bucketMeta).Put(keyRev, u64(1)))
		}); err != nil {
			t.Fatal(err)
		}
		db.commitFailed(Change{Rev: 1, Tokens: []*tokens.ServiceToken{tok}})
		if all := log.all(); len(all) != 1 || all[0].Rev != 1 {
			t.Errorf("changes = %+v, want the failed commit's change delivered", all)
		}
		if err := db.Err(); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "restart gatehouse") {
			t.Errorf("Err() = %v, want ErrFailed", err)
		}
		if err := db.Update(func(tx *Tx) error { return tx.PutToken(newToken(2)) }); !errors.Is(err, ErrFailed) {
			t.Errorf("Update after failure = %v, want ErrFailed", err)
		}
		if err := db.Batch(func(tx *Tx) error { return nil }); !errors.Is(err, ErrFailed) {
			t.Errorf("Batch after failure = %v, want ErrFailed", err)
		}
		if st := mustLoad(t, db); st.Rev != 1 || len(st.Tokens) != 1 {
			t.Errorf("Load after failure = %+v", st)
		}
	})
}
