package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Tx is typed access to the store inside one transaction. Records it
// returns are decoded copies that the caller owns. In an Update or Batch,
// every Put and Delete is recorded into the call's Change; in a View they
// fail (bbolt's ErrTxNotWritable).
//
// Put methods check every uniqueness constraint before writing anything, so
// a failed Put leaves nothing half-written even if the caller ignores the
// error and commits.
type Tx struct {
	btx *bolt.Tx
	rec *recorder // nil in View
}

// Rev returns the revision the transaction started at (the last committed
// one; an Update's own revision is assigned when fn returns).
func (tx *Tx) Rev() uint64 {
	rev, _ := readU64(tx.btx.Bucket(bucketMeta).Get(keyRev))
	return rev
}

func (tx *Tx) bucket(name []byte) *bolt.Bucket { return tx.btx.Bucket(name) }

func encode(v any) ([]byte, error) { return json.Marshal(v) }

func decode[E any](raw []byte, kind, key string) (*E, error) {
	v := new(E)
	if t, ok := any(v).(*tokens.ServiceToken); ok && decodeTokenFast(raw, t) {
		return v, nil
	}
	if err := unmarshal(raw, v, kind, key); err != nil {
		return nil, err
	}
	return v, nil
}

// unmarshal decodes raw into v with encoding/json, after zeroing v (which
// may hold what a failed decodeTokenFast left); an error is ErrCorrupt
// naming the record.
func unmarshal[E any](raw []byte, v *E, kind, key string) error {
	*v = *new(E)
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrCorrupt, kind, key, err)
	}
	return nil
}

// get decodes the record at key in bucket, or returns ErrNotFound.
func get[E any](tx *Tx, bucket []byte, kind, key string) (*E, error) {
	raw := tx.bucket(bucket).Get([]byte(key))
	if raw == nil {
		return nil, fmt.Errorf("%s %q: %w", kind, key, ErrNotFound)
	}
	return decode[E](raw, kind, key)
}

// byIndex follows an index entry to its record.
func byIndex[E any](tx *Tx, index, bucket []byte, kind, what, key string) (*E, error) {
	id := tx.bucket(index).Get([]byte(key))
	if id == nil {
		return nil, fmt.Errorf("%s with %s %q: %w", kind, what, key, ErrNotFound)
	}
	raw := tx.bucket(bucket).Get(id)
	if raw == nil {
		return nil, fmt.Errorf("%w: %s index %q points to missing %s %q", ErrCorrupt, what, key, kind, id)
	}
	return decode[E](raw, kind, string(id))
}

func forEach[E any](tx *Tx, bucket []byte, kind string, fn func(*E) error) error {
	c := tx.bucket(bucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		rec, err := decode[E](v, kind, string(k))
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// claim reports an error unless index maps key to nothing or to id.
func claim(b *bolt.Bucket, key, id string, taken error, kind, what string) error {
	if other := b.Get([]byte(key)); other != nil && string(other) != id {
		return fmt.Errorf("%s %s %q: %w", kind, what, key, taken)
	}
	return nil
}

// Token returns the token with that id.
func (tx *Tx) Token(id string) (*tokens.ServiceToken, error) {
	return get[tokens.ServiceToken](tx, bucketTokens, "token", id)
}

// TokenByClientID returns the token with that client id.
func (tx *Tx) TokenByClientID(clientID string) (*tokens.ServiceToken, error) {
	return byIndex[tokens.ServiceToken](tx, bucketTokenClientIDs, bucketTokens, "token", "client id", clientID)
}

// TokenByName returns the token with that name (exact, case-sensitive).
func (tx *Tx) TokenByName(name string) (*tokens.ServiceToken, error) {
	return byIndex[tokens.ServiceToken](tx, bucketTokenNames, bucketTokens, "token", "name", name)
}

// ForEachToken calls fn with every token in id order, stopping at fn's
// first error, which it returns.
func (tx *Tx) ForEachToken(fn func(*tokens.ServiceToken) error) error {
	return forEach(tx, bucketTokens, "token", fn)
}

// PutToken creates or replaces the token with t.ID, keeping the name and
// client id indexes: a rename or new client id frees the old one. Another
// token's name or client id gives ErrNameTaken or ErrClientIDTaken.
//
// A stored LastSeenAt later than t's is kept (a token read before a
// TouchLastSeen flush must not move it back). The store keeps its own copy.
func (tx *Tx) PutToken(t *tokens.ServiceToken) error {
	switch {
	case t == nil:
		return fmt.Errorf("%w: token is nil", ErrInvalid)
	case t.ID == "":
		return fmt.Errorf("%w: token id is empty", ErrInvalid)
	case t.Name == "":
		return fmt.Errorf("%w: token %s: name is empty", ErrInvalid, t.ID)
	case t.ClientID == "":
		return fmt.Errorf("%w: token %s: client id is empty", ErrInvalid, t.ID)
	}
	records, names, clientIDs := tx.bucket(bucketTokens), tx.bucket(bucketTokenNames), tx.bucket(bucketTokenClientIDs)
	var old *tokens.ServiceToken
	if raw := records.Get([]byte(t.ID)); raw != nil {
		var err error
		if old, err = decode[tokens.ServiceToken](raw, "token", t.ID); err != nil {
			return err
		}
	}
	if err := claim(names, t.Name, t.ID, ErrNameTaken, "token", "name"); err != nil {
		return err
	}
	if err := claim(clientIDs, t.ClientID, t.ID, ErrClientIDTaken, "token", "client id"); err != nil {
		return err
	}
	rec := t.Clone()
	if old != nil && old.LastSeenAt.After(rec.LastSeenAt) {
		rec.LastSeenAt = old.LastSeenAt
	}
	data, err := encode(rec)
	if err != nil {
		return fmt.Errorf("encode token %s: %w", t.ID, err)
	}
	if old != nil && old.Name != rec.Name {
		if err := names.Delete([]byte(old.Name)); err != nil {
			return err
		}
	}
	if old != nil && old.ClientID != rec.ClientID {
		if err := clientIDs.Delete([]byte(old.ClientID)); err != nil {
			return err
		}
	}
	id := []byte(rec.ID)
	if err := records.Put(id, data); err != nil {
		return err
	}
	if err := names.Put([]byte(rec.Name), id); err != nil {
		return err
	}
	if err := clientIDs.Put([]byte(rec.ClientID), id); err != nil {
		return err
	}
	tx.rec.tokens.put(rec.ID, rec)
	return nil
}

// DeleteToken deletes the token and its index entries. It does not look at
// policies naming the token: the caller checks (ErrInUse) or rewrites them
// in the same transaction.
func (tx *Tx) DeleteToken(id string) error {
	old, err := tx.Token(id)
	if err != nil {
		return err
	}
	if err := tx.bucket(bucketTokenNames).Delete([]byte(old.Name)); err != nil {
		return err
	}
	if err := tx.bucket(bucketTokenClientIDs).Delete([]byte(old.ClientID)); err != nil {
		return err
	}
	if err := tx.bucket(bucketTokens).Delete([]byte(id)); err != nil {
		return err
	}
	tx.rec.tokens.del(id)
	return nil
}

// App returns the application with that id.
func (tx *Tx) App(id string) (*policy.Application, error) {
	return get[policy.Application](tx, bucketApps, "application", id)
}

// AppByName returns the application with that name (exact, case-sensitive).
func (tx *Tx) AppByName(name string) (*policy.Application, error) {
	return byIndex[policy.Application](tx, bucketAppNames, bucketApps, "application", "name", name)
}

// AppByAUD returns the application with that audience tag.
func (tx *Tx) AppByAUD(aud string) (*policy.Application, error) {
	return byIndex[policy.Application](tx, bucketAppAUDs, bucketApps, "application", "aud", aud)
}

// ForEachApp calls fn with every application in id order.
func (tx *Tx) ForEachApp(fn func(*policy.Application) error) error {
	return forEach(tx, bucketApps, "application", fn)
}

// PutApp creates or replaces the application with a.ID. Names and audience
// tags are unique (ErrNameTaken, ErrAUDTaken).
func (tx *Tx) PutApp(a *policy.Application) error {
	switch {
	case a == nil:
		return fmt.Errorf("%w: application is nil", ErrInvalid)
	case a.ID == "":
		return fmt.Errorf("%w: application id is empty", ErrInvalid)
	case a.Name == "":
		return fmt.Errorf("%w: application %s: name is empty", ErrInvalid, a.ID)
	case a.AUD == "":
		return fmt.Errorf("%w: application %s: aud is empty", ErrInvalid, a.ID)
	}
	records, names, auds := tx.bucket(bucketApps), tx.bucket(bucketAppNames), tx.bucket(bucketAppAUDs)
	var old *policy.Application
	if raw := records.Get([]byte(a.ID)); raw != nil {
		var err error
		if old, err = decode[policy.Application](raw, "application", a.ID); err != nil {
			return err
		}
	}
	if err := claim(names, a.Name, a.ID, ErrNameTaken, "application", "name"); err != nil {
		return err
	}
	if err := claim(auds, a.AUD, a.ID, ErrAUDTaken, "application", "aud"); err != nil {
		return err
	}
	data, err := encode(a)
	if err != nil {
		return fmt.Errorf("encode application %s: %w", a.ID, err)
	}
	// The recorded copy is decoded from what is stored: a deep copy the
	// caller cannot change afterwards.
	rec, err := decode[policy.Application](data, "application", a.ID)
	if err != nil {
		return err
	}
	if old != nil && old.Name != a.Name {
		if err := names.Delete([]byte(old.Name)); err != nil {
			return err
		}
	}
	if old != nil && old.AUD != a.AUD {
		if err := auds.Delete([]byte(old.AUD)); err != nil {
			return err
		}
	}
	id := []byte(a.ID)
	if err := records.Put(id, data); err != nil {
		return err
	}
	if err := names.Put([]byte(a.Name), id); err != nil {
		return err
	}
	if err := auds.Put([]byte(a.AUD), id); err != nil {
		return err
	}
	tx.rec.apps.put(a.ID, rec)
	return nil
}

// DeleteApp deletes the application, its index entries and all of its
// policies (recorded as DeletedPolicies).
func (tx *Tx) DeleteApp(id string) error {
	old, err := tx.App(id)
	if err != nil {
		return err
	}
	var doomed []string
	if err := tx.ForEachPolicy(id, func(p *policy.Policy) error {
		doomed = append(doomed, p.ID)
		return nil
	}); err != nil {
		return err
	}
	for _, pid := range doomed {
		if err := tx.DeletePolicy(pid); err != nil {
			return err
		}
	}
	if err := tx.bucket(bucketAppNames).Delete([]byte(old.Name)); err != nil {
		return err
	}
	if err := tx.bucket(bucketAppAUDs).Delete([]byte(old.AUD)); err != nil {
		return err
	}
	if err := tx.bucket(bucketApps).Delete([]byte(id)); err != nil {
		return err
	}
	tx.rec.apps.del(id)
	return nil
}

// Policy returns the policy with that id.
func (tx *Tx) Policy(id string) (*policy.Policy, error) {
	return get[policy.Policy](tx, bucketPolicies, "policy", id)
}

// ForEachPolicy calls fn with every policy of application appID ("" = of
// all applications), in policy id order. For one application it reads only
// that application's policies (the app_policies index).
func (tx *Tx) ForEachPolicy(appID string, fn func(*policy.Policy) error) error {
	if appID == "" {
		return forEach(tx, bucketPolicies, "policy", fn)
	}
	return tx.forEachIndexed(bucketAppPolicies, appID, fn)
}

// ForEachPolicyNaming calls fn with every policy whose rules name the
// service token tokenID, in policy id order, reading only those policies
// (the token_policies index).
func (tx *Tx) ForEachPolicyNaming(tokenID string, fn func(*policy.Policy) error) error {
	return tx.forEachIndexed(bucketTokenPolicies, tokenID, fn)
}

// forEachIndexed calls fn with the policy of every "<owner>/<policy id>"
// entry of index. Entries are collected first, so fn may change policies.
func (tx *Tx) forEachIndexed(index []byte, owner string, fn func(*policy.Policy) error) error {
	if owner == "" {
		return nil
	}
	prefix := refKey(owner, "")
	var ids []string
	c := tx.bucket(index).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		ids = append(ids, string(v))
	}
	for _, id := range ids {
		p, err := tx.Policy(id)
		if err != nil {
			return fmt.Errorf("%s entry %s/%s: %w", index, owner, id, err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// refKey is an index key "<owner>/<id>". Ids are UUIDs: no "/".
func refKey(owner, id string) []byte {
	k := make([]byte, 0, len(owner)+1+len(id))
	k = append(k, owner...)
	k = append(k, '/')
	return append(k, id...)
}

// policyIndexKeys are p's entries in app_policies and token_policies.
func policyIndexKeys(p *policy.Policy) (app []byte, toks [][]byte) {
	for _, t := range policy.TokenIDs(p) {
		toks = append(toks, refKey(t, p.ID))
	}
	return refKey(p.ApplicationID, p.ID), toks
}

// indexPolicy adds p's index entries.
func (tx *Tx) indexPolicy(p *policy.Policy) error {
	app, toks := policyIndexKeys(p)
	if err := tx.bucket(bucketAppPolicies).Put(app, []byte(p.ID)); err != nil {
		return err
	}
	tb := tx.bucket(bucketTokenPolicies)
	for _, k := range toks {
		if err := tb.Put(k, []byte(p.ID)); err != nil {
			return err
		}
	}
	return nil
}

// unindexPolicy removes the index entries of the stored policy raw.
func (tx *Tx) unindexPolicy(id string, raw []byte) error {
	old, err := decode[policy.Policy](raw, "policy", id)
	if err != nil {
		return err
	}
	app, toks := policyIndexKeys(old)
	if err := tx.bucket(bucketAppPolicies).Delete(app); err != nil {
		return err
	}
	tb := tx.bucket(bucketTokenPolicies)
	for _, k := range toks {
		if err := tb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PutPolicy creates or replaces the policy with p.ID. Its application must
// exist (ErrNotFound).
func (tx *Tx) PutPolicy(p *policy.Policy) error {
	switch {
	case p == nil:
		return fmt.Errorf("%w: policy is nil", ErrInvalid)
	case p.ID == "":
		return fmt.Errorf("%w: policy id is empty", ErrInvalid)
	case p.ApplicationID == "":
		return fmt.Errorf("%w: policy %s: application id is empty", ErrInvalid, p.ID)
	}
	if tx.bucket(bucketApps).Get([]byte(p.ApplicationID)) == nil {
		return fmt.Errorf("policy %s: application %q: %w", p.ID, p.ApplicationID, ErrNotFound)
	}
	data, err := encode(p)
	if err != nil {
		return fmt.Errorf("encode policy %s: %w", p.ID, err)
	}
	rec, err := decode[policy.Policy](data, "policy", p.ID)
	if err != nil {
		return err
	}
	b := tx.bucket(bucketPolicies)
	if raw := b.Get([]byte(p.ID)); raw != nil {
		if err := tx.unindexPolicy(p.ID, raw); err != nil {
			return err
		}
	}
	if err := b.Put([]byte(p.ID), data); err != nil {
		return err
	}
	if err := tx.indexPolicy(rec); err != nil {
		return err
	}
	tx.rec.policies.put(p.ID, rec)
	return nil
}

// DeletePolicy deletes the policy.
func (tx *Tx) DeletePolicy(id string) error {
	b := tx.bucket(bucketPolicies)
	raw := b.Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("policy %q: %w", id, ErrNotFound)
	}
	if err := tx.unindexPolicy(id, raw); err != nil {
		return err
	}
	if err := b.Delete([]byte(id)); err != nil {
		return err
	}
	tx.rec.policies.del(id)
	return nil
}
