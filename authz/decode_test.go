package authz

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// fixedHeaderNames are the headers request.header reads.
var fixedHeaderNames = []string{
	headerPath, headerCookie, headerAuthority, headerRequestID, headerForwardedFor,
	headerAccessToken, headerClientID, headerClientSecret,
}

// refKeep is the reference header filter: the predicate request.header and
// request.lookup apply (same length, strings.EqualFold), over every name.
func refKeep(k string, custom []string) bool {
	for _, n := range append(slices.Clone(fixedHeaderNames), custom...) {
		if len(k) == len(n) && strings.EqualFold(k, n) {
			return true
		}
	}
	return false
}

// refFilter is what the partial decoder must produce, computed from a fully
// decoded request: the fields decode.go lists, the headers refKeep keeps,
// header_map only when the headers map is empty.
func refFilter(full *authv3.CheckRequest, custom []string) *authv3.CheckRequest {
	out := &authv3.CheckRequest{}
	in := full.GetAttributes()
	if in == nil {
		return out
	}
	a := &authv3.AttributeContext{}
	out.Attributes = a
	if src := in.GetSource(); src != nil {
		a.Source = &authv3.AttributeContext_Peer{Principal: src.GetPrincipal(), Certificate: src.GetCertificate()}
		if addr := src.GetAddress(); addr != nil {
			a.Source.Address = &corev3.Address{}
			if sa := addr.GetSocketAddress(); sa != nil {
				a.Source.Address.Address = &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: sa.GetAddress()}}
			}
		}
	}
	if v, ok := in.GetContextExtensions()[contextKeyApplication]; ok {
		a.ContextExtensions = map[string]string{contextKeyApplication: v}
	}
	if r := in.GetRequest(); r != nil {
		a.Request = &authv3.AttributeContext_Request{}
		if h := r.GetHttp(); h != nil {
			o := &authv3.AttributeContext_HttpRequest{Host: h.GetHost(), Path: h.GetPath()}
			a.Request.Http = o
			if len(h.GetHeaders()) > 0 {
				o.Headers = map[string]string{}
				for k, v := range h.GetHeaders() {
					if refKeep(k, custom) {
						o.Headers[k] = v
					}
				}
			} else if hm := h.GetHeaderMap(); hm != nil {
				o.HeaderMap = &corev3.HeaderMap{}
				for _, hv := range hm.GetHeaders() {
					if refKeep(hv.GetKey(), custom) {
						o.HeaderMap.Headers = append(o.HeaderMap.Headers, &corev3.HeaderValue{
							Key: hv.GetKey(), Value: hv.GetValue(), RawValue: hv.GetRawValue(),
						})
					}
				}
			}
		}
	}
	return out
}

func namesOf(list ...string) *headerNames {
	h := &headerNames{}
	for _, n := range list {
		h.add(n)
	}
	return h
}

// fuzzCustom are the custom header names the differential tests keep.
var fuzzCustom = []string{"authorization", "x-gatehouse-credentials"}

// diffDecode checks the partial decoder against proto.Unmarshal on b: it
// fails iff proto.Unmarshal fails, and otherwise yields refFilter of
// proto.Unmarshal's message (or, when it fell back, that message itself).
func diffDecode(t *testing.T, b []byte, custom []string) (fast *authv3.CheckRequest, fellBack bool) {
	t.Helper()
	full := &authv3.CheckRequest{}
	errFull := proto.Unmarshal(b, full)
	fast = &authv3.CheckRequest{}
	fellBack, errFast := unmarshalCheckRequest(b, fast, namesOf(custom...))
	if (errFull == nil) != (errFast == nil) {
		t.Fatalf("proto.Unmarshal: %v; partial decoder: %v (input %x)", errFull, errFast, b)
	}
	if errFull != nil {
		return nil, fellBack
	}
	want := refFilter(full, custom)
	if fellBack {
		want = full
	}
	if !proto.Equal(fast, want) {
		t.Fatalf("partial decoder (fell back: %v):\n%v\nwant\n%v", fellBack, fast, want)
	}
	return fast, fellBack
}

// fixtureWires returns every fixture in wire format, by file name.
func fixtureWires(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	sub := map[string]string{
		"{{CLIENT_ID}}":     "0123456789abcdef0123456789abcdef.access",
		"{{CLIENT_SECRET}}": "gh_secret_0123456789abcdef0123456789abcdef0123456789abcdef0123",
		"{{JWT}}":           "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(loadFixture(tb, filepath.Base(f), sub))
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// Wire-format builders for hand-made messages.
func fld(num protowire.Number, payload []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), payload)
}
func str(num protowire.Number, s string) []byte { return fld(num, []byte(s)) }
func vint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}
func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }
func entry(k, v string) []byte   { return cat(str(1, k), str(2, v)) }

// wrapHTTP wraps HttpRequest fields into a CheckRequest.
func wrapHTTP(httpFields ...[]byte) []byte {
	return fld(1, fld(4, fld(2, cat(httpFields...))))
}

// wrapAttrs wraps AttributeContext fields into a CheckRequest.
func wrapAttrs(fields ...[]byte) []byte { return fld(1, cat(fields...)) }

// editCases are hand-made inputs for what fixtures never contain.
func editCases() map[string][]byte {
	deep := structpb.NewStringValue("x")
	for range 3400 {
		deep = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": deep}})
	}
	deepMeta, _ := proto.Marshal(&corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": deep.GetStructValue()}})
	shallow := structpb.NewStringValue("x")
	for range 3000 {
		shallow = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": shallow}})
	}
	shallowMeta, _ := proto.Marshal(&corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": shallow.GetStructValue()}})
	group := cat(protowire.AppendTag(nil, 99, protowire.StartGroupType), vint(1, 5), protowire.AppendTag(nil, 99, protowire.EndGroupType))
	return map[string][]byte{
		"empty":                             nil,
		"dup header last wins":              wrapHTTP(fld(3, entry("cookie", "a=1")), fld(3, entry("cookie", "CF_Authorization=x"))),
		"dup header dropped":                wrapHTTP(fld(3, entry("accept", "1")), fld(3, entry("accept", "2"))),
		"mixed case headers":                wrapHTTP(fld(3, entry("CF-Access-Client-Id", "a")), fld(3, entry("cf-access-client-id", "b")), fld(3, entry("X-Forwarded-For", "1.2.3.4"))),
		"custom header":                     wrapHTTP(fld(3, entry("Authorization", `{"a":1}`)), fld(3, entry("x-other", "z"))),
		"kelvin":                            wrapHTTP(fld(3, entry("coo\u212aie", "CF_Authorization=x")), fld(3, entry("cf-access-to\u212aen", "t"))),
		"entry missing key":                 wrapHTTP(fld(3, str(2, "v"))),
		"entry missing value":               wrapHTTP(fld(3, str(1, "cookie"))),
		"entry extra field":                 wrapHTTP(fld(3, cat(str(1, "cookie"), vint(7, 1), str(2, "v")))),
		"entry key wrong type":              wrapHTTP(fld(3, cat(vint(1, 3), str(2, "v")))),
		"headers and header_map":            wrapHTTP(fld(3, entry("accept", "x")), fld(13, fld(1, cat(str(1, "cf-access-client-id"), str(2, "id"))))),
		"header_map then headers":           wrapHTTP(fld(13, fld(1, cat(str(1, "cookie"), str(2, "v")))), fld(3, entry(":path", "/"))),
		"header_map only":                   wrapHTTP(fld(13, cat(fld(1, cat(str(1, ":Path"), fld(3, []byte("/raw")))), fld(1, cat(str(1, "accept"), str(2, "x"))), fld(1, str(2, "no key")))), fld(13, fld(1, cat(str(1, "cookie"), str(2, "merged"))))),
		"header_map bad utf8 dropped entry": wrapHTTP(fld(3, entry("a", "b")), fld(13, fld(1, cat(str(1, "accept"), str(2, "\xff"))))),
		"header_map raw any bytes":          wrapHTTP(fld(13, fld(1, cat(str(1, "cookie"), fld(3, []byte{0xff, 0})))), fld(13, nil)),
		"bad utf8 in body":                  wrapHTTP(str(11, "\xc3\x28")),
		"bad utf8 in raw_body":              wrapHTTP(fld(12, []byte{0xc3, 0x28})),
		"bad utf8 dropped hdr":              wrapHTTP(fld(3, entry("accept", "\xff"))),
		"bad utf8 dropped key":              wrapHTTP(fld(3, entry("\xff", "x"))),
		"bad utf8 destination":              wrapAttrs(fld(2, str(4, "\xff"))),
		"bad utf8 tls sni":                  wrapAttrs(fld(12, str(1, "\xff"))),
		"bad utf8 label":                    wrapAttrs(fld(1, fld(3, entry("k", "\xff")))),
		"bad utf8 ctx ext":                  wrapAttrs(fld(10, entry("other", "\xff"))),
		"ctx ext":                           wrapAttrs(fld(10, entry("application", "a")), fld(10, entry("other", "b")), fld(10, entry("application", "c"))),
		"host twice":                        wrapHTTP(str(5, "a"), str(5, "b"), str(4, "/p")),
		"http twice merges":                 cat(wrapHTTP(str(5, "a"), fld(3, entry("cookie", "1"))), wrapHTTP(str(4, "/b"), fld(3, entry(":path", "/x")))),
		"http empty":                        wrapHTTP(),
		"attributes empty":                  wrapAttrs(),
		"host wrong wire type":              wrapHTTP(vint(5, 1)),
		"http wrong wire type":              fld(1, fld(4, vint(2, 1))),
		"attrs wrong wire type":             vint(1, 1),
		"size wrong wire type":              wrapHTTP(str(9, "x")),
		"unknown fields":                    cat(vint(77, 1), wrapHTTP(vint(900, 2), str(5, "h")), str(1000, "\xff")),
		"unknown group":                     cat(group, wrapHTTP(group, str(5, "h"))),
		"known field as group":              wrapHTTP(protowire.AppendTag(nil, 5, protowire.StartGroupType), protowire.AppendTag(nil, 5, protowire.EndGroupType)),
		"stray end group":                   wrapHTTP(protowire.AppendTag(nil, 5, protowire.EndGroupType)),
		"field number zero":                 wrapHTTP([]byte{0x02, 0x00}),
		"field number too big":              wrapHTTP(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3|2), []byte{0}),
		"wire type 6":                       wrapHTTP([]byte{0x2e}),
		"truncated":                         wrapHTTP(str(5, "host"))[:7],
		"length overflow":                   {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"overlong varint":                   cat(protowire.AppendTag(nil, 20, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}),
		"fixed32 truncated":                 cat(protowire.AppendTag(nil, 20, protowire.Fixed32Type), []byte{1, 2}),
		"socket then pipe":                  wrapAttrs(fld(1, fld(1, cat(fld(1, str(2, "1.2.3.4")), fld(2, str(1, "/sock")))))),
		"pipe then socket":                  wrapAttrs(fld(1, fld(1, cat(fld(2, str(1, "/sock")), fld(1, str(2, "1.2.3.4")))))),
		"socket pipe socket":                wrapAttrs(fld(1, fld(1, cat(fld(1, cat(str(2, "1.2.3.4"), vint(3, 80))), fld(3, str(1, "l")), fld(1, vint(3, 81)))))),
		"socket merges":                     wrapAttrs(fld(1, fld(1, cat(fld(1, str(2, "1.2.3.4")), fld(1, vint(3, 81)))))),
		"pipe wrong wire type":              wrapAttrs(fld(1, fld(1, cat(fld(1, str(2, "1.2.3.4")), vint(2, 1))))),
		"peer fields":                       wrapAttrs(fld(1, cat(str(4, "spiffe://x"), str(5, "PEM"), str(2, "svc"), fld(3, entry("l", "v")))), fld(1, str(4, "second"))),
		"deep struct":                       wrapAttrs(fld(11, deepMeta)),
		"deep but fine struct":              wrapAttrs(fld(11, shallowMeta)),
	}
}

func TestDecodeMatchesProto(t *testing.T) {
	for name, b := range fixtureWires(t) {
		t.Run(name, func(t *testing.T) {
			if _, fellBack := diffDecode(t, b, fuzzCustom); fellBack {
				t.Error("a fixture took the full decoder")
			}
		})
	}
	for name, b := range editCases() {
		t.Run(name, func(t *testing.T) { diffDecode(t, b, fuzzCustom) })
	}
}

func FuzzDecodeCheckRequest(f *testing.F) {
	for _, b := range fixtureWires(f) {
		f.Add(b)
	}
	for name, b := range editCases() {
		if !strings.HasPrefix(name, "deep") {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { diffDecode(t, b, fuzzCustom) })
}

// TestDecodeHeaders: which headers the partial decoder keeps.
func TestDecodeHeaders(t *testing.T) {
	for _, c := range []struct {
		name   string
		custom []string
		in     []string // key, value pairs, in wire order
		want   map[string]string
	}{
		{"standard", nil,
			[]string{":authority", "a", ":path", "/p", ":method", "GET", "accept", "*/*", "x-request-id", "r", "x-forwarded-for", "1.2.3.4", "cookie", "c", "cf-access-token", "t", "cf-access-client-id", "i", "cf-access-client-secret", "s", "cf-access-jwt-assertion", "j", "user-agent", "u", "host", "h"},
			map[string]string{":authority": "a", ":path": "/p", "x-request-id": "r", "x-forwarded-for": "1.2.3.4", "cookie": "c", "cf-access-token": "t", "cf-access-client-id": "i", "cf-access-client-secret": "s"}},
		{"case-insensitive", nil,
			[]string{"CF-Access-Client-Id", "i", "CF-ACCESS-CLIENT-SECRET", "s", "Cookie", "c", "X-Request-ID", "r"},
			map[string]string{"CF-Access-Client-Id": "i", "CF-ACCESS-CLIENT-SECRET": "s", "Cookie": "c", "X-Request-ID": "r"}},
		{"both casings kept (counted as duplicates)", nil,
			[]string{"cf-access-client-id", "a", "CF-Access-Client-Id", "b"},
			map[string]string{"cf-access-client-id": "a", "CF-Access-Client-Id": "b"}},
		{"last wins", nil,
			[]string{"cookie", "1", "cookie", "2", "accept", "x", "cookie", "3"},
			map[string]string{"cookie": "3"}},
		{"custom", []string{"x-gatehouse-credentials"},
			[]string{"X-Gatehouse-Credentials", "{}", "x-gatehouse-credential", "no", "authorization", "no"},
			map[string]string{"X-Gatehouse-Credentials": "{}"}},
		{"no custom", nil,
			[]string{"x-gatehouse-credentials", "{}", "authorization", "Bearer x"},
			nil},
		{"near misses", nil,
			[]string{"cookies", "x", ":paths", "x", "x-request-i", "x", "coo\u212aie", "x", "cf-access-client-ld", "x"},
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var fields [][]byte
			for i := 0; i+1 < len(c.in); i += 2 {
				fields = append(fields, fld(3, entry(c.in[i], c.in[i+1])))
			}
			b := wrapHTTP(fields...)
			got, _ := diffDecode(t, b, c.custom)
			if h := got.GetAttributes().GetRequest().GetHttp().GetHeaders(); len(h) != len(c.want) || !mapsEqual(h, c.want) {
				t.Errorf("headers = %v, want %v", h, c.want)
			}
			// The same through header_map.
			fields = nil
			for i := 0; i+1 < len(c.in); i += 2 {
				fields = append(fields, fld(1, entry(c.in[i], c.in[i+1])))
			}
			got, _ = diffDecode(t, wrapHTTP(fld(13, cat(fields...))), c.custom)
			var keys []string
			for _, hv := range got.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
				keys = append(keys, hv.GetKey())
				if _, ok := c.want[hv.GetKey()]; !ok {
					t.Errorf("header_map kept %q", hv.GetKey())
				}
			}
			for k := range c.want {
				if !slices.Contains(keys, k) {
					t.Errorf("header_map dropped %q", k)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestKeepHeaderMatchesReference: keepHeader agrees with the reference
// predicate on names around every kept one (case, length, Unicode folding).
func TestKeepHeaderMatchesReference(t *testing.T) {
	custom := []string{"authorization", "x-a", "x-gatehouse-credentials", strings.Repeat("y", 255)}
	names := namesOf(custom...)
	var keys []string
	for _, n := range append(slices.Clone(fixedHeaderNames), custom...) {
		keys = append(keys, n, strings.ToUpper(n), n[:len(n)-1], n+"x", "x"+n[1:],
			strings.ReplaceAll(n, "k", "\u212a"), strings.ReplaceAll(n, "s", "\u017f"),
			strings.ReplaceAll(n, "-", "_"))
	}
	keys = append(keys, "", "x", strings.Repeat("y", 256), strings.Repeat("Y", 255))
	for _, k := range keys {
		if got, want := keepHeader(k, names), refKeep(k, custom); got != want {
			t.Errorf("keepHeader(%q) = %v, reference %v", k, got, want)
		}
	}
	if keepHeader("authorization", nil) {
		t.Error("a custom name kept without the snapshot naming it")
	}
}

// TestSnapshotHeaderNames: the decoder's custom names follow the published
// applications.
func TestSnapshotHeaderNames(t *testing.T) {
	w := newFixtureWorld(t)
	if w.srv.Snapshot().headers.has("authorization") {
		t.Fatal("authorization kept before any application names it")
	}
	w.apps["app"].ServiceTokenHeader = "authorization"
	w.publish()
	if s := w.srv.Snapshot(); !s.headers.has("Authorization") || s.WithKeys(nil).headers != s.headers {
		t.Fatal("custom header not in the snapshot")
	}
	if NewSnapshot(nil, nil, nil).WithEngine(w.srv.Snapshot().engine).headers.has("authorization") != true {
		t.Fatal("WithEngine lost the custom header")
	}
	if (&checkIn{snap: &Snapshot{engine: w.srv.Snapshot().engine}}).partialOK() {
		t.Fatal("partial decoding without the engine's header names")
	}
}

// fullDecodeOptions is ServerOptions with the partial decoder turned off.
func fullDecodeOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(codec{fallback: encoding.GetCodecV2(protocodec.Name), fullDecode: true})}
}

// TestDecodeOverGRPC: every fixture (and the custom-header variants
// TestFixtures runs) gets the same CheckResponse over gRPC with Codec's
// partial decoder, with Codec decoding in full, with grpc-go's codec, and
// with an interceptor in the chain.
func TestDecodeOverGRPC(t *testing.T) {
	w := newFixtureWorld(t)
	passthrough := grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req)
	})
	clients := map[string]authv3.AuthorizationClient{
		"partial":             grpcClientWith(t, w.srv, ServerOptions()...),
		"partial+interceptor": grpcClientWith(t, w.srv, append(ServerOptions(), passthrough)...),
		"full":                grpcClientWith(t, w.srv, fullDecodeOptions()...),
		"grpc-go":             grpcClientWith(t, w.srv),
	}
	ctx := context.Background()
	sub := map[string]string{"{{CLIENT_ID}}": w.tok.ClientID, "{{CLIENT_SECRET}}": w.secret}
	first, err := clients["full"].Check(ctx, loadFixture(t, "h1_get_service_token.json", sub))
	if err != nil {
		t.Fatal(err)
	}
	sub["{{JWT}}"], _ = wantAllowToken(t, first)
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	for _, header := range []string{"", "authorization", "x-gatehouse-credentials"} {
		app := w.apps["app"]
		app.ServiceTokenHeader = header
		w.clock.Advance(1e9)
		app.UpdatedAt = w.now()
		w.publish()
		for _, f := range files {
			req := loadFixture(t, filepath.Base(f), sub)
			want, err := clients["grpc-go"].Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range clients {
				got, err := c.Check(ctx, req)
				if err != nil {
					t.Fatalf("%s %s: %v", name, filepath.Base(f), err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("header %q, %s, %s:\n%v\nwant\n%v", header, filepath.Base(f), name, got, want)
				}
			}
		}
	}

	// Bytes proto.Unmarshal refuses are refused the same way (no Check).
	for _, bad := range [][]byte{wrapHTTP(str(11, "\xff")), {0x0a, 0x05}} {
		for _, opts := range [][]grpc.ServerOption{ServerOptions(), nil} {
			var resp authv3.CheckResponse
			err := rawConn(t, w.srv, opts...).Invoke(ctx, authv3.Authorization_Check_FullMethodName, rawMsg(bad), &resp, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.Internal {
				t.Errorf("malformed request %x: %v, want Internal", bad, err)
			}
		}
	}
}

// rawMsg is a request sent as the bytes it is.
type rawMsg []byte

// rawCodec sends rawMsg as is, and decodes responses with protobuf-go.
type rawCodec struct{}

func (rawCodec) Name() string { return protocodec.Name }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return encoding.GetCodecV2(protocodec.Name).Marshal(v)
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2(protocodec.Name).Unmarshal(data, v)
}

func rawConn(tb testing.TB, srv *Server, opts ...grpc.ServerOption) *grpc.ClientConn {
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// BenchmarkDecodeCheckRequest: proto.Unmarshal against the partial decoder
// on realistic requests.
func BenchmarkDecodeCheckRequest(b *testing.B) {
	wires := fixtureWires(b)
	custom := namesOf()
	for _, name := range []string{"h1_get_service_token", "h1_browser_cookie_jwt", "h2_post_tls_with_body", "h1_raw_header_map", "mtls_spiffe_peer_certificate"} {
		wire := wires[name+".json"]
		b.Run(name+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				m := &authv3.CheckRequest{}
				if err := proto.Unmarshal(wire, m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/partial", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				m := &authv3.CheckRequest{}
				if fellBack, err := unmarshalCheckRequest(wire, m, custom); err != nil || fellBack {
					b.Fatal(err, fellBack)
				}
			}
		})
	}
}

// BenchmarkCheckServerWork is a Check's server-side work without the
// transport: Codec decoding the request bytes (in full, or partially),
// deciding, and Codec encoding the response, on one goroutine.
func BenchmarkCheckServerWork(b *testing.B) {
	fw := newFixtureWorld(b, noLogger)
	sub := map[string]string{"{{CLIENT_ID}}": fw.tok.ClientID, "{{CLIENT_SECRET}}": fw.secret}
	first, err := fw.srv.Check(context.Background(), loadFixture(b, "h1_get_service_token.json", sub))
	if err != nil {
		b.Fatal(err)
	}
	sub["{{JWT}}"] = first.GetOkResponse().GetHeaders()[0].GetHeader().GetValue()
	full := codec{fallback: encoding.GetCodecV2(protocodec.Name), fullDecode: true}
	for _, fixture := range []string{"h1_get_service_token", "h1_browser_cookie_jwt", "h2_post_tls_with_body"} {
		wire, err := proto.Marshal(loadFixture(b, fixture+".json", sub))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			codec encoding.CodecV2
		}{{"full_decode", full}, {"partial_decode", Codec()}} {
			b.Run(fixture+"/"+c.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					in := &checkIn{snap: fw.srv.Snapshot()}
					if err := c.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, in); err != nil {
						b.Fatal(err)
					}
					resp, enc := fw.srv.check(ctx, &in.CheckRequest, in.snap)
					var out any = resp
					if enc != nil {
						out = enc
					}
					if resp.GetStatus().GetCode() != 0 {
						b.Fatal("denied")
					}
					data, err := c.codec.Marshal(out)
					if err != nil {
						b.Fatal(err)
					}
					data.Free()
				}
			})
		}
	}
}

// TestDecodeDepthBoundary: around protobuf-go's recursion limit (nested
// Structs in metadata_context, and the same with a map entry less), the
// partial decoder fails exactly when proto.Unmarshal does.
func TestDecodeDepthBoundary(t *testing.T) {
	nested := func(n int, list bool) []byte {
		v := structpb.NewStringValue("x")
		for range n {
			if list {
				v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
			} else {
				v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": v}})
			}
		}
		wire, err := proto.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		// route_metadata_context.filter_metadata["f"] = Struct{"v": value}
		return wrapAttrs(fld(13, fld(1, cat(str(1, "f"), fld(2, fld(1, cat(str(1, "v"), fld(2, wire))))))))
	}
	for _, list := range []bool{false, true} {
		// Find where proto.Unmarshal starts failing, then test both sides.
		lo, hi := 1, 6000
		for lo < hi {
			mid := (lo + hi) / 2
			if proto.Unmarshal(nested(mid, list), &authv3.CheckRequest{}) != nil {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if lo == 6000 {
			t.Fatal("no recursion limit found")
		}
		for _, n := range []int{lo - 1, lo} {
			diffDecode(t, nested(n, list), nil)
		}
	}
}
