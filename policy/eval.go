package policy

import (
	"net/netip"
	"strconv"
	"strings"
)

// Subject is what is known about a request when its policies are
// evaluated. The zero value is an anonymous request from an unknown
// address.
type Subject struct {
	TokenID        string     // "" when no service token authenticated
	SourceIP       netip.Addr // invalid when unknown
	Principal      string     // source.principal ("" when none)
	HasCertificate bool
	CommonName     string
}

// Result is the outcome of evaluating an application's policies.
type Result struct {
	// Decision is "" when no policy matched: the caller denies (Access is
	// deny-by-default).
	Decision Decision
	// Policy is the policy that decided (shared; do not modify).
	Policy *Policy
	// Rule names the include rule that matched, e.g. "include[1]
	// service_token".
	Rule string
}

// Bypass evaluates only the bypass policies, in order, and reports the
// first match. Callers run it before looking at credentials.
func (a *App) Bypass(s *Subject) (Result, bool) {
	if a == nil {
		return Result{}, false
	}
	if s == nil {
		s = &anonymous
	}
	if r, ok := first(a.bypass, s); ok {
		return r, true
	}
	return Result{}, false
}

// Evaluate evaluates the non_identity policies, then the allow and deny
// policies, each in order, and returns the first match. It does not look
// at bypass policies (see Bypass). It does not allocate.
func (a *App) Evaluate(s *Subject) Result {
	if a == nil {
		return Result{}
	}
	if s == nil {
		s = &anonymous
	}
	if r, ok := first(a.nonIdentity, s); ok {
		return r
	}
	r, _ := first(a.allowDeny, s)
	return r
}

var anonymous Subject

func first(ps []compiledPolicy, s *Subject) (Result, bool) {
	for i := range ps {
		if rule, ok := ps[i].match(s); ok {
			return Result{Decision: ps[i].p.Decision, Policy: ps[i].p, Rule: rule}, true
		}
	}
	return Result{}, false
}

// compiledPolicy is a policy with its rules ready to match.
type compiledPolicy struct {
	p                         *Policy
	include, require, exclude []compiledRule
}

// match reports whether the policy matches s: some include rule matches,
// every require rule matches and no exclude rule matches. It returns the
// matching include rule's label.
func (cp *compiledPolicy) match(s *Subject) (string, bool) {
	rule := ""
	for i := range cp.include {
		if cp.include[i].match(s) {
			rule = cp.include[i].label
			break
		}
	}
	if rule == "" {
		return "", false
	}
	for i := range cp.require {
		if !cp.require[i].match(s) {
			return "", false
		}
	}
	for i := range cp.exclude {
		if cp.exclude[i].match(s) {
			return "", false
		}
	}
	return rule, true
}

type selector uint8

const (
	selServiceToken selector = iota + 1
	selAnyValidServiceToken
	selIP
	selPrincipalExact
	selPrincipalPrefix
	selCertificate
	selCommonName
	selEveryone
)

// compiledRule is a validated Rule: the selector, its value, a parsed CIDR
// and a label precomputed so that Evaluate does not format anything.
type compiledRule struct {
	sel    selector
	value  string
	prefix netip.Prefix
	label  string
}

func (r *compiledRule) match(s *Subject) bool {
	switch r.sel {
	case selServiceToken:
		return s.TokenID != "" && s.TokenID == r.value
	case selAnyValidServiceToken:
		return s.TokenID != ""
	case selIP:
		ip := s.SourceIP.Unmap().WithZone("")
		return ip.IsValid() && r.prefix.Contains(ip)
	case selPrincipalExact:
		return s.Principal != "" && s.Principal == r.value
	case selPrincipalPrefix:
		return s.Principal != "" && strings.HasPrefix(s.Principal, r.value)
	case selCertificate:
		return s.HasCertificate
	case selCommonName:
		return s.CommonName != "" && s.CommonName == r.value
	case selEveryone:
		return true
	}
	return false
}

// compilePolicy compiles a validated policy.
func compilePolicy(p *Policy) compiledPolicy {
	return compiledPolicy{
		p:       p,
		include: compileRules("include", p.Include),
		require: compileRules("require", p.Require),
		exclude: compileRules("exclude", p.Exclude),
	}
}

func compileRules(list string, rs []Rule) []compiledRule {
	if len(rs) == 0 {
		return nil
	}
	out := make([]compiledRule, len(rs))
	for i, r := range rs {
		c := &out[i]
		switch {
		case r.ServiceToken != nil:
			c.sel, c.value = selServiceToken, r.ServiceToken.TokenID
		case r.AnyValidServiceToken != nil:
			c.sel = selAnyValidServiceToken
		case r.IP != nil:
			c.sel = selIP
			c.prefix, _ = parseCIDR(r.IP.IP) // validated
		case r.Principal != nil && r.Principal.Exact != "":
			c.sel, c.value = selPrincipalExact, r.Principal.Exact
		case r.Principal != nil:
			c.sel, c.value = selPrincipalPrefix, r.Principal.Prefix
		case r.Certificate != nil:
			c.sel = selCertificate
		case r.CommonName != nil:
			c.sel, c.value = selCommonName, r.CommonName.CommonName
		case r.Everyone != nil:
			c.sel = selEveryone
		}
		c.label = list + "[" + strconv.Itoa(i) + "] " + r.selectors()
	}
	return out
}
