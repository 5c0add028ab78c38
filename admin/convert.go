package admin

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse-dev/gatehouse/policy"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// ts converts a time; the zero time (unset) is nil.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fmtDuration formats a positive duration the short way ("24h", "90m");
// zero is "".
func fmtDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return tokens.Duration(d).String()
}

// tokenProto converts a token. secret is set only by create and rotate.
func tokenProto(t *tokens.ServiceToken, secret string, now time.Time) *adminv1.ServiceToken {
	p := &adminv1.ServiceToken{
		Id:                  t.ID,
		Name:                t.Name,
		ClientId:            t.ClientID,
		ClientSecret:        secret,
		Enabled:             t.Enabled,
		CreatedAt:           ts(t.CreatedAt),
		UpdatedAt:           ts(t.UpdatedAt),
		ExpiresAt:           ts(t.ExpiresAt),
		Duration:            t.Duration.String(),
		LastSeenAt:          ts(t.LastSeenAt),
		ClientSecretVersion: t.SecretVersion,
	}
	// Only while the previous secret is still accepted.
	if t.Enabled && now.Before(t.PreviousSecretExpiresAt) {
		p.PreviousClientSecretExpiresAt = ts(t.PreviousSecretExpiresAt)
	}
	return p
}

func appProto(a *policy.Application) *adminv1.Application {
	return &adminv1.Application{
		Id:                 a.ID,
		Name:               a.Name,
		Domains:            append([]string(nil), a.Domains...),
		Aud:                a.AUD,
		SessionDuration:    fmtDuration(a.SessionDuration),
		ServiceTokenHeader: a.ServiceTokenHeader,
		SessionCookie:      a.SessionCookie,
		SessionsRevokedAt:  ts(a.SessionsRevokedAt),
		CreatedAt:          ts(a.CreatedAt),
		UpdatedAt:          ts(a.UpdatedAt),
		DryRun:             a.DryRun,
	}
}

func policyProto(p *policy.Policy) *adminv1.Policy {
	return &adminv1.Policy{
		Id:              p.ID,
		ApplicationId:   p.ApplicationID,
		Name:            p.Name,
		Decision:        string(p.Decision),
		Precedence:      int32(p.Precedence),
		Include:         rulesProto(p.Include),
		Require:         rulesProto(p.Require),
		Exclude:         rulesProto(p.Exclude),
		SessionDuration: fmtDuration(p.SessionDuration),
		CreatedAt:       ts(p.CreatedAt),
		UpdatedAt:       ts(p.UpdatedAt),
	}
}

func rulesProto(rs []policy.Rule) []*adminv1.Rule {
	if len(rs) == 0 {
		return nil
	}
	out := make([]*adminv1.Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, ruleProto(r))
	}
	return out
}

func ruleProto(r policy.Rule) *adminv1.Rule {
	switch {
	case r.ServiceToken != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: r.ServiceToken.TokenID}}}
	case r.AnyValidServiceToken != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}}
	case r.IP != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_Ip{Ip: &adminv1.IPRule{Ip: r.IP.IP}}}
	case r.Principal != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_Principal{Principal: &adminv1.PrincipalRule{Exact: r.Principal.Exact, Prefix: r.Principal.Prefix}}}
	case r.Certificate != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_Certificate{Certificate: &adminv1.Empty{}}}
	case r.CommonName != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_CommonName{CommonName: &adminv1.CommonNameRule{CommonName: r.CommonName.CommonName}}}
	case r.Everyone != nil:
		return &adminv1.Rule{Selector: &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}}
	}
	return &adminv1.Rule{}
}

func signingKeyProto(k *tokens.SealedKey, active bool) *adminv1.SigningKey {
	return &adminv1.SigningKey{
		Kid:         k.KID,
		Alg:         string(k.Alg),
		CreatedAt:   ts(k.CreatedAt),
		Active:      active,
		RetiredAt:   ts(k.RetiredAt),
		RemoveAfter: ts(k.RemoveAfter),
		ActiveFrom:  ts(k.ActiveFrom),
	}
}

// adminKeyProto converts an admin key; key is set only by CreateAdminKey.
func adminKeyProto(k *store.AdminKey, key string) *adminv1.AdminKey {
	return &adminv1.AdminKey{
		Id:        k.ID,
		Name:      k.Name,
		ReadOnly:  k.ReadOnly,
		CreatedAt: ts(k.CreatedAt),
		RevokedAt: ts(k.RevokedAt),
		Key:       key,
	}
}

func auditProto(e *store.AuditEvent) *adminv1.AuditEvent {
	return &adminv1.AuditEvent{
		Time:     ts(e.Time),
		AdminKey: e.AdminKey,
		Method:   e.Method,
		Object:   e.Object,
		Outcome:  e.Outcome,
		Message:  e.Message,
	}
}
