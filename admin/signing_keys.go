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
	return signingKeysProto(keys), nil
}

// RotateSigningKeys adds a new active signing key and retires the current
// one, which stays published until every JWT it signed has expired.
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
		msg, err := rotateSealedKeys(tx, sk, now)
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
	return signingKeysProto(keys), nil
}

// EnsureSigningKey creates a signing key on first start: when the store has
// no active one. When it has one, it checks that master unseals it, so that a
// wrong master key fails at start rather than at the first JWT.
func EnsureSigningKey(st Store, master []byte, alg tokens.Alg, now time.Time) (created bool, err error) {
	var active *tokens.SealedKey
	err = st.View(func(tx *store.Tx) error {
		keys, err := tx.SigningKeys()
		active = activeKey(keys)
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
		if activeKey(keys) != nil {
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
		a := activeKey(keys)
		due = a == nil || !now.Before(a.CreatedAt.Add(every))
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
			msg, err := rotateSealedKeys(tx, sk, now)
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

// rotateSealedKeys makes sk the active key: the active ones are retired
// (kept published for tokens.MaxSessionDuration, the longest a JWT they
// signed can live), keys past RemoveAfter are dropped. It returns the audit
// message.
func rotateSealedKeys(tx *store.Tx, sk *tokens.SealedKey, now time.Time) (string, error) {
	keys, err := tx.SigningKeys()
	if err != nil {
		return "", err
	}
	var retired []string
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			k.RetiredAt = now
			k.RemoveAfter = now.Add(tokens.MaxSessionDuration)
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
	msg := "new active " + string(sk.Alg) + " key"
	if len(retired) > 0 {
		msg += "; retired " + strings.Join(retired, " ")
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

// activeKey is the newest key with zero RetiredAt, as tokens.KeySet picks.
func activeKey(keys []*tokens.SealedKey) *tokens.SealedKey {
	var a *tokens.SealedKey
	for _, k := range keys {
		if k.RetiredAt.IsZero() && (a == nil || k.CreatedAt.After(a.CreatedAt)) {
			a = k
		}
	}
	return a
}

func signingKeysProto(keys []*tokens.SealedKey) *adminv1.ListSigningKeysResponse {
	active := activeKey(keys)
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
