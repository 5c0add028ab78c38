package admin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// defaultAlg signs session JWTs when nothing else is configured: RS256 is
// what Cloudflare Access uses and what every JWT library verifies.
const defaultAlg = tokens.DefaultAlg

// ListSigningKeys lists the signing keys, newest first.
func (s *Server) ListSigningKeys(ctx context.Context, req *adminv1.ListSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
	var keys []*tokens.SealedKey
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		keys, err = tx.SigningKeys()
		return err
	})
	if err != nil {
		return nil, s.toStatus("ListSigningKeys", err)
	}
	return signingKeysProto(keys, s.now()), nil
}

// RotateSigningKeys adds a signing key, published at once and signing after
// tokens.KeyPrePublish (at once with immediate, or when no key signs now);
// the key signing until then retires at that moment and stays published
// until every JWT it signed has expired.
func (s *Server) RotateSigningKeys(ctx context.Context, req *adminv1.RotateSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
	const method = "RotateSigningKeys"
	alg := s.alg
	if req.GetAlg() != "" {
		var err error
		if alg, err = parseAlg("alg", req.GetAlg()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	if len(s.master) == 0 {
		return nil, s.toStatus(method, ErrNoMasterKey)
	}
	now := s.now()
	sk, err := newSealedKey(s.master, alg, now)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	var keys []*tokens.SealedKey
	err = s.store.Update(func(tx *store.Tx) error {
		prePublish := tokens.KeyPrePublish
		if req.GetImmediate() {
			prePublish = 0
		}
		msg, err := rotateSealedKeys(tx, sk, prePublish, now)
		if err != nil {
			return err
		}
		if err := s.audit(ctx, tx, now, method, sk.KID, msg); err != nil {
			return err
		}
		keys, err = tx.SigningKeys()
		return err
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, sk.KID)
	return signingKeysProto(keys, now), nil
}

// EnsureSigningKey creates a signing key on first start: when the store has
// no active one. When it has one, it checks that master unseals it, so that a
// wrong master key fails at start rather than at the first JWT.
func EnsureSigningKey(st Store, master []byte, alg tokens.Alg, now time.Time) (created bool, err error) {
	var active *tokens.SealedKey
	err = st.View(func(tx *store.Tx) error {
		keys, err := tx.SigningKeys()
		active = activeKey(keys, now)
		return err
	})
	if err != nil {
		return false, err
	}
	if active != nil {
		if _, err := tokens.Open(master, active); err != nil {
			return false, fmt.Errorf("signing key %s: %w", active.KID, err)
		}
		return false, nil
	}
	sk, err := newSealedKey(master, alg, now)
	if err != nil {
		return false, err
	}
	err = st.Update(func(tx *store.Tx) error {
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		if activeKey(keys, now) != nil {
			created = false // another writer got there first
			return nil
		}
		created = true
		if err := tx.PutSigningKey(sk); err != nil {
			return err
		}
		return appendAudit(tx, &store.AuditEvent{Time: now, AdminKey: systemActor, Method: "EnsureSigningKey",
			Object: sk.KID, Outcome: outcomeOK, Message: "first signing key, " + string(sk.Alg)})
	})
	return created, err
}

// RotateSigningKeysIfDue rotates the signing keys when the active key is
// older than every (for a background scheduler; tokens.DefaultKeyRotation
// is six weeks), and drops retired keys past their RemoveAfter either way.
// It creates a first key when there is none.
func RotateSigningKeysIfDue(st Store, master []byte, alg tokens.Alg, every time.Duration, now time.Time) (rotated bool, err error) {
	if every <= 0 {
		return false, fmt.Errorf("signing key rotation interval must be positive, not %s: %w", every, ErrInvalid)
	}
	var due, prune bool
	err = st.View(func(tx *store.Tx) error {
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		// Due when the newest key that is not retired (the signing one, or
		// one still in pre-publication) is older than every.
		n := newestUnretired(keys, now)
		due = n == nil || !now.Before(n.CreatedAt.Add(every))
		prune = slices.ContainsFunc(keys, func(k *tokens.SealedKey) bool { return removable(k, now) })
		return nil
	})
	if err != nil || (!due && !prune) {
		return false, err
	}
	var sk *tokens.SealedKey
	if due {
		if sk, err = newSealedKey(master, alg, now); err != nil {
			return false, err
		}
	}
	err = st.Update(func(tx *store.Tx) error {
		e := &store.AuditEvent{Time: now, AdminKey: systemActor, Method: "RotateSigningKeysIfDue", Outcome: outcomeOK}
		if sk == nil {
			dropped, err := dropRemovable(tx, now)
			if err != nil || len(dropped) == 0 {
				return err
			}
			e.Object, e.Message = strings.Join(dropped, " "), "removed expired keys"
		} else {
			msg, err := rotateSealedKeys(tx, sk, tokens.KeyPrePublish, now)
			if err != nil {
				return err
			}
			e.Object, e.Message = sk.KID, msg
		}
		return appendAudit(tx, e)
	})
	return err == nil && sk != nil, err
}

// newSealedKey generates a key (outside any transaction: an RSA key takes
// tens of milliseconds) and seals it.
func newSealedKey(master []byte, alg tokens.Alg, now time.Time) (*tokens.SealedKey, error) {
	if len(master) == 0 {
		return nil, ErrNoMasterKey
	}
	k, err := tokens.GenerateSigningKey(alg, now)
	if err != nil {
		return nil, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	sk, err := tokens.Seal(master, k)
	if err != nil {
		return nil, fmt.Errorf("seal signing key: %w", err)
	}
	return sk, nil
}

// rotateSealedKeys adds sk, signing from now+prePublish (a whole second; at
// once when prePublish is not positive or no key signs now). The key
// signing now retires at that moment and stays published for
// tokens.MaxSessionDuration more (the longest a JWT it signed can live); a
// key still waiting to sign from an earlier rotation is dropped (it signed
// nothing); keys past RemoveAfter are dropped. Exactly one key signs at any
// time. It returns the audit message.
func rotateSealedKeys(tx *store.Tx, sk *tokens.SealedKey, prePublish time.Duration, now time.Time) (string, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return "", err
	}
	handover := now
	if prePublish > 0 && activeKey(keys, now) != nil {
		handover = now.Add(prePublish).Truncate(time.Second).Add(time.Second)
		sk.ActiveFrom = handover
	}
	var retired, superseded []string
	for _, k := range keys {
		switch {
		case k.Pending(now) || now.Before(k.ActiveFrom):
			// Published, never signed: the new rotation supersedes it.
			if err := tx.DeleteSigningKey(k.KID); err != nil {
				return "", err
			}
			superseded = append(superseded, k.KID)
		case k.RetiredAt.IsZero() || k.RetiredAt.After(now):
			k.RetiredAt = handover
			k.RemoveAfter = handover.Add(tokens.MaxSessionDuration)
			if err := tx.PutSigningKey(k); err != nil {
				return "", err
			}
			retired = append(retired, k.KID)
		}
	}
	dropped, err := dropRemovable(tx, now)
	if err != nil {
		return "", err
	}
	if err := tx.PutSigningKey(sk); err != nil {
		return "", err
	}
	msg := "new " + string(sk.Alg) + " key, signing at once"
	if handover.After(now) {
		msg = "new " + string(sk.Alg) + " key, published now, signing from " + handover.UTC().Format(time.RFC3339)
	}
	if len(retired) > 0 {
		msg += "; retiring " + strings.Join(retired, " ") + " then"
	}
	if len(superseded) > 0 {
		msg += "; dropped " + strings.Join(superseded, " ") + ", which had not signed yet"
	}
	if len(dropped) > 0 {
		msg += "; removed " + strings.Join(dropped, " ")
	}
	return msg, nil
}

// dropRemovable deletes the retired keys whose RemoveAfter has passed.
func dropRemovable(tx *store.Tx, now time.Time) ([]string, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, k := range keys {
		if removable(k, now) {
			if err := tx.DeleteSigningKey(k.KID); err != nil {
				return nil, err
			}
			dropped = append(dropped, k.KID)
		}
	}
	return dropped, nil
}

func removable(k *tokens.SealedKey, now time.Time) bool {
	return !k.RetiredAt.IsZero() && !k.RemoveAfter.IsZero() && !now.Before(k.RemoveAfter)
}

// activeKey is the key that signs at now, as tokens.KeySet.ActiveAt picks:
// the newest, by CreatedAt, whose ActiveFrom has come and RetiredAt has not.
func activeKey(keys []*tokens.SealedKey, now time.Time) *tokens.SealedKey {
	var a *tokens.SealedKey
	for _, k := range keys {
		if k.SignsAt(now) && (a == nil || k.CreatedAt.After(a.CreatedAt)) {
			a = k
		}
	}
	return a
}

// newestUnretired is the newest key not retired by now: the one signing,
// or one published and waiting to sign.
func newestUnretired(keys []*tokens.SealedKey, now time.Time) *tokens.SealedKey {
	var n *tokens.SealedKey
	for _, k := range keys {
		if (k.RetiredAt.IsZero() || now.Before(k.RetiredAt)) && (n == nil || k.CreatedAt.After(n.CreatedAt)) {
			n = k
		}
	}
	return n
}

func signingKeysProto(keys []*tokens.SealedKey, now time.Time) *adminv1.ListSigningKeysResponse {
	active := activeKey(keys, now)
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b *tokens.SealedKey) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.KID, b.KID))
	})
	resp := &adminv1.ListSigningKeysResponse{Keys: make([]*adminv1.SigningKey, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, signingKeyProto(k, k == active))
	}
	return resp
}

// parseAlg checks a signing algorithm name.
func parseAlg(field, s string) (tokens.Alg, error) {
	a, err := tokens.ParseAlg(s)
	if err != nil {
		return "", invalidf(field, "%s is not one of RS256, ES256, EdDSA", quote(s))
	}
	return a, nil
}
