package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Engine is the compiled, immutable form of a set of applications and
// policies: a routing index and, per application, its policies in
// evaluation order. It is safe for concurrent use; to change anything,
// Compile a new one and publish it.
type Engine struct {
	apps   []*App // sorted by name
	byID   map[string]*App
	byName map[string]*App
	// exact indexes hosts without a wildcard; wildcard indexes
	// "*.example.com" under "example.com".
	exact    map[string]*hostRoutes
	wildcard map[string]*hostRoutes
	// maxWildcard is the longest key in wildcard: longer suffixes of a
	// request host are skipped without a map lookup, so a host made of
	// thousands of labels costs one pass over it, not one hash per label.
	maxWildcard int
}

// App is a compiled application: the record (a private copy; do not modify
// it) and its policies in evaluation order.
type App struct {
	App *Application

	bypass      []compiledPolicy
	nonIdentity []compiledPolicy
	allowDeny   []compiledPolicy
}

// hostRoutes holds the applications of one host (or one wildcard), by path
// prefix.
type hostRoutes struct {
	root *App // prefix "/"
	// prefixes maps every other prefix ("/api", no trailing slash) to its
	// application. Route looks up the request path cut at each '/' from
	// the longest candidate down, so it costs a few map lookups however
	// many prefixes the host has.
	prefixes map[string]*App
	maxLen   int // longest key in prefixes
}

// Compile validates apps and policies and builds the Engine. It copies what
// it keeps, so the caller may reuse the records. Every record that fails
// validation, every duplicate id or name, every host and path prefix
// claimed by two applications and every policy naming an unknown
// application is reported, joined into one error that names each record.
func Compile(apps []*Application, policies []*Policy) (*Engine, error) {
	e := &Engine{
		byID:     make(map[string]*App, len(apps)),
		byName:   make(map[string]*App, len(apps)),
		exact:    make(map[string]*hostRoutes, len(apps)),
		wildcard: make(map[string]*hostRoutes),
	}
	var errs []error
	failed := make(map[string]bool) // ids of applications reported as broken
	for i, a := range apps {
		if a == nil {
			errs = append(errs, fmt.Errorf("%w: applications[%d]: nil", ErrInvalidApplication, i))
			continue
		}
		label := recordLabel("application", a.Name, a.ID)
		if err := ValidateApplication(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			failed[a.ID] = true
			continue
		}
		if a.ID == "" {
			errs = append(errs, fmt.Errorf("%s: %w: id: required", label, ErrInvalidApplication))
			continue
		}
		if prev := e.byID[a.ID]; prev != nil {
			errs = append(errs, fmt.Errorf("%s: %w: same id as application %s", label, ErrConflict, quoteShort(prev.App.Name)))
			continue
		}
		if prev := e.byName[a.Name]; prev != nil {
			errs = append(errs, fmt.Errorf("%s: %w: same name as application id %s", label, ErrConflict, quoteShort(prev.App.ID)))
			continue
		}
		app := &App{App: cloneApplication(a)}
		e.byID[a.ID] = app
		e.byName[a.Name] = app
		e.apps = append(e.apps, app)
		for j, d := range app.App.Domains {
			if err := e.addRoute(app, d); err != nil {
				errs = append(errs, fmt.Errorf("%s: domains[%d]: %w", label, j, err))
			}
		}
	}

	policyIDs := make(map[string]bool, len(policies))
	for i, p := range policies {
		if p == nil {
			errs = append(errs, fmt.Errorf("%w: policies[%d]: nil", ErrInvalidPolicy, i))
			continue
		}
		label := recordLabel("policy", p.Name, p.ID)
		if err := ValidatePolicy(p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		if p.ID == "" {
			errs = append(errs, fmt.Errorf("%s: %w: id: required", label, ErrInvalidPolicy))
			continue
		}
		if policyIDs[p.ID] {
			errs = append(errs, fmt.Errorf("%s: %w: duplicate policy id", label, ErrConflict))
			continue
		}
		policyIDs[p.ID] = true
		app := e.byID[p.ApplicationID]
		if app == nil {
			if !failed[p.ApplicationID] { // else already reported
				errs = append(errs, fmt.Errorf("%s: %w: application_id %s", label, ErrUnknownApplication, quoteShort(p.ApplicationID)))
			}
			continue
		}
		cp := compilePolicy(clonePolicy(p))
		switch p.Decision {
		case Bypass:
			app.bypass = append(app.bypass, cp)
		case NonIdentity:
			app.nonIdentity = append(app.nonIdentity, cp)
		default:
			app.allowDeny = append(app.allowDeny, cp)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	for _, app := range e.apps {
		slices.SortFunc(app.bypass, comparePolicies)
		slices.SortFunc(app.nonIdentity, comparePolicies)
		slices.SortFunc(app.allowDeny, comparePolicies)
	}
	slices.SortFunc(e.apps, func(a, b *App) int {
		return cmp.Or(strings.Compare(a.App.Name, b.App.Name), strings.Compare(a.App.ID, b.App.ID))
	})
	return e, nil
}

// addRoute registers one of app's (already validated) domains.
func (e *Engine) addRoute(app *App, domain string) error {
	host, prefix, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	table, key := e.exact, host
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		table, key = e.wildcard, rest
		e.maxWildcard = max(e.maxWildcard, len(rest))
	}
	hr := table[key]
	if hr == nil {
		hr = &hostRoutes{}
		table[key] = hr
	}
	prev := hr.root
	if prefix != "/" {
		prev = hr.prefixes[prefix]
	}
	if prev != nil {
		return fmt.Errorf("%w: %s is also a domain of application %s", ErrConflict, quoteShort(domain), quoteShort(prev.App.Name))
	}
	if prefix == "/" {
		hr.root = app
		return nil
	}
	if hr.prefixes == nil {
		hr.prefixes = make(map[string]*App)
	}
	hr.prefixes[prefix] = app
	hr.maxLen = max(hr.maxLen, len(prefix))
	return nil
}

// Route returns the application for a request, or nil if none matches.
// host and path must already be normalised (NormalizeHost, NormalizePath).
//
// An exact host beats a wildcard, and a longer wildcard beats a shorter
// one ("*.a.example.com" before "*.example.com"); within a host the longest
// path prefix wins. A prefix matches at a segment boundary: "/api" matches
// "/api", "/api/" and "/api/x" but not "/apix". If no prefix of the exact
// host matches the path, the wildcards are tried, so an application on
// "*.example.com" still covers paths that a more specific application on
// "app.example.com/api" does not.
//
// Path parameters (";jsessionid=...") are ignored when matching prefixes,
// as servlet containers ignore them: "/api;x/v1" matches "/api/v1". This
// can only make a request match a prefix that such a backend would also
// serve it under.
//
// Route does not allocate (except for a path with ';' parameters when some
// prefix of the host is longer than 255 bytes).
func (e *Engine) Route(host, path string) *App {
	if e == nil || host == "" {
		return nil
	}
	if hr := e.exact[host]; hr != nil {
		if a := hr.match(path); a != nil {
			return a
		}
	}
	if len(e.wildcard) == 0 {
		return nil
	}
	for h := host; ; {
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return nil
		}
		h = h[i+1:]
		if len(h) > e.maxWildcard {
			continue
		}
		if hr := e.wildcard[h]; hr != nil {
			if a := hr.match(path); a != nil {
				return a
			}
		}
	}
}

func (hr *hostRoutes) match(path string) *App {
	if len(hr.prefixes) > 0 && len(path) > 1 {
		var a *App
		if strings.IndexByte(path, ';') >= 0 {
			a = hr.matchWithParams(path)
		} else {
			a = hr.matchPrefix(path)
		}
		if a != nil {
			return a
		}
	}
	return hr.root
}

// matchPrefix tries path cut at each segment boundary, longest first,
// starting no further than the longest prefix.
func (hr *hostRoutes) matchPrefix(path string) *App {
	for i := min(len(path), hr.maxLen); i > 1; i-- {
		if i == len(path) || path[i] == '/' {
			if a := hr.prefixes[path[:i]]; a != nil {
				return a
			}
		}
	}
	return nil
}

// matchWithParams is matchPrefix on the path with every ";..." parameter
// removed from its segment. Only the first maxLen+1 bytes of that path
// matter, and they are built on the stack.
func (hr *hostRoutes) matchWithParams(path string) *App {
	var arr [256]byte
	buf := arr[:0]
	if hr.maxLen >= len(arr) {
		buf = make([]byte, 0, hr.maxLen+1)
	}
	complete := true
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == ';' {
			j := strings.IndexByte(path[i:], '/')
			if j < 0 {
				break
			}
			i += j - 1 // the loop's i++ lands on the '/'
			continue
		}
		if len(buf) > hr.maxLen {
			complete = false
			break
		}
		buf = append(buf, c)
	}
	for i := min(len(buf), hr.maxLen); i > 1; i-- {
		if (complete && i == len(buf)) || (i < len(buf) && buf[i] == '/') {
			if a := hr.prefixes[string(buf[:i])]; a != nil { // no allocation: map index by converted bytes
				return a
			}
		}
	}
	return nil
}

// AppByName returns the application with that id or, failing that, that
// name; nil if there is none.
func (e *Engine) AppByName(nameOrID string) *App {
	if e == nil {
		return nil
	}
	if a := e.byID[nameOrID]; a != nil {
		return a
	}
	return e.byName[nameOrID]
}

// Apps returns the applications sorted by name. The slice is the caller's;
// the Apps are shared and must not be modified.
func (e *Engine) Apps() []*App {
	if e == nil {
		return nil
	}
	return slices.Clone(e.apps)
}

// HasCookieSessions reports whether the application issues and accepts
// CF_Authorization session cookies (false is Cloudflare's strict mode).
func (a *App) HasCookieSessions() bool { return a != nil && a.App.SessionCookie }

// Policies returns the application's policies in evaluation order: bypass,
// then non_identity, then allow and deny together, each group by
// precedence, then name, then id. The Policies are shared and must not be
// modified.
func (a *App) Policies() []*Policy {
	if a == nil {
		return nil
	}
	out := make([]*Policy, 0, len(a.bypass)+len(a.nonIdentity)+len(a.allowDeny))
	for _, group := range [...][]compiledPolicy{a.bypass, a.nonIdentity, a.allowDeny} {
		for i := range group {
			out = append(out, group[i].p)
		}
	}
	return out
}

// comparePolicies orders policies by precedence, then name, then id, so
// equal precedences still evaluate in the same order on every Compile.
func comparePolicies(a, b compiledPolicy) int {
	return cmp.Or(
		cmp.Compare(a.p.Precedence, b.p.Precedence),
		strings.Compare(a.p.Name, b.p.Name),
		strings.Compare(a.p.ID, b.p.ID),
	)
}

func recordLabel(kind, name, id string) string {
	return fmt.Sprintf("%s %s (id %s)", kind, quoteShort(name), quoteShort(id))
}

func cloneApplication(a *Application) *Application {
	c := *a
	c.Domains = slices.Clone(a.Domains)
	return &c
}

func clonePolicy(p *Policy) *Policy {
	c := *p
	c.Include = cloneRules(p.Include)
	c.Require = cloneRules(p.Require)
	c.Exclude = cloneRules(p.Exclude)
	return &c
}

func cloneRules(rs []Rule) []Rule {
	if rs == nil {
		return nil
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = Rule{
			ServiceToken:         clonePtr(r.ServiceToken),
			AnyValidServiceToken: clonePtr(r.AnyValidServiceToken),
			IP:                   clonePtr(r.IP),
			Principal:            clonePtr(r.Principal),
			Certificate:          clonePtr(r.Certificate),
			CommonName:           clonePtr(r.CommonName),
			Everyone:             clonePtr(r.Everyone),
		}
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
