package envoy_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// The typed extensions the configs use. Importing their Go packages registers the message types
// in protoregistry.GlobalTypes, which is where protojson resolves "@type" and where
// anypb.UnmarshalNew finds them again. A config that names an extension not listed here fails to
// decode ("unable to resolve"): add the import, don't loosen the decoder.
var (
	_ = (*hcmv3.HttpConnectionManager)(nil)
	_ = (*extauthzv3.ExtAuthz)(nil)
	_ = (*extauthzv3.ExtAuthzPerRoute)(nil)
	_ = (*jwtauthnv3.JwtAuthentication)(nil)
	_ = (*routerv3.Router)(nil)
	_ = (*filev3.FileAccessLog)(nil)
	_ = (*upstreamhttpv3.HttpProtocolOptions)(nil)
)

// Names of the filters and extensions the docs refer to.
const (
	extAuthzFilter   = "envoy.filters.http.ext_authz"
	jwtAuthnFilter   = "envoy.filters.http.jwt_authn"
	routerFilter     = "envoy.filters.http.router"
	hcmFilter        = "envoy.filters.network.http_connection_manager"
	httpOptionsKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	authzCluster     = "gatehouse_authz"
	jwksCluster      = "gatehouse_http"
	extAuthzMetadata = "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:"
)

// decode turns Envoy YAML into a Bootstrap the way Envoy does: YAML -> JSON -> proto, unknown
// fields rejected, every Any resolved from the registered types.
func decode(data []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, b); err != nil {
		return nil, fmt.Errorf("protojson: %w", err)
	}
	return b, nil
}

type validatorAll interface{ ValidateAll() error }

// validate runs the protoc-gen-validate rules on m and - because the generated ValidateAll stops
// at google.protobuf.Any fields - unpacks every Any inside m (typed_config, typed_per_filter_config,
// typed_extension_protocol_options ...) and validates the extension message too, recursively.
func validate(m proto.Message) error {
	var errs []error
	validateInto(m.ProtoReflect(), "bootstrap", &errs)
	return errors.Join(errs...)
}

func validateInto(m protoreflect.Message, at string, errs *[]error) {
	if v, ok := m.Interface().(validatorAll); ok {
		if err := v.ValidateAll(); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", at, err))
		}
	} else {
		*errs = append(*errs, fmt.Errorf("%s: %s has no ValidateAll", at, m.Descriptor().FullName()))
	}
	findAnys(m, at, errs)
}

// findAnys walks every populated field of m (messages, lists, maps) and validates the message
// packed in each Any it meets.
func findAnys(m protoreflect.Message, at string, errs *[]error) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := at + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), errs)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv.Message(), fmt.Sprintf("%s[%s]", name, k.String()), errs)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			visit(v.Message(), name, errs)
		}
		return true
	})
}

func visit(m protoreflect.Message, at string, errs *[]error) {
	if m.Descriptor().FullName() != "google.protobuf.Any" {
		findAnys(m, at, errs)
		return
	}
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		*errs = append(*errs, fmt.Errorf("%s: Any of unexpected Go type %T", at, m.Interface()))
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %s: %w", at, a.GetTypeUrl(), err))
		return
	}
	validateInto(inner.ProtoReflect(), fmt.Sprintf("%s(%s)", at, inner.ProtoReflect().Descriptor().FullName()), errs)
}

// configFiles lists every Envoy bootstrap under envoy/ (istio/ holds Kubernetes and Istio
// resources with their own test; testdata/ is not a config).
func configFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "istio" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"envoy.yaml", "envoy-jwt-authn.yaml"} {
		found := false
		for _, f := range files {
			found = found || f == want
		}
		if !found {
			t.Fatalf("%s not found among %v", want, files)
		}
	}
	return files
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConfigsDecodeAndValidate is the main check: every bootstrap decodes strictly, passes the
// proto constraints including inside typed extensions, and has the documented shape.
func TestConfigsDecodeAndValidate(t *testing.T) {
	for _, name := range configFiles(t) {
		t.Run(name, func(t *testing.T) {
			b, err := decode(readFile(t, name))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := validate(b); err != nil {
				t.Fatalf("validate: %v", err)
			}
			for _, problem := range facts(b) {
				t.Error(problem)
			}
		})
	}
}

// facts checks what the docs promise about a gatehouse bootstrap and returns one message per
// broken promise.
func facts(b *bootstrapv3.Bootstrap) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if a := b.GetAdmin().GetAddress().GetSocketAddress(); a.GetAddress() != "127.0.0.1" {
		bad("admin listens on %q, want loopback 127.0.0.1", a.GetAddress())
	}

	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}

	hcms := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != hcmFilter {
					continue
				}
				hcms++
				hcm := &hcmv3.HttpConnectionManager{}
				if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
					bad("listener %s: %s: %v", l.GetName(), hcmFilter, err)
					continue
				}
				problems = append(problems, hcmFacts(hcm, clusters)...)
			}
		}
	}
	if hcms == 0 {
		bad("no %s in any listener", hcmFilter)
	}

	c := clusters[authzCluster]
	if c == nil {
		bad("cluster %s missing", authzCluster)
		return problems
	}
	opts := &upstreamhttpv3.HttpProtocolOptions{}
	if a := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]; a == nil {
		bad("cluster %s: no typed_extension_protocol_options[%s]: gRPC needs HTTP/2", authzCluster, httpOptionsKey)
	} else if err := a.UnmarshalTo(opts); err != nil {
		bad("cluster %s: %s: %v", authzCluster, httpOptionsKey, err)
	} else if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		bad("cluster %s: explicit_http_config.http2_protocol_options not set: gRPC needs HTTP/2", authzCluster)
	}
	grpcHC := false
	for _, hc := range c.GetHealthChecks() {
		grpcHC = grpcHC || hc.GetGrpcHealthCheck() != nil
	}
	if !grpcHC {
		bad("cluster %s: no gRPC health check", authzCluster)
	}
	return problems
}

func hcmFacts(hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
		bad("normalize_path and merge_slashes must be true: gatehouse, routes and origin must see one path")
	}
	if got := hcm.GetPathWithEscapedSlashesAction(); got != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		bad("path_with_escaped_slashes_action = %v, want REJECT_REQUEST", got)
	}
	if !hcm.GetStripTrailingHostDot() {
		bad("strip_trailing_host_dot must be true")
	}
	// CGI-style origins read cf_access_jwt_assertion as the header
	// gatehouse overwrites: a forged underscore copy must not get through
	// (docs/envoy.md).
	if got := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); got != corev3.HttpProtocolOptions_REJECT_REQUEST {
		bad("common_http_protocol_options.headers_with_underscores_action = %v, want REJECT_REQUEST", got)
	}
	if !hcm.GetUseRemoteAddress().GetValue() {
		bad("use_remote_address must be true: the ip rules and x-forwarded-for depend on it (docs/envoy.md)")
	}

	// Filter order: ext_authz first of the two, jwt_authn (if any) after it, router last.
	filters := hcm.GetHttpFilters()
	index := map[string]int{}
	for i, f := range filters {
		if _, dup := index[f.GetName()]; dup {
			bad("HTTP filter %s configured more than once", f.GetName())
		}
		index[f.GetName()] = i
	}
	ai, hasAuthz := index[extAuthzFilter]
	ri, hasRouter := index[routerFilter]
	switch {
	case !hasAuthz:
		bad("no %s filter", extAuthzFilter)
	case !hasRouter || ri != len(filters)-1:
		bad("%s must be the last HTTP filter", routerFilter)
	case ai > ri:
		bad("%s must come before %s", extAuthzFilter, routerFilter)
	}
	if ji, ok := index[jwtAuthnFilter]; ok && ji < ai {
		bad("%s must come after %s (it verifies the JWT ext_authz injects)", jwtAuthnFilter, extAuthzFilter)
	}

	if hasAuthz {
		ea := &extauthzv3.ExtAuthz{}
		if err := filters[ai].GetTypedConfig().UnmarshalTo(ea); err != nil {
			bad("%s: %v", extAuthzFilter, err)
		} else {
			problems = append(problems, extAuthzFacts(ea, clusters)...)
		}
	}
	if ji, ok := index[jwtAuthnFilter]; ok {
		ja := &jwtauthnv3.JwtAuthentication{}
		if err := filters[ji].GetTypedConfig().UnmarshalTo(ja); err != nil {
			bad("%s: %v", jwtAuthnFilter, err)
		} else {
			problems = append(problems, jwtFacts(ja, clusters)...)
		}
	}

	// Access log: on stdout, with the fields gatehouse puts in dynamic metadata.
	logged := false
	for _, al := range hcm.GetAccessLog() {
		fl := &filev3.FileAccessLog{}
		if al.GetTypedConfig().UnmarshalTo(fl) != nil {
			continue
		}
		format := fl.GetLogFormat().GetTextFormatSource().GetInlineString()
		logged = fl.GetPath() == "/dev/stdout"
		for _, key := range []string{"token_name", "application", "decision", "reason"} {
			if !strings.Contains(format, extAuthzMetadata+key+")%") {
				bad("access log format does not print ext_authz metadata %q", key)
			}
		}
		for _, op := range []string{"%RESPONSE_CODE%", "%REQ(X-REQUEST-ID)%"} {
			if !strings.Contains(format, op) {
				bad("access log format does not print %s", op)
			}
		}
	}
	if !logged {
		bad("no file access log to /dev/stdout")
	}

	// Routes: /healthz direct 200 with ext_authz off; one route names the application; every
	// route cluster exists.
	healthz, named := false, false
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			per := &extauthzv3.ExtAuthzPerRoute{}
			hasPer := false
			if a := r.GetTypedPerFilterConfig()[extAuthzFilter]; a != nil {
				if err := a.UnmarshalTo(per); err != nil {
					bad("route %v: ExtAuthzPerRoute: %v", r.GetMatch(), err)
				}
				hasPer = true
			}
			if r.GetMatch().GetPath() == "/healthz" {
				healthz = true
				if r.GetDirectResponse().GetStatus() != 200 {
					bad("/healthz must be a direct 200 response")
				}
				if !hasPer || !per.GetDisabled() {
					bad("/healthz must disable ext_authz (ExtAuthzPerRoute disabled: true)")
				}
			} else if hasPer && per.GetDisabled() {
				bad("route %v disables ext_authz: only /healthz may", r.GetMatch())
			}
			if per.GetCheckSettings().GetContextExtensions()["application"] != "" {
				named = true
			}
			if ra, ok := r.GetAction().(*routev3.Route_Route); ok {
				if clusters[ra.Route.GetCluster()] == nil {
					bad("route %v: cluster %q not defined", r.GetMatch(), ra.Route.GetCluster())
				}
			}
		}
	}
	if !healthz {
		bad("no /healthz route")
	}
	if !named {
		bad("no route sets context_extensions application")
	}
	return problems
}

func extAuthzFacts(ea *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	gs := ea.GetGrpcService()
	if name := gs.GetEnvoyGrpc().GetClusterName(); name != authzCluster || clusters[name] == nil {
		bad("ext_authz grpc_service.envoy_grpc.cluster_name = %q, want defined cluster %q", name, authzCluster)
	}
	if d := gs.GetTimeout().AsDuration(); d != 250*time.Millisecond {
		bad("ext_authz timeout = %v, want 250ms", d)
	}
	if ea.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		bad("ext_authz transport_api_version = %v, want V3", ea.GetTransportApiVersion())
	}
	if ea.GetFailureModeAllow() {
		bad("ext_authz failure_mode_allow must be false (fail closed)")
	}
	if ea.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable {
		bad("ext_authz status_on_error = %v, want ServiceUnavailable (503)", ea.GetStatusOnError().GetCode())
	}
	if !ea.GetIncludePeerCertificate() {
		bad("ext_authz include_peer_certificate must be true")
	}
	if ea.GetWithRequestBody() != nil {
		bad("ext_authz with_request_body must be unset: gatehouse decides on headers")
	}
	return problems
}

func jwtFacts(ja *jwtauthnv3.JwtAuthentication, clusters map[string]*clusterv3.Cluster) (problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	p := ja.GetProviders()["gatehouse"]
	if p == nil {
		bad("jwt_authn: no provider gatehouse")
		return problems
	}
	if p.GetIssuer() != "http://127.0.0.1:9003" {
		bad("jwt_authn issuer = %q", p.GetIssuer())
	}
	if len(p.GetAudiences()) == 0 {
		bad("jwt_authn: audiences must be set (the application's AUD tag)")
	}
	if h := p.GetFromHeaders(); len(h) != 1 || h[0].GetName() != "cf-access-jwt-assertion" || h[0].GetValuePrefix() != "" {
		bad("jwt_authn from_headers = %v, want only cf-access-jwt-assertion without prefix", h)
	}
	if !p.GetForward() {
		bad("jwt_authn forward must be true (the origin reads the header)")
	}
	rj := p.GetRemoteJwks()
	if u := rj.GetHttpUri(); u.GetUri() != "http://127.0.0.1:9003/.well-known/jwks.json" || u.GetCluster() != jwksCluster || clusters[jwksCluster] == nil {
		bad("jwt_authn remote_jwks.http_uri = %v, want gatehouse JWKS via defined cluster %s", u, jwksCluster)
	}
	if d := rj.GetCacheDuration().AsDuration(); d != 300*time.Second {
		bad("jwt_authn cache_duration = %v, want 300s", d)
	}
	rules := ja.GetRules()
	if len(rules) != 2 ||
		rules[0].GetMatch().GetPath() != "/healthz" || rules[0].GetRequires() != nil ||
		rules[1].GetMatch().GetPrefix() != "/" || rules[1].GetRequires().GetProviderName() != "gatehouse" {
		bad("jwt_authn rules must be [/healthz: none, /: provider gatehouse], got %v", rules)
	}
	return problems
}

// mutate returns a copy of src with old replaced by new exactly once, failing the test when old is
// not there exactly once - so a mutation test can never pass by mutating nothing.
func mutate(t *testing.T, src []byte, old, new string) []byte {
	t.Helper()
	if n := strings.Count(string(src), old); n != 1 {
		t.Fatalf("mutation %q -> %q: found %d times, want exactly 1", old, new, n)
	}
	return []byte(strings.Replace(string(src), old, new, 1))
}

// TestDecodeRejectsMistakes proves the decoder is strict: a typo is an error, not a silently
// ignored field (which Envoy would refuse at startup).
func TestDecodeRejectsMistakes(t *testing.T) {
	src := readFile(t, "envoy.yaml")
	cases := []struct {
		name, old, new, wantErr string
	}{
		{"misspelled field inside typed_config", "transport_api_version: V3", "transport_api_versoin: V3", "transport_api_versoin"},
		{"misspelled top-level field", "static_resources:", "static_resource:", "static_resource"},
		{"unknown enum value", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: REJECT", "REJECT"},
		{"unregistered @type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routr", "Routr"},
		{"not a duration", " timeout: 0.25s", " timeout: quarter", "quarter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(mutate(t, src, tc.old, tc.new))
			if err == nil {
				t.Fatal("decode succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}

// TestValidateRejectsOutOfRange proves the constraints run, including inside typed extensions
// (which the generated ValidateAll alone would skip).
func TestValidateRejectsOutOfRange(t *testing.T) {
	src := readFile(t, "envoy.yaml")
	cases := []struct {
		name, old, new, wantErr string
	}{
		{"port above 65535", "port_value: 9001", "port_value: 70000", "SocketAddress.PortValue"},
		{"negative connect_timeout", "connect_timeout: 0.25s\n", "connect_timeout: -1s\n", "Cluster.ConnectTimeout"},
		{"health check without interval", "      interval: 5s\n", "", "HealthCheck.Interval"},
		// Inside the HttpConnectionManager Any, inside its route config.
		{"direct response status below 200", "status: 200", "status: 99", "DirectResponseAction.Status"},
		// Inside the HttpConnectionManager Any.
		{"empty stat_prefix", "stat_prefix: ingress_http", `stat_prefix: ""`, "HttpConnectionManager.StatPrefix"},
		// Inside the ExtAuthz Any inside the HttpConnectionManager Any.
		{"undefined status_on_error code", "status_on_error: {code: ServiceUnavailable}", "status_on_error: {code: 7}", "ExtAuthz.StatusOnError"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := decode(mutate(t, src, tc.old, tc.new))
			if err != nil {
				t.Fatalf("decode: %v (the mutation should only break a constraint)", err)
			}
			err = validate(b)
			if err == nil {
				t.Fatal("validate succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name %q", err, tc.wantErr)
			}
		})
	}
}

// TestFactsBite proves each documented promise is actually checked: breaking it in the YAML
// (while keeping the file valid for Envoy) makes facts() complain.
func TestFactsBite(t *testing.T) {
	envoyYAML := readFile(t, "envoy.yaml")
	jwtYAML := readFile(t, "envoy-jwt-authn.yaml")
	// The router filter entry as written in envoy.yaml, to move or duplicate it.
	const routerBlock = "          - name: envoy.filters.http.router\n" +
		"            typed_config:\n" +
		"              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n"
	cases := []struct {
		name     string
		src      []byte
		old, new string
		want     string
		also     [2]string // a second old/new replacement, when set
	}{
		{"fail open", envoyYAML, "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow", [2]string{}},
		{"error is 403", envoyYAML, "{code: ServiceUnavailable}", "{code: Forbidden}", "status_on_error", [2]string{}},
		{"slower timeout", envoyYAML, " timeout: 0.25s", " timeout: 2s", "timeout", [2]string{}},
		{"healthz checked", envoyYAML, "disabled: true", "disabled: false", "/healthz must disable ext_authz", [2]string{}},
		{"no http2 to gatehouse", envoyYAML, "http2_protocol_options: {}", "http_protocol_options: {}", "HTTP/2", [2]string{}},
		{"no grpc health check", envoyYAML, "grpc_health_check: {}", "tcp_health_check: {}", "health check", [2]string{}},
		{"no application route", envoyYAML, "  application: demo", "  app: demo", "context_extensions application", [2]string{}},
		{"escaped slashes kept", envoyYAML, "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: KEEP_UNCHANGED", "REJECT_REQUEST", [2]string{}},
		{"route to unknown cluster", envoyYAML, "route: {cluster: whoami}\n                typed_per_filter_config", "route: {cluster: whoam}\n                typed_per_filter_config", `"whoam" not defined`, [2]string{}},
		{"access log without decision", envoyYAML, "decision=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:decision)%", "", `"decision"`, [2]string{}},
		{"router before ext_authz", envoyYAML, routerBlock, "", "must be the last",
			[2]string{"          # ext_authz must come before the router", routerBlock + "          # ext_authz must come before the router"}},
		{"router twice", envoyYAML, routerBlock, routerBlock + routerBlock, "more than once", [2]string{}},
		{"jwt without forward", jwtYAML, "forward: true", "forward: false", "forward", [2]string{}},
		{"jwt on healthz", jwtYAML, "verification\".\n              - match: {path: /healthz}\n", "verification\".\n              - match: {path: /healthz}\n                requires: {provider_name: gatehouse}\n", "rules", [2]string{}},
		{"jwt cache", jwtYAML, "cache_duration: 300s", "cache_duration: 3600s", "cache_duration", [2]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := mutate(t, tc.src, tc.old, tc.new)
			if tc.also[0] != "" {
				src = mutate(t, src, tc.also[0], tc.also[1])
			}
			b, err := decode(src)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := validate(b); err != nil {
				t.Fatalf("validate: %v (the mutation should only break a documented fact)", err)
			}
			problems := strings.Join(facts(b), "\n")
			if !strings.Contains(problems, tc.want) {
				t.Errorf("facts() = %q, want a problem mentioning %q", problems, tc.want)
			}
		})
	}
}
