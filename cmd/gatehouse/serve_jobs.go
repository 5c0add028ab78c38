package main

import (
	"time"

	"github.com/gatehouse-dev/gatehouse/admin"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// How often the hourly housekeeping runs: signing-key rotation when due, the
// inactive-token sweep and the expiry warnings.
const housekeepingEvery = time.Hour

// startJobs runs the background work that keeps disk I/O off the Check path:
// the last-seen flusher and the housekeeping loop.
func (s *server) startJobs() {
	s.jobsDone.Add(2)
	go func() {
		defer s.jobsDone.Done()
		t := time.NewTicker(s.cfg.LastSeenFlush)
		defer t.Stop()
		for {
			select {
			case <-s.jobsStop:
				return
			case <-t.C:
				s.flushLastSeen()
			}
		}
	}()
	go func() {
		defer s.jobsDone.Done()
		s.housekeeping()
		t := time.NewTicker(housekeepingEvery)
		defer t.Stop()
		for {
			select {
			case <-s.jobsStop:
				return
			case <-t.C:
				s.housekeeping()
			}
		}
	}()
}

func (s *server) stopJobs() {
	select {
	case <-s.jobsStop:
	default:
		close(s.jobsStop)
	}
	s.jobsDone.Wait()
}

// flushLastSeen writes the last-seen times recorded by Check since the last
// flush, in one transaction.
func (s *server) flushLastSeen() {
	if s.authz == nil || s.db == nil {
		return
	}
	seen := s.authz.DrainLastSeen()
	if err := s.db.TouchLastSeen(seen); err != nil {
		s.log.Error("cannot flush last_seen_at", "tokens", len(seen), "err", err)
		return
	}
	if s.metrics != nil {
		s.metrics.flushed()
	}
}

func (s *server) housekeeping() {
	now := s.now()
	if s.cfg.KeyRotation > 0 {
		if rotated, err := admin.RotateSigningKeysIfDue(s.db, s.master, tokens.Alg(s.cfg.SigningAlg), s.cfg.KeyRotation, now); err != nil {
			s.log.Error("scheduled signing-key rotation failed", "err", err)
		} else if rotated {
			s.log.Info("rotated the session-JWT signing key on schedule", "every", s.cfg.KeyRotation.String())
		}
	}
	if s.cfg.DisableInactiveAfter > 0 {
		s.disableInactive(now)
	}
	s.warnExpiring(now)
}

// disableInactive disables enabled tokens that have not been seen for
// --disable-inactive-after, as Cloudflare's organisation setting does: a
// token counts as inactive only if it is older than the threshold, has not
// authenticated within it, and no policy names it directly.
func (s *server) disableInactive(now time.Time) {
	s.flushLastSeen() // decide on the newest last-seen times
	cutoff := now.Add(-s.cfg.DisableInactiveAfter)
	var disabled []*tokens.ServiceToken
	err := s.db.Update(func(tx *store.Tx) error {
		disabled = disabled[:0]
		named := map[string]bool{}
		if err := tx.ForEachPolicy("", func(p *policy.Policy) error {
			for _, group := range [][]policy.Rule{p.Include, p.Require, p.Exclude} {
				for _, r := range group {
					if r.ServiceToken != nil {
						named[r.ServiceToken.TokenID] = true
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		var candidates []*tokens.ServiceToken
		if err := tx.ForEachToken(func(t *tokens.ServiceToken) error {
			last := t.LastSeenAt
			if last.IsZero() {
				last = t.CreatedAt
			}
			if t.Enabled && !named[t.ID] && t.CreatedAt.Before(cutoff) && last.Before(cutoff) {
				candidates = append(candidates, t)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, t := range candidates {
			t.SetEnabled(false, now)
			if err := tx.PutToken(t); err != nil {
				return err
			}
			if err := tx.AppendAudit(&store.AuditEvent{Time: now, AdminKey: "system", Method: "DisableInactiveServiceToken", Object: t.ID + " (" + t.Name + ")", Outcome: "ok", Message: "not seen since " + last(t).Format(time.RFC3339)}); err != nil {
				return err
			}
			disabled = append(disabled, t)
		}
		return nil
	})
	if err != nil {
		s.log.Error("inactive-token sweep failed", "err", err)
		return
	}
	for _, t := range disabled {
		s.log.Warn("disabled an inactive service token", "token_id", t.ID, "token_name", t.Name, "client_id", t.ClientID, "last_seen_at", last(t), "inactive_after", s.cfg.DisableInactiveAfter.String())
	}
}

func last(t *tokens.ServiceToken) time.Time {
	if t.LastSeenAt.IsZero() {
		return t.CreatedAt
	}
	return t.LastSeenAt
}

// warnExpiring logs, at most once a day per token, a warning for each
// enabled token that expires within 30 days (Cloudflare e-mails a week
// before; a log line an operator can alert on is our equivalent).
func (s *server) warnExpiring(now time.Time) {
	if s.lastExpiryWarn.Add(24*time.Hour - time.Minute).After(now) {
		return
	}
	s.lastExpiryWarn = now
	soon := now.Add(30 * 24 * time.Hour)
	// From the in-memory snapshot: reading the store would decode every
	// token (seconds of CPU with a million, at start-up too).
	s.view.current().ForEachToken(func(t *tokens.ServiceToken) bool {
		if t.Enabled && !t.ExpiresAt.IsZero() && t.ExpiresAt.After(now) && t.ExpiresAt.Before(soon) {
			s.log.Warn("service token expires soon: refresh or rotate it", "token_id", t.ID, "token_name", t.Name, "client_id", t.ClientID, "expires_at", t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return true
	})
}
