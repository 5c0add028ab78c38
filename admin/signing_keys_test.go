package admin_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/gatehouse-dev/gatehouse/admin"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

func (e *env) sealedKeys() []*tokens.SealedKey {
	e.t.Helper()
	var keys []*tokens.SealedKey
	if err := e.db.View(func(tx *store.Tx) error {
		var err error
		keys, err = tx.SigningKeys()
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

func TestSigningKeys(t *testing.T) {
	e := newEnv(t)
	var keyChanges int
	e.db.Subscribe(func(c store.Change) {
		if c.SigningKeysChanged {
			keyChanges++
		}
	})

	created, err := admin.EnsureSigningKey(e.db, e.master, tokens.AlgES256, e.clk.Now())
	if err != nil || !created {
		t.Fatalf("EnsureSigningKey = %v, %v", created, err)
	}
	created, err = admin.EnsureSigningKey(e.db, e.master, tokens.AlgES256, e.clk.Now())
	if err != nil || created {
		t.Fatalf("second EnsureSigningKey = %v, %v", created, err)
	}
	wrong, _ := tokens.NewMasterKey()
	if _, err := admin.EnsureSigningKey(e.db, wrong, tokens.AlgES256, e.clk.Now()); !errors.Is(err, tokens.ErrKeyUnseal) {
		t.Fatalf("EnsureSigningKey with the wrong master key = %v, want ErrKeyUnseal", err)
	}
	list, err := e.client.ListSigningKeys(e.ctx(), &adminv1.ListSigningKeysRequest{})
	if err != nil || len(list.Keys) != 1 || !list.Keys[0].Active || list.Keys[0].Alg != "ES256" || list.Keys[0].RetiredAt != nil {
		t.Fatalf("ListSigningKeys = %v, %v", list, err)
	}
	first := list.Keys[0].Kid

	// Rotate: the new key is published at once but signs from the whole
	// second after now+KeyPrePublish; the old one signs until then, then
	// stays published for as long as a session JWT can live.
	e.clk.Add(time.Hour + 300*time.Millisecond)
	rot, err := e.client.RotateSigningKeys(e.ctx(), &adminv1.RotateSigningKeysRequest{Alg: "eddsa"})
	if err != nil {
		t.Fatal(err)
	}
	handover := e.clk.Now().Add(tokens.KeyPrePublish).Truncate(time.Second).Add(time.Second)
	if len(rot.Keys) != 2 || rot.Keys[0].Active || rot.Keys[0].Alg != "EdDSA" || !rot.Keys[0].ActiveFrom.AsTime().Equal(handover) ||
		rot.Keys[1].Kid != first || !rot.Keys[1].Active {
		t.Fatalf("after rotation = %v (want the new key pending until %v, the old one active)", rot, handover)
	}
	if !rot.Keys[1].RetiredAt.AsTime().Equal(handover) || !rot.Keys[1].RemoveAfter.AsTime().Equal(handover.Add(tokens.MaxSessionDuration)) {
		t.Fatalf("retiring key = %v", rot.Keys[1])
	}
	retiredAt := handover
	e.clk.Set(handover)
	list, err = e.client.ListSigningKeys(e.ctx(), &adminv1.ListSigningKeysRequest{})
	if err != nil || !list.Keys[0].Active || list.Keys[1].Active {
		t.Fatalf("at the hand-over = %v, %v (want the new key active)", list, err)
	}
	// Every stored key opens with the master key and is what it says.
	for _, sk := range e.sealedKeys() {
		k, err := tokens.Open(e.master, sk)
		if err != nil {
			t.Fatalf("open %s: %v", sk.KID, err)
		}
		if k.KID != sk.KID || k.Alg != sk.Alg {
			t.Fatalf("opened key %s/%s from record %s/%s", k.KID, k.Alg, sk.KID, sk.Alg)
		}
	}
	if ev := e.lastAudit(); ev.Method != "RotateSigningKeys" || ev.Object != rot.Keys[0].Kid || ev.Outcome != "ok" {
		t.Fatalf("audit = %+v", ev)
	}

	// Not due yet: nothing happens. Due is counted from the newest key's
	// creation (the rotation, not the hand-over).
	rotated, err := admin.RotateSigningKeysIfDue(e.db, e.master, tokens.AlgES256, 24*time.Hour, rot.Keys[0].CreatedAt.AsTime().Add(24*time.Hour-time.Second))
	if err != nil || rotated || len(e.sealedKeys()) != 2 {
		t.Fatalf("RotateSigningKeysIfDue before due = %v, %v", rotated, err)
	}
	// Due at exactly the interval; the key it adds is pending, and a
	// scheduler asking again meanwhile does not rotate once more.
	e.clk.Set(rot.Keys[0].CreatedAt.AsTime().Add(24 * time.Hour))
	rotated, err = admin.RotateSigningKeysIfDue(e.db, e.master, tokens.AlgES256, 24*time.Hour, e.clk.Now())
	if err != nil || !rotated || len(e.sealedKeys()) != 3 {
		t.Fatalf("RotateSigningKeysIfDue when due = %v, %v (%d keys)", rotated, err, len(e.sealedKeys()))
	}
	rotated, err = admin.RotateSigningKeysIfDue(e.db, e.master, tokens.AlgES256, 24*time.Hour, e.clk.Now().Add(time.Minute))
	if err != nil || rotated || len(e.sealedKeys()) != 3 {
		t.Fatalf("RotateSigningKeysIfDue during pre-publication = %v, %v (%d keys)", rotated, err, len(e.sealedKeys()))
	}
	// An immediate rotation during pre-publication: the new key signs at
	// once, and the pending one, which never signed, is dropped.
	e.clk.Add(time.Minute)
	pending := e.sealedKeys()
	now, err := e.client.RotateSigningKeys(e.ctx(), &adminv1.RotateSigningKeysRequest{Immediate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !now.Keys[0].Active || now.Keys[0].ActiveFrom != nil {
		t.Fatalf("immediate rotation = %v", now.Keys[0])
	}
	for _, k := range e.sealedKeys() {
		if k.KID != now.Keys[0].Kid && k.SignsAt(e.clk.Now()) {
			t.Fatalf("key %s still signs after an immediate rotation", k.KID)
		}
		for _, p := range pending {
			if p.KID == k.KID && p.Pending(e.clk.Now()) {
				t.Fatalf("the superseded pending key %s is still stored", k.KID)
			}
		}
	}
	if ev := e.lastAudit(); ev.Method != "RotateSigningKeys" || ev.Message == "" {
		t.Fatalf("audit = %+v", ev)
	}
	// Once the first key's RemoveAfter passes it is dropped, even without a
	// rotation.
	e.clk.Set(retiredAt.Add(tokens.MaxSessionDuration))
	rotated, err = admin.RotateSigningKeysIfDue(e.db, e.master, tokens.AlgES256, 10000*time.Hour, e.clk.Now())
	if err != nil || rotated {
		t.Fatalf("prune-only RotateSigningKeysIfDue = %v, %v", rotated, err)
	}
	for _, k := range e.sealedKeys() {
		if k.KID == first {
			t.Fatal("the first key is still stored after its RemoveAfter")
		}
	}
	if n := len(e.sealedKeys()); n != 2 {
		t.Fatalf("%d keys after pruning, want 2 (the EdDSA key and the immediate one)", n)
	}
	if ev := e.lastAudit(); ev.Method != "RotateSigningKeysIfDue" || ev.Object != first || ev.AdminKey != "gatehouse" {
		t.Fatalf("prune audit = %+v", ev)
	}
	if keyChanges != 5 {
		t.Fatalf("%d changes with SigningKeysChanged, want 5 (ensure, rotate, rotate if due, immediate rotate, prune)", keyChanges)
	}

	_, err = e.client.RotateSigningKeys(e.ctx(), &adminv1.RotateSigningKeysRequest{Alg: "HS256"})
	wantStatus(t, err, codes.InvalidArgument, "alg: ", `"HS256"`)
	if _, err := admin.RotateSigningKeysIfDue(e.db, e.master, tokens.AlgES256, 0, e.clk.Now()); err == nil {
		t.Fatal("RotateSigningKeysIfDue accepted a zero interval")
	}
}

func TestRotateSigningKeysWithoutMasterKey(t *testing.T) {
	e := newEnv(t, func(c *admin.Config) { c.MasterKey = nil })
	_, err := e.client.RotateSigningKeys(e.ctx(), &adminv1.RotateSigningKeysRequest{})
	wantStatus(t, err, codes.FailedPrecondition, "master key")
	if n := len(e.sealedKeys()); n != 0 {
		t.Fatalf("%d keys stored", n)
	}
}

func TestCheckAccess(t *testing.T) {
	e := newEnv(t)
	resp, err := e.client.CheckAccess(e.ctx(), &adminv1.CheckAccessRequest{Host: "app.example.com", Path: "/"})
	if err != nil || resp.Decision != "deny" || resp.Reason != "no application for app.example.com" {
		t.Fatalf("CheckAccess = %v, %v", resp, err)
	}
	// The Decider's own status passes through.
	_, err = e.client.CheckAccess(e.ctx(), &adminv1.CheckAccessRequest{})
	wantStatus(t, err, codes.InvalidArgument, "host: ")

	none := newEnv(t, func(c *admin.Config) { c.Decider = nil })
	_, err = none.client.CheckAccess(none.ctx(), &adminv1.CheckAccessRequest{Host: "a"})
	wantStatus(t, err, codes.Unavailable)
}
