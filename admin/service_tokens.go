package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// CreateServiceToken creates a token; the response is the only place its
// secret ever appears. Concurrent creates share one bbolt transaction
// (Batch), so a burst of them costs one fsync, not one each.
func (s *Server) CreateServiceToken(ctx context.Context, req *adminv1.CreateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "CreateServiceToken"
	if err := checkName("name", req.GetName()); err != nil {
		return nil, s.toStatus(method, err)
	}
	d, err := parseTokenDuration("duration", req.GetDuration(), true)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	t, secret, err := tokens.New(req.GetName(), d, now)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	if err := s.putNewToken(ctx, method, t, now); err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, secret, now), nil
}

// ImportServiceToken registers an existing client id and secret.
func (s *Server) ImportServiceToken(ctx context.Context, req *adminv1.ImportServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "ImportServiceToken"
	if err := checkName("name", req.GetName()); err != nil {
		return nil, s.toStatus(method, err)
	}
	if !tokens.ValidClientID(req.GetClientId()) {
		return nil, s.toStatus(method, invalidf("client_id", `must be 32 lowercase hex characters followed by ".access"`))
	}
	// The reason (length, alphabet, checksum) is worth giving, the secret
	// itself never: CheckSecret's message does not contain it.
	if err := tokens.CheckSecret(req.GetClientSecret(), tokens.SecretPrefix, true); err != nil {
		return nil, s.toStatus(method, invalidf("client_secret",
			"must be a gatehouse secret (%s…) or a 64-hex-character Cloudflare secret (%s)", tokens.SecretPrefix, secretReason(err)))
	}
	d, err := parseTokenDuration("duration", req.GetDuration(), true)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	t, err := tokens.Import(req.GetName(), req.GetClientId(), req.GetClientSecret(), d, now)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	if err := s.putNewToken(ctx, method, t, now); err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, "", now), nil
}

// putNewToken stores a new token with its audit event in a Batch
// transaction. fn may run twice (bbolt retries a batch without a failing
// member); everything it does is a pure function of t.
func (s *Server) putNewToken(ctx context.Context, method string, t *tokens.ServiceToken, now time.Time) error {
	obj := objectName(t.ID, t.Name)
	err := s.store.Batch(func(tx *store.Tx) error {
		if err := tx.PutToken(t); err != nil {
			return tokenPutError(t, err)
		}
		return s.audit(ctx, tx, now, method, obj, "client id "+t.ClientID+", duration "+t.Duration.String())
	})
	if err != nil {
		return err
	}
	s.logChange(ctx, method, obj)
	return nil
}

// ListServiceTokens lists tokens, filtered, ordered by name.
func (s *Server) ListServiceTokens(ctx context.Context, req *adminv1.ListServiceTokensRequest) (*adminv1.ListServiceTokensResponse, error) {
	const method = "ListServiceTokens"
	var within time.Duration
	if w := req.GetExpiringWithin(); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 {
			return nil, s.toStatus(method, invalidf("expiring_within", `%s is not a positive Go duration such as "168h"`, quote(w)))
		}
		within = d
	}
	sub := strings.ToLower(req.GetNameContains())
	now := s.now()
	var list []*tokens.ServiceToken
	err := s.store.View(func(tx *store.Tx) error {
		return tx.ForEachToken(func(t *tokens.ServiceToken) error {
			switch {
			case sub != "" && !strings.Contains(strings.ToLower(t.Name), sub):
			case within > 0 && (t.ExpiresAt.IsZero() || t.Expired(now) || t.ExpiresAt.After(now.Add(within))):
			case req.GetExpired() && !t.Expired(now):
			case req.GetDisabled() && t.Enabled:
			default:
				list = append(list, t)
			}
			return nil
		})
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	slices.SortFunc(list, func(a, b *tokens.ServiceToken) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	resp := &adminv1.ListServiceTokensResponse{ServiceTokens: make([]*adminv1.ServiceToken, 0, len(list))}
	for _, t := range list {
		resp.ServiceTokens = append(resp.ServiceTokens, tokenProto(t, "", now))
	}
	return resp, nil
}

// GetServiceToken fetches a token by id or client id, with the applications
// whose policies name it.
func (s *Server) GetServiceToken(ctx context.Context, req *adminv1.GetServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "GetServiceToken"
	if err := checkTokenRef(req.GetId()); err != nil {
		return nil, s.toStatus(method, err)
	}
	var (
		t    *tokens.ServiceToken
		apps []*adminv1.ApplicationRef
	)
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		if t, err = findToken(tx, req.GetId()); err != nil {
			return err
		}
		apps, err = tokenApps(tx, t.ID)
		return err
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	p := tokenProto(t, "", s.now())
	p.Applications = apps
	return p, nil
}

// tokenApps lists the applications whose policies name token id, by name.
func tokenApps(tx *store.Tx, id string) ([]*adminv1.ApplicationRef, error) {
	appIDs := map[string]bool{}
	err := tx.ForEachPolicyNaming(id, func(p *policy.Policy) error {
		appIDs[p.ApplicationID] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	refs := make([]*adminv1.ApplicationRef, 0, len(appIDs))
	for appID := range appIDs {
		a, err := tx.App(appID)
		if err != nil {
			return nil, fmt.Errorf("application %s of a policy naming token %s: %w", appID, id, err)
		}
		refs = append(refs, &adminv1.ApplicationRef{Id: a.ID, Name: a.Name})
	}
	slices.SortFunc(refs, func(a, b *adminv1.ApplicationRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Id, b.Id))
	})
	return refs, nil
}

// UpdateServiceToken changes the name and/or the duration (which also
// resets expires_at to now + duration).
func (s *Server) UpdateServiceToken(ctx context.Context, req *adminv1.UpdateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "UpdateServiceToken"
	if req.Name == nil && req.Duration == nil {
		return nil, s.toStatus(method, invalidf("name, duration", "nothing to update: set name and/or duration"))
	}
	if req.Name != nil {
		if err := checkName("name", req.GetName()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	var d tokens.Duration
	if req.Duration != nil {
		var err error
		if d, err = parseTokenDuration("duration", req.GetDuration(), false); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	t, now, err := s.mutateToken(ctx, method, req.GetId(), func(t *tokens.ServiceToken, now time.Time) (string, error) {
		var msg []string
		if req.Name != nil && req.GetName() != t.Name {
			msg = append(msg, fmt.Sprintf("name %q -> %q", t.Name, req.GetName()))
			t.Name = req.GetName()
			t.UpdatedAt = now
		}
		if req.Duration != nil {
			t.SetDuration(d, now)
			msg = append(msg, "duration "+d.String())
		}
		return strings.Join(msg, ", "), nil
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, "", now), nil
}

// RefreshServiceToken sets expires_at = now + duration.
func (s *Server) RefreshServiceToken(ctx context.Context, req *adminv1.RefreshServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "RefreshServiceToken"
	t, now, err := s.mutateToken(ctx, method, req.GetId(), func(t *tokens.ServiceToken, now time.Time) (string, error) {
		t.Refresh(now)
		if t.ExpiresAt.IsZero() {
			return "never expires", nil
		}
		return "expires at " + t.ExpiresAt.UTC().Format(time.RFC3339), nil
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, "", now), nil
}

// RotateServiceToken issues a new secret for the same client id; the
// response is the only place it appears.
func (s *Server) RotateServiceToken(ctx context.Context, req *adminv1.RotateServiceTokenRequest) (*adminv1.ServiceToken, error) {
	const method = "RotateServiceToken"
	grace, err := parseGrace("grace", req.GetGrace())
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	var secret string
	t, now, err := s.mutateToken(ctx, method, req.GetId(), func(t *tokens.ServiceToken, now time.Time) (string, error) {
		var err error
		if secret, err = t.Rotate(grace, now); err != nil {
			return "", err
		}
		if grace == 0 {
			return fmt.Sprintf("secret version %d, previous secret revoked", t.SecretVersion), nil
		}
		return fmt.Sprintf("secret version %d, previous secret valid for %s", t.SecretVersion, fmtDuration(grace)), nil
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, secret, now), nil
}

// SetServiceTokenEnabled disables or re-enables a token.
func (s *Server) SetServiceTokenEnabled(ctx context.Context, req *adminv1.SetServiceTokenEnabledRequest) (*adminv1.ServiceToken, error) {
	const method = "SetServiceTokenEnabled"
	t, now, err := s.mutateToken(ctx, method, req.GetId(), func(t *tokens.ServiceToken, now time.Time) (string, error) {
		t.SetEnabled(req.GetEnabled(), now)
		if req.GetEnabled() {
			return "enabled", nil
		}
		return "disabled", nil
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return tokenProto(t, "", now), nil
}

// mutateToken runs change on the token named by ref in one Update
// transaction, with its audit event. change returns the audit message.
func (s *Server) mutateToken(ctx context.Context, method, ref string, change func(t *tokens.ServiceToken, now time.Time) (string, error)) (*tokens.ServiceToken, time.Time, error) {
	if err := checkTokenRef(ref); err != nil {
		return nil, time.Time{}, err
	}
	now := s.now()
	var t *tokens.ServiceToken
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if t, err = findToken(tx, ref); err != nil {
			return err
		}
		msg, err := change(t, now)
		if err != nil {
			return err
		}
		if err := tx.PutToken(t); err != nil {
			return tokenPutError(t, err)
		}
		return s.audit(ctx, tx, now, method, objectName(t.ID, t.Name), msg)
	})
	if err != nil {
		return nil, now, err
	}
	s.logChange(ctx, method, objectName(t.ID, t.Name))
	return t, now, nil
}

// DeleteServiceToken deletes a token; while policies name it only with
// force, which takes it out of them in the same transaction.
func (s *Server) DeleteServiceToken(ctx context.Context, req *adminv1.DeleteServiceTokenRequest) (*adminv1.DeleteServiceTokenResponse, error) {
	const method = "DeleteServiceToken"
	if err := checkTokenRef(req.GetId()); err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	var (
		t    *tokens.ServiceToken
		resp = &adminv1.DeleteServiceTokenResponse{}
	)
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if t, err = findToken(tx, req.GetId()); err != nil {
			return err
		}
		resp.Id = t.ID
		var users []*policy.Policy
		err = tx.ForEachPolicyNaming(t.ID, func(p *policy.Policy) error {
			users = append(users, p)
			return nil
		})
		if err != nil {
			return err
		}
		if len(users) > 0 && !req.GetForce() {
			names, err := policyNames(tx, users)
			if err != nil {
				return err
			}
			return taken(store.ErrInUse, "service token %q is in use by %s: take it out of them first, or delete it with force",
				t.Name, names)
		}
		var notes []string
		for _, p := range users {
			deleted, err := forgetToken(tx, p, t.ID, now)
			if err != nil {
				return err
			}
			resp.PoliciesUpdated = append(resp.PoliciesUpdated, p.ID)
			if deleted {
				notes = append(notes, fmt.Sprintf("policy %s deleted", objectName(p.ID, p.Name)))
			} else {
				notes = append(notes, fmt.Sprintf("policy %s updated", objectName(p.ID, p.Name)))
			}
		}
		if err := tx.DeleteToken(t.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(t.ID, t.Name), strings.Join(notes, ", "))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(t.ID, t.Name))
	return resp, nil
}

// forgetToken takes a token that is being deleted out of policy p, keeping
// what p decides for every other request (see policy.RemoveToken): include
// and exclude rules naming it are dropped; when p can never match again (a
// require rule names the token, or no include rule is left) p is deleted
// (deleted = true).
func forgetToken(tx *store.Tx, p *policy.Policy, tokenID string, now time.Time) (deleted bool, err error) {
	if _, emptied := policy.RemoveToken(p, tokenID); emptied {
		return true, tx.DeletePolicy(p.ID)
	}
	p.UpdatedAt = now
	return false, tx.PutPolicy(p)
}

// policyNames renders policies as `"p" (application "a"), …` for messages.
func policyNames(tx *store.Tx, ps []*policy.Policy) (string, error) {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		a, err := tx.App(p.ApplicationID)
		if err != nil {
			return "", fmt.Errorf("application %s of policy %s: %w", p.ApplicationID, p.ID, err)
		}
		parts = append(parts, fmt.Sprintf("policy %q (application %q)", p.Name, a.Name))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", "), nil
}

// checkTokenRef validates a request's token reference before the
// transaction.
func checkTokenRef(ref string) error {
	switch {
	case ref == "":
		return invalidf("id", "required: a token id (UUID) or client id")
	case tokens.ValidID(ref), tokens.ValidClientID(ref):
		return nil
	}
	return invalidf("id", "not a token id or client id")
}

// findToken looks a token up by id or client id (checked by checkTokenRef).
func findToken(tx *store.Tx, ref string) (*tokens.ServiceToken, error) {
	var (
		t   *tokens.ServiceToken
		err error
	)
	if tokens.ValidID(ref) {
		t, err = tx.Token(ref)
	} else {
		t, err = tx.TokenByClientID(ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("service token %q: %w", ref, store.ErrNotFound)
	}
	return t, err
}

// tokenPutError names the field behind a uniqueness error of PutToken.
func tokenPutError(t *tokens.ServiceToken, err error) error {
	switch {
	case errors.Is(err, store.ErrNameTaken):
		return invalid("name", taken(store.ErrNameTaken, "a service token named %q already exists", t.Name))
	case errors.Is(err, store.ErrClientIDTaken):
		return invalid("client_id", taken(store.ErrClientIDTaken, "a service token with client id %q already exists", t.ClientID))
	}
	return err
}

// checkName validates an object name.
func checkName(field, name string) error {
	if err := tokens.ValidateName(name); err != nil {
		return invalid(field, err)
	}
	return nil
}

// parseTokenDuration parses a token duration; "" means the one-year default
// when allowed.
func parseTokenDuration(field, s string, emptyIsDefault bool) (tokens.Duration, error) {
	if s == "" && emptyIsDefault {
		return tokens.DefaultDuration, nil
	}
	d, err := tokens.ParseDuration(s)
	switch {
	case errors.Is(err, tokens.ErrDurationEmpty):
		return 0, invalidf(field, `must not be empty: use a Go duration such as "8760h", or "forever"`)
	case errors.Is(err, tokens.ErrDurationNotPos):
		return 0, invalidf(field, "must be positive, not %s", quote(s))
	case err != nil:
		return 0, invalidf(field, `%s is not a Go duration such as "8760h" or "90m", nor "forever"`, quote(s))
	}
	return d, nil
}

// parseGrace parses a rotation grace period: "" or zero means none, else
// tokens.MinGrace to tokens.MaxGrace.
func parseGrace(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	g, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidf(field, `%s is not a Go duration such as "24h"`, quote(s))
	}
	if g != 0 && (g < tokens.MinGrace || g > tokens.MaxGrace) {
		return 0, invalidf(field, "%s is out of range: use 0s (revoke the previous secret at once) or %s to %s",
			quote(s), fmtDuration(tokens.MinGrace), fmtDuration(tokens.MaxGrace))
	}
	return g, nil
}

// secretReason is the part of a CheckSecret error that says what is wrong,
// without the sentinel's own text.
func secretReason(err error) string {
	msg := err.Error()
	if p := tokens.ErrSecretMalformed.Error() + ": "; strings.HasPrefix(msg, p) {
		return msg[len(p):]
	}
	return msg
}
