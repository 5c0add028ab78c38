package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// ErrPrecedenceTaken is returned when two policies of one application would
// share a precedence: their order would be undefined.
var ErrPrecedenceTaken = errors.New("already used by another policy of the application")

// CreatePolicy adds a policy to an application.
func (s *Server) CreatePolicy(ctx context.Context, req *adminv1.CreatePolicyRequest) (*adminv1.Policy, error) {
	const method = "CreatePolicy"
	if req.GetApplication() == "" {
		return nil, s.toStatus(method, invalidf("application", "required: an application id or name"))
	}
	if err := checkName("name", req.GetName()); err != nil {
		return nil, s.toStatus(method, err)
	}
	dec, err := parseDecision("decision", req.GetDecision())
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	if req.Precedence != nil && req.GetPrecedence() < 1 {
		return nil, s.toStatus(method, invalidf("precedence", "must be at least 1, not %d", req.GetPrecedence()))
	}
	var sd time.Duration
	if req.GetSessionDuration() != "" {
		if sd, err = parseSessionDuration("session_duration", req.GetSessionDuration()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	if len(req.GetInclude()) == 0 {
		return nil, s.toStatus(method, invalidf("include", "at least one rule is required"))
	}
	now := s.now()
	p := &policy.Policy{
		ID:              tokens.NewID(),
		Name:            req.GetName(),
		Decision:        dec,
		SessionDuration: sd,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	err = s.store.Update(func(tx *store.Tx) error {
		a, err := findApp(tx, req.GetApplication())
		if err != nil {
			return invalid("application", err)
		}
		p.ApplicationID = a.ID
		siblings, err := appPolicies(tx, a.ID)
		if err != nil {
			return err
		}
		if req.Precedence != nil {
			p.Precedence = int(req.GetPrecedence())
		} else {
			p.Precedence = 1
			for _, o := range siblings {
				p.Precedence = max(p.Precedence, o.Precedence+1)
			}
			if p.Precedence > math.MaxInt32 {
				return invalidf("precedence", "no precedence is free above the application's highest (%d): set one", p.Precedence-1)
			}
		}
		if err := checkSiblings(p, a, siblings); err != nil {
			return err
		}
		if err := setRules(tx, p, req.GetInclude(), req.GetRequire(), req.GetExclude()); err != nil {
			return err
		}
		if err := policy.ValidatePolicy(p); err != nil {
			return invalid("", err)
		}
		if err := tx.PutPolicy(p); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(p.ID, p.Name),
			fmt.Sprintf("application %s, %s, precedence %d", objectName(a.ID, a.Name), p.Decision, p.Precedence))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(p.ID, p.Name))
	return policyProto(p), nil
}

// ListPolicies lists the policies of one application, or all, ordered by
// application name then precedence.
func (s *Server) ListPolicies(ctx context.Context, req *adminv1.ListPoliciesRequest) (*adminv1.ListPoliciesResponse, error) {
	const method = "ListPolicies"
	var (
		list     []*policy.Policy
		appNames = map[string]string{}
	)
	err := s.store.View(func(tx *store.Tx) error {
		appID := ""
		if ref := req.GetApplication(); ref != "" {
			a, err := findApp(tx, ref)
			if err != nil {
				return invalid("application", err)
			}
			appID = a.ID
		}
		err := tx.ForEachApp(func(a *policy.Application) error {
			appNames[a.ID] = a.Name
			return nil
		})
		if err != nil {
			return err
		}
		return tx.ForEachPolicy(appID, func(p *policy.Policy) error {
			list = append(list, p)
			return nil
		})
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	slices.SortFunc(list, func(a, b *policy.Policy) int {
		return cmp.Or(
			strings.Compare(appNames[a.ApplicationID], appNames[b.ApplicationID]),
			strings.Compare(a.ApplicationID, b.ApplicationID),
			cmp.Compare(a.Precedence, b.Precedence),
			strings.Compare(a.Name, b.Name),
			strings.Compare(a.ID, b.ID),
		)
	})
	resp := &adminv1.ListPoliciesResponse{Policies: make([]*adminv1.Policy, 0, len(list))}
	for _, p := range list {
		resp.Policies = append(resp.Policies, policyProto(p))
	}
	return resp, nil
}

// GetPolicy fetches a policy by id.
func (s *Server) GetPolicy(ctx context.Context, req *adminv1.GetPolicyRequest) (*adminv1.Policy, error) {
	const method = "GetPolicy"
	if err := checkPolicyRef(req.GetId()); err != nil {
		return nil, s.toStatus(method, err)
	}
	var p *policy.Policy
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		p, err = findPolicy(tx, req.GetId())
		return err
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return policyProto(p), nil
}

// UpdatePolicy changes the fields that are set; the rules only with
// replace_rules.
func (s *Server) UpdatePolicy(ctx context.Context, req *adminv1.UpdatePolicyRequest) (*adminv1.Policy, error) {
	const method = "UpdatePolicy"
	if err := checkPolicyRef(req.GetId()); err != nil {
		return nil, s.toStatus(method, err)
	}
	if req.Name != nil {
		if err := checkName("name", req.GetName()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	var (
		dec policy.Decision
		sd  time.Duration
		err error
	)
	if req.Decision != nil {
		if dec, err = parseDecision("decision", req.GetDecision()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	if req.Precedence != nil && req.GetPrecedence() < 1 {
		return nil, s.toStatus(method, invalidf("precedence", "must be at least 1, not %d", req.GetPrecedence()))
	}
	// "" clears the override: the application's session duration applies.
	if req.SessionDuration != nil && req.GetSessionDuration() != "" {
		if sd, err = parseSessionDuration("session_duration", req.GetSessionDuration()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	hasRules := len(req.GetInclude())+len(req.GetRequire())+len(req.GetExclude()) > 0
	switch {
	case hasRules && !req.GetReplaceRules():
		return nil, s.toStatus(method, invalidf("replace_rules", "must be set to replace the include, require and exclude rules"))
	case req.GetReplaceRules() && len(req.GetInclude()) == 0:
		return nil, s.toStatus(method, invalidf("include", "at least one rule is required"))
	}
	now := s.now()
	var p *policy.Policy
	err = s.store.Update(func(tx *store.Tx) error {
		var err error
		if p, err = findPolicy(tx, req.GetId()); err != nil {
			return err
		}
		var changed []string
		if req.Name != nil {
			p.Name = req.GetName()
			changed = append(changed, "name")
		}
		if req.Decision != nil {
			p.Decision = dec
			changed = append(changed, "decision")
		}
		if req.Precedence != nil {
			p.Precedence = int(req.GetPrecedence())
			changed = append(changed, "precedence")
		}
		if req.SessionDuration != nil {
			p.SessionDuration = sd
			changed = append(changed, "session_duration")
		}
		if req.GetReplaceRules() {
			if err := setRules(tx, p, req.GetInclude(), req.GetRequire(), req.GetExclude()); err != nil {
				return err
			}
			changed = append(changed, "rules")
		}
		a, err := tx.App(p.ApplicationID)
		if err != nil {
			return fmt.Errorf("application %s of policy %s: %w", p.ApplicationID, p.ID, err)
		}
		siblings, err := appPolicies(tx, a.ID)
		if err != nil {
			return err
		}
		if err := checkSiblings(p, a, siblings); err != nil {
			return err
		}
		p.UpdatedAt = now
		if err := policy.ValidatePolicy(p); err != nil {
			return invalid("", err)
		}
		if err := tx.PutPolicy(p); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(p.ID, p.Name), "changed "+strings.Join(changed, ", "))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(p.ID, p.Name))
	return policyProto(p), nil
}

// DeletePolicy deletes a policy.
func (s *Server) DeletePolicy(ctx context.Context, req *adminv1.DeletePolicyRequest) (*adminv1.DeletePolicyResponse, error) {
	const method = "DeletePolicy"
	if err := checkPolicyRef(req.GetId()); err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	var p *policy.Policy
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if p, err = findPolicy(tx, req.GetId()); err != nil {
			return err
		}
		if err := tx.DeletePolicy(p.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(p.ID, p.Name), "application "+p.ApplicationID)
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(p.ID, p.Name))
	return &adminv1.DeletePolicyResponse{Id: p.ID}, nil
}

// appPolicies returns the policies of one application.
func appPolicies(tx *store.Tx, appID string) ([]*policy.Policy, error) {
	var ps []*policy.Policy
	err := tx.ForEachPolicy(appID, func(p *policy.Policy) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

// checkSiblings refuses a name or a precedence that another policy of the
// same application has.
func checkSiblings(p *policy.Policy, a *policy.Application, siblings []*policy.Policy) error {
	for _, o := range siblings {
		switch {
		case o.ID == p.ID:
		case o.Name == p.Name:
			return invalid("name", taken(store.ErrNameTaken, "application %q already has a policy named %q", a.Name, p.Name))
		case o.Precedence == p.Precedence:
			return invalid("precedence", taken(ErrPrecedenceTaken, "%d is the precedence of policy %q already", p.Precedence, o.Name))
		}
	}
	return nil
}

// setRules converts and sets the three rule lists of p, resolving service
// token references in tx.
func setRules(tx *store.Tx, p *policy.Policy, include, require, exclude []*adminv1.Rule) error {
	var err error
	if p.Include, err = rulesFromProto(tx, "include", include); err != nil {
		return err
	}
	if p.Require, err = rulesFromProto(tx, "require", require); err != nil {
		return err
	}
	p.Exclude, err = rulesFromProto(tx, "exclude", exclude)
	return err
}

// rulesFromProto converts rules. A service_token rule may name the token by
// id, client id or name; it is stored by id, as Cloudflare does, and must
// exist.
func rulesFromProto(tx *store.Tx, field string, in []*adminv1.Rule) ([]policy.Rule, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]policy.Rule, 0, len(in))
	for i, r := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		var pr policy.Rule
		switch sel := r.GetSelector().(type) {
		case *adminv1.Rule_ServiceToken:
			ref := sel.ServiceToken.GetTokenId()
			if ref == "" {
				return nil, invalidf(f+".service_token.token_id", "required: a token id, client id or name")
			}
			t, err := resolveToken(tx, ref)
			if err != nil {
				return nil, invalid(f+".service_token.token_id", err)
			}
			pr.ServiceToken = &policy.ServiceTokenRule{TokenID: t.ID}
		case *adminv1.Rule_AnyValidServiceToken:
			pr.AnyValidServiceToken = &struct{}{}
		case *adminv1.Rule_Ip:
			pr.IP = &policy.IPRule{IP: sel.Ip.GetIp()}
		case *adminv1.Rule_Principal:
			pr.Principal = &policy.PrincipalRule{Exact: sel.Principal.GetExact(), Prefix: sel.Principal.GetPrefix()}
		case *adminv1.Rule_Certificate:
			pr.Certificate = &struct{}{}
		case *adminv1.Rule_CommonName:
			pr.CommonName = &policy.CommonNameRule{CommonName: sel.CommonName.GetCommonName()}
		case *adminv1.Rule_Everyone:
			pr.Everyone = &struct{}{}
		default:
			return nil, invalidf(f, "no selector: set one of service_token, any_valid_service_token, ip, principal, certificate, common_name, everyone")
		}
		if err := policy.ValidRule(pr); err != nil {
			return nil, invalid(f, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

// resolveToken finds the token a rule names by id, client id or name.
func resolveToken(tx *store.Tx, ref string) (*tokens.ServiceToken, error) {
	var (
		t   *tokens.ServiceToken
		err error
	)
	switch {
	case tokens.ValidID(ref):
		t, err = tx.Token(ref)
	case tokens.ValidClientID(ref):
		t, err = tx.TokenByClientID(ref)
	default:
		t, err = tx.TokenByName(ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("service token %s: %w", quote(ref), store.ErrNotFound)
	}
	return t, err
}

// parseDecision checks a policy decision.
func parseDecision(field, s string) (policy.Decision, error) {
	switch d := policy.Decision(s); d {
	case policy.Allow, policy.Deny, policy.NonIdentity, policy.Bypass:
		return d, nil
	case "":
		return "", invalidf(field, "required: allow, deny, non_identity or bypass")
	}
	return "", invalidf(field, "%s is not one of allow, deny, non_identity, bypass", quote(s))
}

func checkPolicyRef(id string) error {
	if id == "" {
		return invalidf("id", "required: a policy id")
	}
	if !tokens.ValidID(id) {
		return invalidf("id", "not a policy id (a UUID)")
	}
	return nil
}

func findPolicy(tx *store.Tx, id string) (*policy.Policy, error) {
	p, err := tx.Policy(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("policy %q: %w", id, store.ErrNotFound)
	}
	return p, err
}
