package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// app returns a valid application with a deterministic id derived from name.
func app(name string, domains ...string) *Application {
	return &Application{
		ID:              "app-" + name,
		Name:            name,
		Domains:         domains,
		AUD:             testAUD,
		SessionDuration: time.Hour,
	}
}

func mustCompile(t testing.TB, apps []*Application, pols []*Policy) *Engine {
	t.Helper()
	e, err := Compile(apps, pols)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

func routeName(e *Engine, host, path string) string {
	if a := e.Route(host, path); a != nil {
		return a.App.Name
	}
	return ""
}

func TestRoute(t *testing.T) {
	e := mustCompile(t, []*Application{
		app("root", "app.example.com"),
		app("api", "app.example.com/api"),
		app("api-v1", "app.example.com/api/v1"),
		app("admin", "app.example.com/admin/panel"),
		app("wild", "*.example.com"),
		app("wild-deep", "*.eu.example.com"),
		app("wild-api", "*.example.com/api"),
		app("wild-us-path", "*.us.example.com/only"),
		app("paths-only", "paths.example.com/x", "paths.example.com/y/z"),
		app("ipv6", "[2001:db8::1]/svc"),
		app("ipv4", "10.0.0.1"),
	}, nil)
	tests := []struct{ host, path, want string }{
		{"app.example.com", "/", "root"},
		{"app.example.com", "/index.html", "root"},
		{"app.example.com", "/api", "api"},
		{"app.example.com", "/api/", "api"},
		{"app.example.com", "/api/x", "api"},
		{"app.example.com", "/apix", "root"},
		{"app.example.com", "/api/v1", "api-v1"},
		{"app.example.com", "/api/v1/users", "api-v1"},
		{"app.example.com", "/api/v10", "api"},
		{"app.example.com", "/api/v", "api"},
		{"app.example.com", "/admin", "root"}, // only /admin/panel is an app
		{"app.example.com", "/admin/panel/x", "admin"},
		{"app.example.com", "/admin/panelx", "root"},
		// Path parameters are ignored for prefix matching, as servlet containers do.
		{"app.example.com", "/api;jsessionid=1", "api"},
		{"app.example.com", "/api;x/v1/users", "api-v1"},
		{"app.example.com", "/api/v1;a=b", "api-v1"},
		{"app.example.com", "/apix;x", "root"},
		// Wildcards: below the domain only, longest suffix first.
		{"x.example.com", "/", "wild"},
		{"a.b.example.com", "/", "wild"},
		{"x.eu.example.com", "/", "wild-deep"},
		{"a.b.eu.example.com", "/", "wild-deep"},
		{"eu.example.com", "/", "wild"},
		{"x.example.com", "/api/1", "wild-api"},
		{"x.eu.example.com", "/api/1", "wild-deep"}, // the longer wildcard wins before paths are compared
		{"x.us.example.com", "/only/1", "wild-us-path"},
		{"x.us.example.com", "/api/1", "wild-api"}, // *.us has no matching prefix: the shorter wildcard is tried
		{"x.us.example.com", "/", "wild"},
		{"example.com", "/", ""}, // the apex is not covered by *.example.com
		{"example.org", "/", ""},
		// An exact host with no matching prefix falls through to wildcards.
		{"paths.example.com", "/x/1", "paths-only"},
		{"paths.example.com", "/y/z", "paths-only"},
		{"paths.example.com", "/y", "wild"},
		{"paths.example.com", "/", "wild"},
		{"2001:db8::1", "/svc/a", "ipv6"},
		{"2001:db8::1", "/", ""},
		{"10.0.0.1", "/anything", "ipv4"},
		{"", "/", ""},
		{"app.example.com", "", "root"},
	}
	for _, tt := range tests {
		if got := routeName(e, tt.host, tt.path); got != tt.want {
			t.Errorf("Route(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
	var nilEngine *Engine
	if nilEngine.Route("app.example.com", "/") != nil || nilEngine.AppByName("x") != nil || nilEngine.Apps() != nil {
		t.Error("a nil Engine must route nothing")
	}
}

// A long prefix (> the 256-byte stack buffer) with a ';' path still routes.
func TestRouteLongPrefixWithParams(t *testing.T) {
	long := "/" + strings.Repeat("p", 300)
	e := mustCompile(t, []*Application{app("long", "app.example.com"+long), app("root", "app.example.com")}, nil)
	if got := routeName(e, "app.example.com", long+";x/y"); got != "long" {
		t.Errorf("got %q, want long", got)
	}
	if got := routeName(e, "app.example.com", long+"q;x/y"); got != "root" {
		t.Errorf("got %q, want root", got)
	}
}

// manyApps builds n applications across exact hosts, wildcards and paths.
func manyApps(n int) []*Application {
	apps := make([]*Application, 0, n)
	for i := range n {
		var d string
		switch i % 4 {
		case 0:
			d = fmt.Sprintf("svc%d.example.com", i)
		case 1:
			d = fmt.Sprintf("*.tenant%d.example.com", i)
		case 2:
			d = fmt.Sprintf("shared.example.com/team%d", i)
		case 3:
			d = fmt.Sprintf("shared.example.com/team%d/api/v%d", i-1, i)
		}
		apps = append(apps, app(fmt.Sprintf("app%04d", i), d))
	}
	return apps
}

func TestRouteManyApps(t *testing.T) {
	const n = 1000
	e := mustCompile(t, manyApps(n), nil)
	if got := len(e.Apps()); got != n {
		t.Fatalf("Apps() has %d, want %d", got, n)
	}
	for i := range n {
		var host, path string
		switch i % 4 {
		case 0:
			host, path = fmt.Sprintf("svc%d.example.com", i), "/x"
		case 1:
			host, path = fmt.Sprintf("a.b.tenant%d.example.com", i), "/"
		case 2:
			host, path = "shared.example.com", fmt.Sprintf("/team%d/x", i)
		case 3:
			host, path = "shared.example.com", fmt.Sprintf("/team%d/api/v%d/users", i-1, i)
		}
		want := fmt.Sprintf("app%04d", i)
		if got := routeName(e, host, path); got != want {
			t.Fatalf("Route(%q, %q) = %q, want %q", host, path, got, want)
		}
	}
	if got := routeName(e, "shared.example.com", "/team2/api"); got != "app0002" {
		t.Errorf("got %q, want app0002", got)
	}
	if got := routeName(e, "svc1.example.com", "/"); got != "" {
		t.Errorf("got %q for an unknown host", got)
	}
}

func TestRouteAllocs(t *testing.T) {
	e := mustCompile(t, manyApps(1000), nil)
	cases := [][2]string{
		{"svc0.example.com", "/x"},
		{"a.b.tenant1.example.com", "/"},
		{"shared.example.com", "/team2/x/y/z"},
		{"shared.example.com", "/team2;jsessionid=1/api/v3/users"},
		{"nowhere.example.org", "/"},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, func() { e.Route(c[0], c[1]) }); n != 0 {
			t.Errorf("Route(%q, %q) allocates %v times, want 0", c[0], c[1], n)
		}
	}
}

// A path far longer than any prefix, or a host with many labels, is
// examined only up to the longest registered prefix or wildcard suffix.
func TestRouteHugeInputs(t *testing.T) {
	e := mustCompile(t, manyApps(100), nil)
	path := "/team2" + strings.Repeat("/a", 30000)
	if got := routeName(e, "shared.example.com", path); got != "app0002" {
		t.Errorf("long path: got %q", got)
	}
	host := strings.Repeat("a.", 30000) + "tenant1.example.com"
	if got := routeName(e, host, "/"); got != "app0001" {
		t.Errorf("many labels: got %q", got)
	}
}

func TestAppByName(t *testing.T) {
	e := mustCompile(t, []*Application{app("b", "b.example.com"), app("a", "a.example.com")}, nil)
	if a := e.AppByName("a"); a == nil || a.App.ID != "app-a" {
		t.Errorf("by name: %v", a)
	}
	if a := e.AppByName("app-b"); a == nil || a.App.Name != "b" {
		t.Errorf("by id: %v", a)
	}
	if e.AppByName("c") != nil {
		t.Error("unknown name found")
	}
	apps := e.Apps()
	if len(apps) != 2 || apps[0].App.Name != "a" || apps[1].App.Name != "b" {
		t.Errorf("Apps() not sorted by name: %v", apps)
	}
	apps[0] = nil // the caller's copy
	if e.Apps()[0] == nil {
		t.Error("Apps() returned the engine's own slice")
	}
}

func TestCompileCopiesRecords(t *testing.T) {
	a := app("a", "a.example.com")
	p := validPolicy()
	p.ApplicationID = a.ID
	e := mustCompile(t, []*Application{a}, []*Policy{p})
	a.Domains[0] = "evil.example.com"
	a.Name = "changed"
	p.Include[0].ServiceToken.TokenID = "other"
	got := e.AppByName("a")
	if got == nil || got.App.Domains[0] != "a.example.com" || e.Route("a.example.com", "/") != got {
		t.Fatal("engine changed when the caller modified its records")
	}
	if pol := got.Policies()[0]; pol.Include[0].ServiceToken.TokenID != "33333333-3333-4333-8333-333333333333" {
		t.Fatal("compiled policy shares rules with the caller")
	}
}

func TestCompileErrors(t *testing.T) {
	good := func() *Policy {
		p := validPolicy()
		p.ApplicationID = "app-a"
		return p
	}
	tests := []struct {
		name  string
		apps  []*Application
		pols  []*Policy
		is    error
		texts []string
	}{
		{"invalid app", []*Application{app("a", "a.*.com")}, nil, ErrInvalidApplication,
			[]string{`application "a" (id "app-a"): invalid application: domains[0]: invalid domain "a.*.com"`}},
		{"nil app", []*Application{nil}, nil, ErrInvalidApplication, []string{"applications[0]: nil"}},
		{"no id", []*Application{{Name: "x", Domains: []string{"x.example.com"}, AUD: testAUD, SessionDuration: time.Hour}}, nil,
			ErrInvalidApplication, []string{"id: required"}},
		{"duplicate id", []*Application{app("a", "a.example.com"), {ID: "app-a", Name: "b", Domains: []string{"b.example.com"}, AUD: testAUD, SessionDuration: time.Hour}},
			nil, ErrConflict, []string{`application "b" (id "app-a"): conflicting records: same id as application "a"`}},
		{"duplicate name", []*Application{app("a", "a.example.com"), {ID: "other", Name: "a", Domains: []string{"b.example.com"}, AUD: testAUD, SessionDuration: time.Hour}},
			nil, ErrConflict, []string{"same name as application id"}},
		{"same domain", []*Application{app("a", "x.example.com/api"), app("b", "y.example.com", "X.example.com/api/")}, nil, ErrConflict,
			[]string{`application "b" (id "app-b"): domains[1]: conflicting records: "X.example.com/api/" is also a domain of application "a"`}},
		{"same wildcard", []*Application{app("a", "*.example.com"), app("b", "*.example.com/")}, nil, ErrConflict,
			[]string{"is also a domain of application \"a\""}},
		{"invalid policy", []*Application{app("a", "a.example.com")}, []*Policy{func() *Policy { p := good(); p.Include = nil; return p }()},
			ErrInvalidPolicy, []string{`policy "ci" (id "22222222-2222-4222-8222-222222222222"): invalid policy: include: at least one rule`}},
		{"nil policy", []*Application{app("a", "a.example.com")}, []*Policy{nil}, ErrInvalidPolicy, []string{"policies[0]: nil"}},
		{"policy no id", []*Application{app("a", "a.example.com")}, []*Policy{func() *Policy { p := good(); p.ID = ""; return p }()},
			ErrInvalidPolicy, []string{"id: required"}},
		{"duplicate policy", []*Application{app("a", "a.example.com")}, []*Policy{good(), good()}, ErrConflict, []string{"duplicate policy id"}},
		{"unknown app", []*Application{app("a", "a.example.com")}, []*Policy{func() *Policy { p := good(); p.ApplicationID = "nope"; return p }()},
			ErrUnknownApplication, []string{`application_id "nope"`}},
		{"several", []*Application{app("a", "a.*.com"), app("b", "b.example.com:80")}, nil, ErrInvalidApplication,
			[]string{`application "a"`, `application "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(tt.apps, tt.pols)
			if err == nil || e != nil {
				t.Fatalf("Compile = %v, %v; want an error", e, err)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			for _, s := range tt.texts {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
	// A policy of an application that failed validation is not reported
	// again as naming an unknown application.
	p := good()
	_, err := Compile([]*Application{app("a", "bad domain")}, []*Policy{p})
	if errors.Is(err, ErrUnknownApplication) {
		t.Errorf("policy of a broken application reported as orphan: %v", err)
	}
}
