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

// defaultSessionDuration is an application's session JWT lifetime when the
// request names none, as in Cloudflare Access.
const defaultSessionDuration = policy.DefaultSessionDuration

// ErrDomainTaken is returned when a domain is already an application's: two
// applications on one domain would make routing depend on creation order.
var ErrDomainTaken = errors.New("already used by another application")

// CreateApplication creates an application with a new AUD tag.
func (s *Server) CreateApplication(ctx context.Context, req *adminv1.CreateApplicationRequest) (*adminv1.Application, error) {
	const method = "CreateApplication"
	a, err := newApplication(req)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	now := s.now()
	a.CreatedAt, a.UpdatedAt = now, now
	obj := objectName(a.ID, a.Name)
	err = s.store.Update(func(tx *store.Tx) error {
		if err := checkDomainsFree(tx, a); err != nil {
			return err
		}
		if err := tx.PutApp(a); err != nil {
			return appPutError(a, err)
		}
		return s.audit(ctx, tx, now, method, obj, "domains "+strings.Join(a.Domains, " "))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, obj)
	return appProto(a), nil
}

// newApplication validates a create request and builds the application.
func newApplication(req *adminv1.CreateApplicationRequest) (*policy.Application, error) {
	if err := checkName("name", req.GetName()); err != nil {
		return nil, err
	}
	domains, err := parseDomains("domains", req.GetDomains())
	if err != nil {
		return nil, err
	}
	sd := defaultSessionDuration
	if req.GetSessionDuration() != "" {
		if sd, err = parseSessionDuration("session_duration", req.GetSessionDuration()); err != nil {
			return nil, err
		}
	}
	aud, err := policy.NewAUD()
	if err != nil {
		return nil, err
	}
	a := &policy.Application{
		ID:                 tokens.NewID(),
		Name:               req.GetName(),
		Domains:            domains,
		AUD:                aud,
		SessionDuration:    sd,
		ServiceTokenHeader: strings.ToLower(req.GetServiceTokenHeader()),
		SessionCookie:      req.SessionCookie == nil || req.GetSessionCookie(),
		DryRun:             req.GetDryRun(),
	}
	if err := policy.ValidateApplication(a); err != nil {
		return nil, invalid("", err)
	}
	return a, nil
}

// ListApplications lists applications by name.
func (s *Server) ListApplications(ctx context.Context, req *adminv1.ListApplicationsRequest) (*adminv1.ListApplicationsResponse, error) {
	var apps []*policy.Application
	err := s.store.View(func(tx *store.Tx) error {
		return tx.ForEachApp(func(a *policy.Application) error {
			apps = append(apps, a)
			return nil
		})
	})
	if err != nil {
		return nil, s.toStatus("ListApplications", err)
	}
	slices.SortFunc(apps, func(a, b *policy.Application) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	resp := &adminv1.ListApplicationsResponse{Applications: make([]*adminv1.Application, 0, len(apps))}
	for _, a := range apps {
		resp.Applications = append(resp.Applications, appProto(a))
	}
	return resp, nil
}

// GetApplication fetches an application by id or name.
func (s *Server) GetApplication(ctx context.Context, req *adminv1.GetApplicationRequest) (*adminv1.Application, error) {
	const method = "GetApplication"
	if req.GetId() == "" {
		return nil, s.toStatus(method, invalidf("id", "required: an application id or name"))
	}
	var a *policy.Application
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		a, err = findApp(tx, req.GetId())
		return err
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return appProto(a), nil
}

// UpdateApplication changes the fields that are set; domains, when given,
// replace the list.
func (s *Server) UpdateApplication(ctx context.Context, req *adminv1.UpdateApplicationRequest) (*adminv1.Application, error) {
	const method = "UpdateApplication"
	if req.GetId() == "" {
		return nil, s.toStatus(method, invalidf("id", "required: an application id or name"))
	}
	if req.Name != nil {
		if err := checkName("name", req.GetName()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	var (
		domains []string
		sd      time.Duration
		err     error
	)
	if len(req.GetDomains()) > 0 {
		if domains, err = parseDomains("domains", req.GetDomains()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	if req.SessionDuration != nil {
		if sd, err = parseSessionDuration("session_duration", req.GetSessionDuration()); err != nil {
			return nil, s.toStatus(method, err)
		}
	}
	now := s.now()
	var a *policy.Application
	err = s.store.Update(func(tx *store.Tx) error {
		var err error
		if a, err = findApp(tx, req.GetId()); err != nil {
			return err
		}
		var changed []string
		if req.Name != nil {
			a.Name = req.GetName()
			changed = append(changed, "name")
		}
		if domains != nil {
			a.Domains = domains
			changed = append(changed, "domains")
		}
		if req.SessionDuration != nil {
			a.SessionDuration = sd
			changed = append(changed, "session_duration")
		}
		if req.ServiceTokenHeader != nil {
			a.ServiceTokenHeader = strings.ToLower(req.GetServiceTokenHeader())
			changed = append(changed, "service_token_header")
		}
		if req.SessionCookie != nil {
			a.SessionCookie = req.GetSessionCookie()
			changed = append(changed, "session_cookie")
		}
		if req.DryRun != nil {
			a.DryRun = req.GetDryRun()
			changed = append(changed, "dry_run")
		}
		a.UpdatedAt = now
		if err := policy.ValidateApplication(a); err != nil {
			return invalid("", err)
		}
		if err := checkDomainsFree(tx, a); err != nil {
			return err
		}
		if err := tx.PutApp(a); err != nil {
			return appPutError(a, err)
		}
		return s.audit(ctx, tx, now, method, objectName(a.ID, a.Name), "changed "+strings.Join(changed, ", "))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(a.ID, a.Name))
	return appProto(a), nil
}

// DeleteApplication deletes an application and its policies.
func (s *Server) DeleteApplication(ctx context.Context, req *adminv1.DeleteApplicationRequest) (*adminv1.DeleteApplicationResponse, error) {
	const method = "DeleteApplication"
	if req.GetId() == "" {
		return nil, s.toStatus(method, invalidf("id", "required: an application id or name"))
	}
	now := s.now()
	var (
		a    *policy.Application
		resp = &adminv1.DeleteApplicationResponse{}
	)
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if a, err = findApp(tx, req.GetId()); err != nil {
			return err
		}
		resp.Id = a.ID
		err = tx.ForEachPolicy(a.ID, func(p *policy.Policy) error {
			resp.PoliciesDeleted = append(resp.PoliciesDeleted, p.ID)
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteApp(a.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(a.ID, a.Name),
			fmt.Sprintf("%d policies deleted", len(resp.PoliciesDeleted)))
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(a.ID, a.Name))
	return resp, nil
}

// RevokeApplicationSessions rejects every session JWT issued for the
// application until now.
func (s *Server) RevokeApplicationSessions(ctx context.Context, req *adminv1.RevokeApplicationSessionsRequest) (*adminv1.Application, error) {
	const method = "RevokeApplicationSessions"
	if req.GetId() == "" {
		return nil, s.toStatus(method, invalidf("id", "required: an application id or name"))
	}
	now := s.now()
	var a *policy.Application
	err := s.store.Update(func(tx *store.Tx) error {
		var err error
		if a, err = findApp(tx, req.GetId()); err != nil {
			return err
		}
		a.SessionsRevokedAt = now
		a.UpdatedAt = now
		if err := tx.PutApp(a); err != nil {
			return err
		}
		return s.audit(ctx, tx, now, method, objectName(a.ID, a.Name), "sessions issued until now revoked")
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	s.logChange(ctx, method, objectName(a.ID, a.Name))
	return appProto(a), nil
}

// findApp looks an application up by id, then by name.
func findApp(tx *store.Tx, ref string) (*policy.Application, error) {
	a, err := tx.App(ref)
	if errors.Is(err, store.ErrNotFound) {
		a, err = tx.AppByName(ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("application %s: %w", quote(ref), store.ErrNotFound)
	}
	return a, err
}

// parseDomains validates and normalises a domain list.
func parseDomains(field string, in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, invalidf(field, `at least one is required, such as "app.example.com" or "example.com/api"`)
	}
	out := make([]string, 0, len(in))
	for i, d := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		host, prefix, err := policy.ParseDomain(d)
		if err != nil {
			return nil, invalid(f, err)
		}
		n := joinDomain(host, prefix)
		if j := slices.Index(out, n); j >= 0 {
			return nil, invalidf(f, "%s is the same as %s[%d]", quote(d), field, j)
		}
		out = append(out, n)
	}
	return out, nil
}

// joinDomain is the normal form of a parsed domain: the host alone when the
// prefix covers every path.
func joinDomain(host, prefix string) string {
	if prefix == "" || prefix == "/" {
		return host
	}
	return host + prefix
}

// checkDomainsFree refuses a domain that another application has.
func checkDomainsFree(tx *store.Tx, a *policy.Application) error {
	return tx.ForEachApp(func(o *policy.Application) error {
		if o.ID == a.ID {
			return nil
		}
		for i, d := range a.Domains {
			if slices.Contains(o.Domains, d) {
				return invalid(fmt.Sprintf("domains[%d]", i), taken(ErrDomainTaken, "%q is a domain of application %q already", d, o.Name))
			}
		}
		return nil
	})
}

// appPutError names the field behind a uniqueness error of PutApp.
func appPutError(a *policy.Application, err error) error {
	if errors.Is(err, store.ErrNameTaken) {
		return invalid("name", taken(store.ErrNameTaken, "an application named %q already exists", a.Name))
	}
	return err
}

// parseSessionDuration parses a session JWT lifetime: 1m to
// policy.MaxSessionDuration, like Cloudflare's one month cap.
func parseSessionDuration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidf(field, `%s is not a Go duration such as "24h"`, quote(s))
	}
	if d < policy.MinSessionDuration || d > policy.MaxSessionDuration {
		return 0, invalidf(field, "%s is out of range: 1m to %s", quote(s), fmtDuration(policy.MaxSessionDuration))
	}
	return d, nil
}
