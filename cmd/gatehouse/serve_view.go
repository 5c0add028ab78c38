package main

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/gatehouse-dev/gatehouse/authz"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// view keeps the authorizer's snapshot in step with the store. The store
// calls apply with each committed Change in revision order; apply patches
// the snapshot copy-on-write (only the token shards a change touches are
// copied; the policy engine is recompiled when applications or policies
// change, which is O(applications + policies)) and publishes it.
type view struct {
	mu     sync.Mutex
	db     viewStore
	master []byte
	log    *slog.Logger
	rev    uint64
	apps   map[string]*policy.Application
	pols   map[string]*policy.Policy
	snap   *authz.Snapshot
	out    viewSink
}

// viewSink is where the view sends what changed: the snapshot to publish,
// then the state kept beside it per token and per application to prune.
type viewSink struct {
	publish func(*authz.Snapshot)
	// forgetTokens is told the tokens changed or deleted, and
	// forgetApplications the applications and policies deleted, after the
	// snapshot without them is published.
	forgetTokens       func(ids []string)
	forgetApplications func(appIDs, policyIDs []string)
	// appsChanged is told the names of every application after a change
	// to applications.
	appsChanged func(names map[string]bool)
}

// viewStore is all the view needs of the store: the whole state and the
// ordered changes after it, and the sealed signing keys when a change says
// they changed. *store.DB implements it; so would a replicated backend (etcd,
// whose storage engine is bbolt too), without touching the request path.
type viewStore interface {
	// LoadAndSubscribeEach passes the tokens to each instead of returning
	// them in State.Tokens.
	LoadAndSubscribeEach(each func(*tokens.ServiceToken), fn func(store.Change)) (*store.State, error)
	SigningKeys() ([]*tokens.SealedKey, error)
}

// loadView loads the whole store and subscribes to its changes in one step,
// so no change between the two is missed.
func loadView(db viewStore, master []byte, logger *slog.Logger) (*view, error) {
	v := &view{db: db, master: master, log: logger}
	// apply may run as soon as LoadAndSubscribe returns; v.mu orders it
	// after the initial state is in place.
	v.mu.Lock()
	defer v.mu.Unlock()
	// The tokens go straight into the snapshot as the store reads them.
	b := authz.NewSnapshotBuilder()
	st, err := db.LoadAndSubscribeEach(b.Add, v.apply)
	if err != nil {
		return nil, fmt.Errorf("load store: %w", err)
	}
	v.rev = st.Rev
	v.apps = make(map[string]*policy.Application, len(st.Apps))
	v.pols = make(map[string]*policy.Policy, len(st.Policies))
	for _, a := range st.Apps {
		v.apps[a.ID] = a
	}
	for _, p := range st.Policies {
		v.pols[p.ID] = p
	}
	eng, err := v.compile()
	if err != nil {
		return nil, fmt.Errorf("compile applications and policies: %w", err)
	}
	keys, err := openKeySet(st.SigningKeys, master)
	if err != nil {
		return nil, err
	}
	v.snap = b.Snapshot(eng, keys)
	return v, nil
}

// setSink sets where apply sends changes, and publishes the current
// snapshot there, so nothing applied before the call is lost.
func (v *view) setSink(out viewSink) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.out = out
	out.publish(v.snap)
	if out.appsChanged != nil {
		out.appsChanged(v.appNames())
	}
}

// appNames is the set of application names. The caller holds mu.
func (v *view) appNames() map[string]bool {
	names := make(map[string]bool, len(v.apps))
	for _, a := range v.apps {
		names[a.Name] = true
	}
	return names
}

func (v *view) current() *authz.Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap
}

func (v *view) compile() (*policy.Engine, error) {
	apps := make([]*policy.Application, 0, len(v.apps))
	for _, a := range v.apps {
		apps = append(apps, a)
	}
	pols := make([]*policy.Policy, 0, len(v.pols))
	for _, p := range v.pols {
		pols = append(pols, p)
	}
	return policy.Compile(apps, pols)
}

// apply is the store subscriber. It must be quick: it runs on the goroutine
// that committed the change.
func (v *view) apply(c store.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c.Rev <= v.rev {
		return // already in the loaded state
	}
	v.rev = c.Rev
	snap := v.snap
	if len(c.Tokens) > 0 || len(c.DeletedTokens) > 0 {
		snap = snap.Apply(c.Tokens, c.DeletedTokens)
	}
	if len(c.Apps) > 0 || len(c.DeletedApps) > 0 || len(c.Policies) > 0 || len(c.DeletedPolicies) > 0 {
		for _, a := range c.Apps {
			v.apps[a.ID] = a
		}
		for _, id := range c.DeletedApps {
			delete(v.apps, id)
		}
		for _, p := range c.Policies {
			v.pols[p.ID] = p
		}
		for _, id := range c.DeletedPolicies {
			delete(v.pols, id)
		}
		eng, err := v.compile()
		if err != nil {
			// The admin API validates before it writes, so this means a bug;
			// keep serving the last good engine rather than none.
			v.log.Error("cannot compile applications and policies; keeping the previous ones", "rev", c.Rev, "err", err)
		} else {
			snap = snap.WithEngine(eng)
		}
	}
	if c.SigningKeysChanged {
		sealed, err := v.db.SigningKeys()
		if err == nil {
			var ks *tokens.KeySet
			if ks, err = openKeySet(sealed, v.master); err == nil {
				snap = snap.WithKeys(ks)
			}
		}
		if err != nil {
			v.log.Error("cannot reload signing keys; keeping the previous ones", "rev", c.Rev, "err", err)
		}
	}
	if snap == v.snap {
		return
	}
	v.snap = snap
	if v.out.publish == nil {
		return
	}
	v.out.publish(snap)
	if n := len(c.Tokens) + len(c.DeletedTokens); n > 0 && v.out.forgetTokens != nil {
		ids := make([]string, 0, n)
		for _, t := range c.Tokens {
			ids = append(ids, t.ID)
		}
		v.out.forgetTokens(append(ids, c.DeletedTokens...))
	}
	if (len(c.DeletedApps) > 0 || len(c.DeletedPolicies) > 0) && v.out.forgetApplications != nil {
		v.out.forgetApplications(c.DeletedApps, c.DeletedPolicies)
	}
	if (len(c.Apps) > 0 || len(c.DeletedApps) > 0) && v.out.appsChanged != nil {
		v.out.appsChanged(v.appNames())
	}
}

// openKeySet unseals the stored signing keys.
func openKeySet(sealed []*tokens.SealedKey, master []byte) (*tokens.KeySet, error) {
	keys := make([]*tokens.SigningKey, 0, len(sealed))
	for _, sk := range sealed {
		k, err := tokens.Open(master, sk)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w (is --master-key-file the one this store was created with?)", sk.KID, err)
		}
		keys = append(keys, k)
	}
	return tokens.NewKeySet(keys)
}
