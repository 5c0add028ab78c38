package store

import (
	"sync"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Change is what one committed Update or Batch call did, for subscribers
// that keep an in-memory copy of the state (the authz snapshot). Each id
// appears at most once, either put or deleted: a put after a delete of the
// same id in one call ends as a put, and a delete after a put ends as a
// delete. Records are in the order their ids were first touched.
//
// The records are shared by all subscribers and must not be modified.
type Change struct {
	// Rev is the store revision this change produced; consecutive changes
	// have consecutive revisions.
	Rev uint64

	Tokens        []*tokens.ServiceToken
	DeletedTokens []string // token ids

	Apps        []*policy.Application
	DeletedApps []string // application ids

	Policies        []*policy.Policy
	DeletedPolicies []string // policy ids, including those DeleteApp removed

	// SigningKeysChanged is set when a signing key was put or deleted: the
	// subscriber reloads Tx.SigningKeys (the set is small and must be
	// unsealed as a whole anyway).
	SigningKeysChanged bool
}

// Empty reports whether the change touched nothing a subscriber mirrors
// (for example a transaction that only wrote admin keys or audit events).
func (c *Change) Empty() bool {
	return len(c.Tokens) == 0 && len(c.DeletedTokens) == 0 &&
		len(c.Apps) == 0 && len(c.DeletedApps) == 0 &&
		len(c.Policies) == 0 && len(c.DeletedPolicies) == 0 &&
		!c.SigningKeysChanged
}

// journal records the last operation per id, keeping first-touch order.
// A nil value marks a delete.
type journal[E any] struct {
	order []string
	last  map[string]*E
}

func (j *journal[E]) put(id string, v *E) {
	if j.last == nil {
		j.last = make(map[string]*E)
	}
	if _, seen := j.last[id]; !seen {
		j.order = append(j.order, id)
	}
	j.last[id] = v
}

func (j *journal[E]) del(id string) { j.put(id, nil) }

func (j *journal[E]) result() (puts []*E, deleted []string) {
	for _, id := range j.order {
		if v := j.last[id]; v != nil {
			puts = append(puts, v)
		} else {
			deleted = append(deleted, id)
		}
	}
	return puts, deleted
}

// recorder collects one Update/Batch call's writes.
type recorder struct {
	tokens   journal[tokens.ServiceToken]
	apps     journal[policy.Application]
	policies journal[policy.Policy]
	keys     bool
}

func (r *recorder) change(rev uint64) Change {
	c := Change{Rev: rev, SigningKeysChanged: r.keys}
	c.Tokens, c.DeletedTokens = r.tokens.result()
	c.Apps, c.DeletedApps = r.apps.result()
	c.Policies, c.DeletedPolicies = r.policies.result()
	return c
}

// hub delivers committed changes to subscribers strictly in revision order.
//
// bbolt runs commit handlers after it has released the writer lock, so the
// handler of revision N+1 may run before (or concurrently with) that of N.
// Each committed change is parked in pending; whichever goroutine holds the
// next revision delivers it and every consecutive one parked behind it. The
// committing goroutine then waits until its own revision was delivered, so
// that when Update or Batch returns, subscribers have seen its change.
//
// Revisions are gapless: the revision is bumped inside the transaction, so
// a rolled-back transaction gives its number to the next one.
type hub struct {
	mu      sync.Mutex
	cond    sync.Cond
	next    uint64 // the next revision to deliver
	pending map[uint64]Change
	subs    []subscription
}

type subscription struct {
	after uint64 // deliver only changes with Rev > after
	fn    func(Change)
}

func newHub(rev uint64) *hub {
	h := &hub{next: rev + 1, pending: make(map[uint64]Change)}
	h.cond.L = &h.mu
	return h
}

func (h *hub) subscribe(after uint64, fn func(Change)) {
	h.mu.Lock()
	h.subs = append(h.subs, subscription{after: after, fn: fn})
	h.mu.Unlock()
}

// committed is called from a commit handler with the change of a
// transaction that committed.
func (h *hub) committed(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.Rev < h.next {
		// Cannot happen while revisions are only written by this process
		// through Update/Batch; dropping it beats stalling forever.
		return
	}
	h.pending[c.Rev] = c
	delivered := false
	for {
		p, ok := h.pending[h.next]
		if !ok {
			break
		}
		delete(h.pending, h.next)
		for _, s := range h.subs {
			if p.Rev > s.after {
				s.fn(p)
			}
		}
		h.next++
		delivered = true
	}
	if delivered {
		h.cond.Broadcast()
	}
	for h.next <= c.Rev {
		h.cond.Wait()
	}
}
