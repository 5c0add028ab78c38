package policy

import "slices"

// PolicyNamesToken reports whether any rule of p (include, require or
// exclude) names the service token with that id.
func PolicyNamesToken(p *Policy, tokenID string) bool {
	if p == nil || tokenID == "" {
		return false
	}
	for _, list := range [...][]Rule{p.Include, p.Require, p.Exclude} {
		for _, r := range list {
			if namesToken(r, tokenID) {
				return true
			}
		}
	}
	return false
}

// RemoveToken prepares p for the deletion of a service token (token
// delete --force). Once the token is gone no request carries its id, so:
//
//   - include and exclude rules naming it can never match again and are
//     dropped (the policy then decides exactly as before); changed reports
//     whether any was;
//   - a require rule naming it can never be satisfied again, so the policy
//     can never match; such rules are kept, since dropping them would
//     widen the policy, and emptied is true;
//   - a policy left with no include rule can never match either (and would
//     fail ValidatePolicy), so emptied is true.
//
// When emptied is true the caller must delete the policy, in the same
// transaction as the token.
func RemoveToken(p *Policy, tokenID string) (changed, emptied bool) {
	if p == nil || tokenID == "" {
		return false, false
	}
	for _, r := range p.Require {
		if namesToken(r, tokenID) {
			emptied = true
		}
	}
	var c1, c2 bool
	p.Include, c1 = dropToken(p.Include, tokenID)
	p.Exclude, c2 = dropToken(p.Exclude, tokenID)
	return c1 || c2, emptied || len(p.Include) == 0
}

func namesToken(r Rule, tokenID string) bool {
	return r.ServiceToken != nil && r.ServiceToken.TokenID == tokenID
}

// dropToken returns rs without the rules naming tokenID, in a new slice if
// any were dropped (the old one may be shared).
func dropToken(rs []Rule, tokenID string) ([]Rule, bool) {
	n := 0
	for _, r := range rs {
		if namesToken(r, tokenID) {
			n++
		}
	}
	if n == 0 {
		return rs, false
	}
	out := make([]Rule, 0, len(rs)-n)
	for _, r := range rs {
		if !namesToken(r, tokenID) {
			out = append(out, r)
		}
	}
	return out, true
}

// TokenIDs lists, once each and in first-use order, the service tokens that
// p's rules (include, require or exclude) name by id.
func TokenIDs(p *Policy) []string {
	if p == nil {
		return nil
	}
	var ids []string
	for _, list := range [...][]Rule{p.Include, p.Require, p.Exclude} {
		for _, r := range list {
			if r.ServiceToken != nil && r.ServiceToken.TokenID != "" && !slices.Contains(ids, r.ServiceToken.TokenID) {
				ids = append(ids, r.ServiceToken.TokenID)
			}
		}
	}
	return ids
}
