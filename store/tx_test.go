package store

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func TestTokenLifecycle(t *testing.T) {
	db := openTest(t, fast)
	tok := newToken(1)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(tok) })
	tok.Name = "mutated after put" // the store must have kept its own copy

	err := db.View(func(tx *Tx) error {
		want := newToken(1)
		for name, get := range map[string]func() (*tokens.ServiceToken, error){
			"Token":           func() (*tokens.ServiceToken, error) { return tx.Token(want.ID) },
			"TokenByName":     func() (*tokens.ServiceToken, error) { return tx.TokenByName(want.Name) },
			"TokenByClientID": func() (*tokens.ServiceToken, error) { return tx.TokenByClientID(want.ClientID) },
		} {
			got, err := get()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %+v, want %+v", name, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Rename and change client id: the old index entries must go.
	renamed := newToken(1)
	renamed.Name = "renamed"
	renamed.ClientID = "ffffffffffffffffffffffffffffffff.access"
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(renamed) })
	err = db.View(func(tx *Tx) error {
		if _, err := tx.TokenByName("token-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TokenByName(old name) = %v, want ErrNotFound", err)
		}
		if _, err := tx.TokenByClientID(newToken(1).ClientID); !errors.Is(err, ErrNotFound) {
			t.Errorf("TokenByClientID(old client id) = %v, want ErrNotFound", err)
		}
		if got, err := tx.TokenByName("renamed"); err != nil || got.ID != renamed.ID {
			t.Errorf("TokenByName(new name) = %v, %v", got, err)
		}
		if got, err := tx.TokenByClientID(renamed.ClientID); err != nil || got.ID != renamed.ID {
			t.Errorf("TokenByClientID(new client id) = %v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The old name is free again.
	other := newToken(2)
	other.Name = "token-1"
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(other) })

	mustUpdate(t, db, func(tx *Tx) error { return tx.DeleteToken(renamed.ID) })
	err = db.View(func(tx *Tx) error {
		if _, err := tx.Token(renamed.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Token after delete = %v, want ErrNotFound", err)
		}
		if _, err := tx.TokenByName("renamed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TokenByName after delete = %v, want ErrNotFound", err)
		}
		if _, err := tx.TokenByClientID(renamed.ClientID); !errors.Is(err, ErrNotFound) {
			t.Errorf("TokenByClientID after delete = %v, want ErrNotFound", err)
		}
		var ids []string
		if err := tx.ForEachToken(func(tok *tokens.ServiceToken) error {
			ids = append(ids, tok.ID)
			return nil
		}); err != nil {
			return err
		}
		if want := []string{other.ID}; !slices.Equal(ids, want) {
			t.Errorf("ForEachToken ids = %v, want %v", ids, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteToken(renamed.ID) }); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteToken = %v, want ErrNotFound", err)
	}
}

func TestForEachStopsAtError(t *testing.T) {
	db := openTest(t, fast)
	mustUpdate(t, db, func(tx *Tx) error {
		for i := range 5 {
			if err := tx.PutToken(newToken(i)); err != nil {
				return err
			}
		}
		return nil
	})
	stop := errors.New("stop")
	n := 0
	err := db.View(func(tx *Tx) error {
		return tx.ForEachToken(func(*tokens.ServiceToken) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("ForEachToken = %v after %d calls, want stop after 2", err, n)
	}
}

func TestUniqueness(t *testing.T) {
	db := openTest(t, fast)
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutToken(newToken(1)); err != nil {
			return err
		}
		if err := tx.PutApp(newApp(1)); err != nil {
			return err
		}
		return tx.PutAdminKey(newAdminKey(1))
	})
	sameName := newToken(2)
	sameName.Name = newToken(1).Name
	sameClientID := newToken(3)
	sameClientID.ClientID = newToken(1).ClientID
	sameAppName := newApp(2)
	sameAppName.Name = newApp(1).Name
	sameAUD := newApp(3)
	sameAUD.AUD = newApp(1).AUD
	sameDigest := newAdminKey(2)
	sameDigest.Digest = newAdminKey(1).Digest

	tests := []struct {
		name    string
		put     func(*Tx) error
		want    error
		wantMsg string
	}{
		{"token name", func(tx *Tx) error { return tx.PutToken(sameName) }, ErrNameTaken, `token name "token-1"`},
		{"token client id", func(tx *Tx) error { return tx.PutToken(sameClientID) }, ErrClientIDTaken, newToken(1).ClientID},
		{"app name", func(tx *Tx) error { return tx.PutApp(sameAppName) }, ErrNameTaken, `application name "app-1"`},
		{"app aud", func(tx *Tx) error { return tx.PutApp(sameAUD) }, ErrAUDTaken, newApp(1).AUD},
		{"admin key digest", func(tx *Tx) error { return tx.PutAdminKey(sameDigest) }, ErrDigestTaken, newAdminKey(1).ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := mustLoad(t, db)
			// The caller ignores the error and commits: nothing may have
			// been written before the check failed.
			var putErr error
			mustUpdate(t, db, func(tx *Tx) error {
				putErr = tt.put(tx)
				return nil
			})
			if !errors.Is(putErr, tt.want) {
				t.Fatalf("error = %v, want %v", putErr, tt.want)
			}
			if !strings.Contains(putErr.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %q", putErr, tt.wantMsg)
			}
			after := mustLoad(t, db)
			after.Rev = before.Rev
			if !reflect.DeepEqual(before, after) {
				t.Errorf("failed put changed the state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	// Indexes still point at the originals.
	err := db.View(func(tx *Tx) error {
		if got, err := tx.TokenByName("token-1"); err != nil || got.ID != newToken(1).ID {
			t.Errorf("TokenByName = %v, %v", got, err)
		}
		if got, err := tx.AppByAUD(newApp(1).AUD); err != nil || got.ID != newApp(1).ID {
			t.Errorf("AppByAUD = %v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPutInvalid(t *testing.T) {
	db := openTest(t, fast)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutApp(newApp(1)) })
	edit := func(f func(*tokens.ServiceToken)) *tokens.ServiceToken { tok := newToken(1); f(tok); return tok }
	editApp := func(f func(*policy.Application)) *policy.Application { a := newApp(2); f(a); return a }
	tests := []struct {
		name string
		put  func(*Tx) error
		want error
	}{
		{"nil token", func(tx *Tx) error { return tx.PutToken(nil) }, ErrInvalid},
		{"token without id", func(tx *Tx) error { return tx.PutToken(edit(func(t *tokens.ServiceToken) { t.ID = "" })) }, ErrInvalid},
		{"token without name", func(tx *Tx) error { return tx.PutToken(edit(func(t *tokens.ServiceToken) { t.Name = "" })) }, ErrInvalid},
		{"token without client id", func(tx *Tx) error { return tx.PutToken(edit(func(t *tokens.ServiceToken) { t.ClientID = "" })) }, ErrInvalid},
		{"nil app", func(tx *Tx) error { return tx.PutApp(nil) }, ErrInvalid},
		{"app without id", func(tx *Tx) error { return tx.PutApp(editApp(func(a *policy.Application) { a.ID = "" })) }, ErrInvalid},
		{"app without name", func(tx *Tx) error { return tx.PutApp(editApp(func(a *policy.Application) { a.Name = "" })) }, ErrInvalid},
		{"app without aud", func(tx *Tx) error { return tx.PutApp(editApp(func(a *policy.Application) { a.AUD = "" })) }, ErrInvalid},
		{"nil policy", func(tx *Tx) error { return tx.PutPolicy(nil) }, ErrInvalid},
		{"policy without id", func(tx *Tx) error { p := newPolicy(1, newApp(1).ID, "x"); p.ID = ""; return tx.PutPolicy(p) }, ErrInvalid},
		{"policy without app", func(tx *Tx) error { return tx.PutPolicy(newPolicy(1, "", "x")) }, ErrInvalid},
		{"policy of unknown app", func(tx *Tx) error { return tx.PutPolicy(newPolicy(1, newApp(9).ID, "x")) }, ErrNotFound},
		{"nil signing key", func(tx *Tx) error { return tx.PutSigningKey(nil) }, ErrInvalid},
		{"signing key without kid", func(tx *Tx) error { k := newSealedKey(1); k.KID = ""; return tx.PutSigningKey(k) }, ErrInvalid},
		{"signing key without sealed key", func(tx *Tx) error { k := newSealedKey(1); k.Sealed = nil; return tx.PutSigningKey(k) }, ErrInvalid},
		{"nil admin key", func(tx *Tx) error { return tx.PutAdminKey(nil) }, ErrInvalid},
		{"admin key without id", func(tx *Tx) error { k := newAdminKey(1); k.ID = ""; return tx.PutAdminKey(k) }, ErrInvalid},
		{"admin key with short digest", func(tx *Tx) error { k := newAdminKey(1); k.Digest = k.Digest[:31]; return tx.PutAdminKey(k) }, ErrInvalid},
		{"nil audit event", func(tx *Tx) error { return tx.AppendAudit(nil) }, ErrInvalid},
		{"delete unknown app", func(tx *Tx) error { return tx.DeleteApp("nope") }, ErrNotFound},
		{"delete unknown policy", func(tx *Tx) error { return tx.DeletePolicy("nope") }, ErrNotFound},
		{"delete unknown signing key", func(tx *Tx) error { return tx.DeleteSigningKey("nope") }, ErrNotFound},
		{"delete unknown admin key", func(tx *Tx) error { return tx.DeleteAdminKey("nope") }, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.Update(tt.put); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestViewCannotWrite(t *testing.T) {
	db := openTest(t, fast)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutApp(newApp(1)) })
	writes := map[string]func(*Tx) error{
		"PutToken":         func(tx *Tx) error { return tx.PutToken(newToken(1)) },
		"PutApp":           func(tx *Tx) error { return tx.PutApp(newApp(2)) },
		"DeleteApp":        func(tx *Tx) error { return tx.DeleteApp(newApp(1).ID) },
		"PutPolicy":        func(tx *Tx) error { return tx.PutPolicy(newPolicy(1, newApp(1).ID, "x")) },
		"PutSigningKey":    func(tx *Tx) error { return tx.PutSigningKey(newSealedKey(1)) },
		"PutAdminKey":      func(tx *Tx) error { return tx.PutAdminKey(newAdminKey(1)) },
		"AppendAudit":      func(tx *Tx) error { return tx.AppendAudit(&AuditEvent{Time: t0}) },
		"DeleteToken(404)": func(tx *Tx) error { return tx.DeleteToken("nope") },
	}
	for name, w := range writes {
		if err := db.View(w); err == nil {
			t.Errorf("%s in View succeeded", name)
		}
	}
}

func TestAppsAndPolicies(t *testing.T) {
	db := openTest(t, fast)
	log := subscribe(db)
	a1, a2 := newApp(1), newApp(2)
	p1, p2, p3 := newPolicy(1, a1.ID, "t1"), newPolicy(2, a1.ID, "t2"), newPolicy(3, a2.ID, "t3")
	mustUpdate(t, db, func(tx *Tx) error {
		for _, a := range []*policy.Application{a1, a2} {
			if err := tx.PutApp(a); err != nil {
				return err
			}
		}
		for _, p := range []*policy.Policy{p1, p2, p3} {
			if err := tx.PutPolicy(p); err != nil {
				return err
			}
		}
		return nil
	})
	err := db.View(func(tx *Tx) error {
		if got, err := tx.App(a1.ID); err != nil || !reflect.DeepEqual(got, a1) {
			t.Errorf("App = %+v, %v; want %+v", got, err, a1)
		}
		if got, err := tx.AppByName(a2.Name); err != nil || got.ID != a2.ID {
			t.Errorf("AppByName = %+v, %v", got, err)
		}
		if got, err := tx.Policy(p2.ID); err != nil || !reflect.DeepEqual(got, p2) {
			t.Errorf("Policy = %+v, %v; want %+v", got, err, p2)
		}
		var ids []string
		if err := tx.ForEachPolicy(a1.ID, func(p *policy.Policy) error { ids = append(ids, p.ID); return nil }); err != nil {
			return err
		}
		if want := []string{p1.ID, p2.ID}; !slices.Equal(ids, want) {
			t.Errorf("ForEachPolicy(a1) = %v, want %v", ids, want)
		}
		ids = nil
		if err := tx.ForEachPolicy("", func(p *policy.Policy) error { ids = append(ids, p.ID); return nil }); err != nil {
			return err
		}
		if len(ids) != 3 {
			t.Errorf("ForEachPolicy(all) = %v, want 3 policies", ids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Rename and re-aud an app: old index entries go, new ones work.
	renamed := newApp(1)
	renamed.Name, renamed.AUD = "renamed", strings.Repeat("ab", 32)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutApp(renamed) })
	err = db.View(func(tx *Tx) error {
		if _, err := tx.AppByName(a1.Name); !errors.Is(err, ErrNotFound) {
			t.Errorf("AppByName(old) = %v, want ErrNotFound", err)
		}
		if _, err := tx.AppByAUD(a1.AUD); !errors.Is(err, ErrNotFound) {
			t.Errorf("AppByAUD(old) = %v, want ErrNotFound", err)
		}
		if got, err := tx.AppByAUD(renamed.AUD); err != nil || got.Name != "renamed" {
			t.Errorf("AppByAUD(new) = %+v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// DeleteApp cascades to its policies, and only its own.
	mustUpdate(t, db, func(tx *Tx) error { return tx.DeleteApp(a1.ID) })
	c := log.last(t)
	if !slices.Equal(c.DeletedApps, []string{a1.ID}) {
		t.Errorf("DeletedApps = %v, want [%s]", c.DeletedApps, a1.ID)
	}
	if got, want := slices.Sorted(slices.Values(c.DeletedPolicies)), []string{p1.ID, p2.ID}; !slices.Equal(got, want) {
		t.Errorf("DeletedPolicies = %v, want %v", got, want)
	}
	st := mustLoad(t, db)
	if len(st.Apps) != 1 || st.Apps[0].ID != a2.ID || len(st.Policies) != 1 || st.Policies[0].ID != p3.ID {
		t.Errorf("after DeleteApp: apps %v policies %v, want only a2 and p3", st.Apps, st.Policies)
	}
	err = db.View(func(tx *Tx) error {
		if _, err := tx.AppByName("renamed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AppByName after delete = %v", err)
		}
		if _, err := tx.AppByAUD(renamed.AUD); !errors.Is(err, ErrNotFound) {
			t.Errorf("AppByAUD after delete = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	mustUpdate(t, db, func(tx *Tx) error { return tx.DeletePolicy(p3.ID) })
	if c := log.last(t); !slices.Equal(c.DeletedPolicies, []string{p3.ID}) {
		t.Errorf("DeletePolicy change = %+v", c)
	}
}

func TestSigningKeys(t *testing.T) {
	db := openTest(t, fast)
	log := subscribe(db)
	k1, k2, k3 := newSealedKey(1), newSealedKey(2), newSealedKey(3)
	mustUpdate(t, db, func(tx *Tx) error {
		for _, k := range []*tokens.SealedKey{k3, k1, k2} {
			if err := tx.PutSigningKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	if !log.last(t).SigningKeysChanged {
		t.Error("SigningKeysChanged not set after PutSigningKey")
	}
	if got := mustLoad(t, db).SigningKeys; !reflect.DeepEqual(got, []*tokens.SealedKey{k1, k2, k3}) {
		t.Errorf("SigningKeys = %+v, want k1, k2, k3 (oldest first)", got)
	}
	k1.RetiredAt = t0.Add(time.Hour)
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutSigningKey(k1); err != nil {
			return err
		}
		return tx.DeleteSigningKey(k2.KID)
	})
	err := db.View(func(tx *Tx) error {
		if got, err := tx.SigningKey(k1.KID); err != nil || !got.RetiredAt.Equal(k1.RetiredAt) {
			t.Errorf("SigningKey(k1) = %+v, %v", got, err)
		}
		if _, err := tx.SigningKey(k2.KID); !errors.Is(err, ErrNotFound) {
			t.Errorf("SigningKey(deleted) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A change without key writes does not claim one.
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutToken(newToken(1)) })
	if log.last(t).SigningKeysChanged {
		t.Error("SigningKeysChanged set by a token write")
	}
}

func TestAdminKeys(t *testing.T) {
	db := openTest(t, fast)
	log := subscribe(db)
	k1, k2 := newAdminKey(1), newAdminKey(2)
	k2.ReadOnly = true
	mustUpdate(t, db, func(tx *Tx) error {
		if err := tx.PutAdminKey(k2); err != nil {
			return err
		}
		return tx.PutAdminKey(k1)
	})
	if c := log.last(t); !c.Empty() {
		t.Errorf("admin key write produced a non-empty change %+v", c)
	}
	err := db.View(func(tx *Tx) error {
		all, err := tx.AdminKeys()
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(all, []*AdminKey{k1, k2}) {
			t.Errorf("AdminKeys = %+v, want k1, k2", all)
		}
		got, err := tx.AdminKeyByDigest([32]byte(k2.Digest))
		if err != nil || !reflect.DeepEqual(got, k2) {
			t.Errorf("AdminKeyByDigest = %+v, %v", got, err)
		}
		if _, err := tx.AdminKeyByDigest([32]byte{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminKeyByDigest(unknown) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Revoke k1 and give it a new digest: the old digest no longer finds it.
	old := [32]byte(k1.Digest)
	k1.RevokedAt = t0.Add(time.Hour)
	k1.Digest = make([]byte, 32)
	mustUpdate(t, db, func(tx *Tx) error { return tx.PutAdminKey(k1) })
	err = db.View(func(tx *Tx) error {
		if _, err := tx.AdminKeyByDigest(old); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminKeyByDigest(old digest) = %v, want ErrNotFound", err)
		}
		got, err := tx.AdminKeyByDigest([32]byte{})
		if err != nil || !got.RevokedAt.Equal(k1.RevokedAt) {
			t.Errorf("AdminKeyByDigest(new digest) = %+v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, db, func(tx *Tx) error { return tx.DeleteAdminKey(k1.ID) })
	err = db.View(func(tx *Tx) error {
		if _, err := tx.AdminKey(k1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminKey after delete = %v", err)
		}
		if _, err := tx.AdminKeyByDigest([32]byte{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("AdminKeyByDigest after delete = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAudit(t *testing.T) {
	db := openTest(t, fast)
	var seqs []uint64
	mustUpdate(t, db, func(tx *Tx) error {
		for i := range 5 {
			e := &AuditEvent{Time: t0.Add(time.Duration(i) * time.Minute), AdminKey: "k", Method: "/m", Object: "o", Outcome: "ok"}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
			seqs = append(seqs, e.Seq)
		}
		return nil
	})
	if !slices.IsSorted(seqs) || seqs[0] == 0 || len(slices.Compact(slices.Clone(seqs))) != 5 {
		t.Errorf("seqs = %v, want 5 increasing non-zero", seqs)
	}
	collect := func(since time.Time) (times []time.Time) {
		t.Helper()
		err := db.View(func(tx *Tx) error {
			return tx.ForEachAudit(since, func(e *AuditEvent) error {
				times = append(times, e.Time)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return times
	}
	got := collect(t0.Add(2 * time.Minute))
	want := []time.Time{t0.Add(2 * time.Minute), t0.Add(3 * time.Minute), t0.Add(4 * time.Minute)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ForEachAudit(since +2m) = %v, want %v", got, want)
	}
	var n int
	mustUpdate(t, db, func(tx *Tx) error {
		var err error
		n, err = tx.PruneAudit(t0.Add(3 * time.Minute))
		return err
	})
	if n != 3 || len(collect(time.Time{})) != 2 {
		t.Errorf("PruneAudit removed %d, left %d; want 3 and 2", n, len(collect(time.Time{})))
	}
	// Sequence numbers are never reused after a prune.
	mustUpdate(t, db, func(tx *Tx) error {
		e := &AuditEvent{Time: t0}
		if err := tx.AppendAudit(e); err != nil {
			return err
		}
		if e.Seq <= seqs[4] {
			t.Errorf("seq after prune = %d, want > %d", e.Seq, seqs[4])
		}
		return nil
	})
}
