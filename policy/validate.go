package policy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// MinSessionDuration and MaxSessionDuration bound an application's or
	// policy's session JWT lifetime. The maximum is one month, Cloudflare's
	// limit (it equals tokens.MaxSessionDuration; policy imports nothing
	// from gatehouse so it keeps its own copy).
	MinSessionDuration = time.Minute
	MaxSessionDuration = 730 * time.Hour
	// DefaultSessionDuration is what callers creating an application should
	// use when none is given (Cloudflare's default).
	DefaultSessionDuration = 24 * time.Hour
	// MaxNameLen is the longest application or policy name, in characters.
	MaxNameLen = 255
	// maxRuleValueLen bounds the strings inside rules.
	maxRuleValueLen = 1024
	// maxHeaderNameLen bounds ServiceTokenHeader.
	maxHeaderNameLen = 255
)

// reservedHeaders may not be used as an application's ServiceTokenHeader:
// gatehouse reads or writes them itself.
var reservedHeaders = map[string]bool{
	"cf-access-client-id":     true,
	"cf-access-client-secret": true,
	"cf-access-jwt-assertion": true,
	"cookie":                  true,
	"host":                    true,
}

// ValidateApplication checks an application record: a name of 1–255
// printable characters, at least one domain, each accepted by ParseDomain
// and none repeated, an AUD of 64 lower-case hex characters, a session
// duration between MinSessionDuration and MaxSessionDuration, and, if set,
// a ServiceTokenHeader that is a lower-case HTTP field name (RFC 9110
// token) other than a reserved one. Errors wrap ErrInvalidApplication and
// name the field. It does not check ID: the caller assigns it.
func ValidateApplication(a *Application) error {
	if a == nil {
		return fmt.Errorf("%w: nil", ErrInvalidApplication)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidApplication, fmt.Sprintf(format, args...))
	}
	if why := checkName(a.Name); why != "" {
		return bad("name: %s", why)
	}
	if len(a.Domains) == 0 {
		return bad("domains: at least one domain is required")
	}
	seen := make(map[string]int, len(a.Domains))
	for i, d := range a.Domains {
		h, p, err := ParseDomain(d)
		if err != nil {
			return fmt.Errorf("%w: domains[%d]: %w", ErrInvalidApplication, i, err)
		}
		key := h + p
		if j, dup := seen[key]; dup {
			return bad("domains[%d]: %s is the same as domains[%d]", i, quoteShort(d), j)
		}
		seen[key] = i
	}
	if !isLowerHex(a.AUD, 64) {
		return bad("aud: must be 64 lower-case hex characters")
	}
	if why := checkSession(a.SessionDuration); why != "" {
		return bad("session_duration: %s", why)
	}
	if a.ServiceTokenHeader != "" {
		if why := checkHeaderName(a.ServiceTokenHeader); why != "" {
			return bad("service_token_header: %s", why)
		}
	}
	return nil
}

// ValidatePolicy checks a policy record: a name of 1–255 printable
// characters, an application_id, a known decision, at least one include
// rule, every rule valid (ValidRule), no service-token selector in a bypass
// policy (bypass is decided before any credential is looked at), and a
// session duration that is zero (use the application's) or between
// MinSessionDuration and MaxSessionDuration. Errors wrap ErrInvalidPolicy
// and name the field, e.g. "include[1]: ...".
func ValidatePolicy(p *Policy) error {
	if p == nil {
		return fmt.Errorf("%w: nil", ErrInvalidPolicy)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	if why := checkName(p.Name); why != "" {
		return bad("name: %s", why)
	}
	if p.ApplicationID == "" {
		return bad("application_id: required")
	}
	switch p.Decision {
	case Allow, Deny, NonIdentity, Bypass:
	case "":
		return bad("decision: required (allow, deny, non_identity or bypass)")
	default:
		return bad("decision: unknown %s (want allow, deny, non_identity or bypass)", quoteShort(string(p.Decision)))
	}
	if len(p.Include) == 0 {
		return bad("include: at least one rule is required")
	}
	for _, list := range []struct {
		name  string
		rules []Rule
	}{{"include", p.Include}, {"require", p.Require}, {"exclude", p.Exclude}} {
		for i, r := range list.rules {
			if err := ValidRule(r); err != nil {
				return fmt.Errorf("%w: %s[%d]: %w", ErrInvalidPolicy, list.name, i, err)
			}
			if p.Decision == Bypass && (r.ServiceToken != nil || r.AnyValidServiceToken != nil) {
				return bad("%s[%d]: a bypass policy cannot use %s: bypass is decided before credentials are checked; use non_identity",
					list.name, i, r.selectors())
			}
		}
	}
	if p.SessionDuration != 0 {
		if why := checkSession(p.SessionDuration); why != "" {
			return bad("session_duration: %s (or 0 to use the application's)", why)
		}
	}
	return nil
}

// ValidRule checks that exactly one selector is set and that its value is
// usable: a non-empty token id, a CIDR (or single address) without host
// bits set and not IPv4-mapped, a principal with exactly one of exact and
// prefix, a non-empty common name. Errors wrap ErrInvalidRule.
func ValidRule(r Rule) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRule, fmt.Sprintf(format, args...))
	}
	switch n := r.count(); {
	case n == 0:
		return bad("no selector set (want one of service_token, any_valid_service_token, ip, principal, certificate, common_name, everyone)")
	case n > 1:
		return bad("more than one selector set (%s): use one per rule", r.selectors())
	}
	switch {
	case r.ServiceToken != nil:
		if why := checkValue(r.ServiceToken.TokenID); why != "" {
			return bad("service_token.token_id: %s", why)
		}
	case r.IP != nil:
		if _, err := parseCIDR(r.IP.IP); err != nil {
			return bad("ip.ip: %v", err)
		}
	case r.Principal != nil:
		ex, pre := r.Principal.Exact, r.Principal.Prefix
		switch {
		case ex == "" && pre == "":
			return bad("principal: set exact or prefix")
		case ex != "" && pre != "":
			return bad("principal: set exact or prefix, not both")
		}
		if why := checkValue(ex + pre); why != "" {
			return bad("principal: %s", why)
		}
	case r.CommonName != nil:
		if why := checkValue(r.CommonName.CommonName); why != "" {
			return bad("common_name.common_name: %s", why)
		}
	}
	return nil
}

// NewAUD returns a new application audience tag: 64 lower-case hex
// characters from crypto/rand.
func NewAUD() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("policy: generating aud: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// parseCIDR parses an ip rule: a CIDR in canonical form, or a single
// address (taken as /32 or /128).
func parseCIDR(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s is not a CIDR or IP address", quoteShort(s))
		}
		s = a.String() + "/" + fmt.Sprint(a.BitLen())
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not a CIDR or IP address", quoteShort(s))
	}
	if p.Addr().Is4In6() {
		// Source addresses are unmapped before matching, so a mapped
		// prefix could never match.
		return netip.Prefix{}, fmt.Errorf("%s is IPv4-mapped; write the IPv4 prefix", quoteShort(s))
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", quoteShort(s), m)
	}
	return p, nil
}

// count returns how many selectors are set.
func (r Rule) count() int {
	n := 0
	for _, set := range [...]bool{r.ServiceToken != nil, r.AnyValidServiceToken != nil, r.IP != nil,
		r.Principal != nil, r.Certificate != nil, r.CommonName != nil, r.Everyone != nil} {
		if set {
			n++
		}
	}
	return n
}

// selectors lists the set selectors' JSON names, comma-separated.
func (r Rule) selectors() string {
	var names []string
	for _, s := range [...]struct {
		set  bool
		name string
	}{
		{r.ServiceToken != nil, "service_token"},
		{r.AnyValidServiceToken != nil, "any_valid_service_token"},
		{r.IP != nil, "ip"},
		{r.Principal != nil, "principal"},
		{r.Certificate != nil, "certificate"},
		{r.CommonName != nil, "common_name"},
		{r.Everyone != nil, "everyone"},
	} {
		if s.set {
			names = append(names, s.name)
		}
	}
	return strings.Join(names, ", ")
}

// checkName mirrors tokens.ValidateName: 1–255 characters, valid UTF-8,
// printable, no leading or trailing space.
func checkName(s string) string {
	switch {
	case s == "":
		return "required"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case utf8.RuneCountInString(s) > MaxNameLen:
		return fmt.Sprintf("longer than %d characters", MaxNameLen)
	case strings.TrimSpace(s) != s:
		return "leading or trailing space"
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("non-printable character %U at byte %d", r, i)
		}
	}
	return ""
}

// checkValue checks a rule's string value: it is compared byte for byte, so
// it must be non-empty, bounded, valid UTF-8 and free of control
// characters.
func checkValue(s string) string {
	switch {
	case s == "":
		return "required"
	case len(s) > maxRuleValueLen:
		return fmt.Sprintf("longer than %d bytes", maxRuleValueLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}

func checkSession(d time.Duration) string {
	switch {
	case d < MinSessionDuration:
		return fmt.Sprintf("%v is shorter than the minimum %v", d, MinSessionDuration)
	case d > MaxSessionDuration:
		return fmt.Sprintf("%v is longer than the maximum %v (one month)", d, MaxSessionDuration)
	}
	return ""
}

// checkHeaderName checks an HTTP field name (RFC 9110 token), stored
// lower-case because Envoy hands headers over with lower-case keys.
func checkHeaderName(h string) string {
	if len(h) > maxHeaderNameLen {
		return fmt.Sprintf("longer than %d bytes", maxHeaderNameLen)
	}
	if h[0] == ':' {
		return fmt.Sprintf("%s is a pseudo-header", quoteShort(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			return fmt.Sprintf("%s must be lower-case", quoteShort(h))
		}
		if !isTchar(c) {
			return fmt.Sprintf("%s is not an HTTP header name: invalid character %q", quoteShort(h), c)
		}
	}
	if reservedHeaders[h] {
		return fmt.Sprintf("%s is reserved", quoteShort(h))
	}
	return ""
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
