package authz

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Response building. Everything that does not depend on the request is built
// once here and shared: deny bodies per reason, the OK status, the
// "strip a forged assertion" OK response. Shared messages are never
// modified after init; gRPC only reads them when marshalling, which is safe
// concurrently.

// Dynamic metadata keys (namespace envoy.filters.http.ext_authz).
const (
	metaTokenID     = "token_id"
	metaTokenName   = "token_name"
	metaClientID    = "client_id"
	metaApplication = "application"
	metaPolicy      = "policy"
	metaDecision    = "decision"
	metaReason      = "reason"
	metaDryRun      = "dry_run"
)

var (
	statusOK = &rpcstatus.Status{}

	// okStrip lets a request through with no identity. It removes a
	// client-forged cf-access-jwt-assertion, so the upstream never trusts
	// one gatehouse did not issue, and a client secret, which no upstream
	// needs to see.
	okStrip = &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		HeadersToRemove: []string{headerAssertion, headerClientSecret},
	}}

	denied   [numReasons]*authv3.CheckResponse_DeniedResponse
	statuses [numReasons]*rpcstatus.Status

	valueAllow  = structpb.NewStringValue("allow")
	valueDeny   = structpb.NewStringValue("deny")
	valueTrue   = structpb.NewBoolValue(true)
	reasonValue [numReasons]*structpb.Value
)

func init() {
	for r := range numReasons {
		reasonValue[r] = structpb.NewStringValue(r.String())
		statuses[r] = &rpcstatus.Status{Code: int32(r.Code()), Message: r.String()}
		if r.Allowed() {
			statuses[r] = statusOK
			continue
		}
		var kind string
		switch r.HTTPStatus() {
		case http.StatusUnauthorized:
			kind = "unauthorized"
		case http.StatusForbidden:
			kind = "forbidden"
		case http.StatusBadRequest:
			kind = "bad_request"
		case http.StatusServiceUnavailable:
			kind = "unavailable"
		default:
			kind = "internal"
		}
		denied[r] = &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(r.HTTPStatus())},
			Headers: []*corev3.HeaderValueOption{{
				Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
			}},
			// Reasons are fixed snake_case words: no escaping needed.
			Body: `{"error":"` + kind + `","reason":"` + r.String() + `"}`,
		}}
	}
}

// assertionHeader is the upstream header carrying the session JWT.
// OVERWRITE_IF_EXISTS_OR_ADD with the deprecated append unset is the only
// form that overwrites (a forged copy too) in both legacy Envoy, which reads
// only append, and Envoy ≥ 2026, which reads append_action.
func assertionHeader(jwt string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: headerAssertion, Value: jwt},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// sessionCookie is the Set-Cookie for the downstream response. append: true
// adds a line in every Envoy version, so cookies the upstream sets survive.
func sessionCookie(m *minted) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{
			Key: "set-cookie",
			Value: cookieName + "=" + m.jwt + "; Path=/; Expires=" +
				m.exp.UTC().Format(http.TimeFormat) + "; HttpOnly; Secure; SameSite=Lax",
		},
		Append: wrapperspb.Bool(true),
	}
}

// tokenResponse returns the shared CheckResponse allowing d's token with m's
// JWT, building it on first use. Its shape depends only on the variant and
// on what the mintKey covers.
func tokenResponse(m *minted, d *decision) *preEncoded {
	slot := &m.resp[d.via]
	if resp := slot.Load(); resp != nil {
		return resp
	}
	app := d.app.App
	ok := &authv3.OkHttpResponse{
		Headers:         []*corev3.HeaderValueOption{assertionHeader(m.jwt)},
		HeadersToRemove: []string{headerClientSecret},
	}
	if d.via == viaCustom && d.header != "" {
		ok.HeadersToRemove = append(ok.HeadersToRemove, d.header)
	}
	if d.via != viaJWT && app.SessionCookie {
		ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{sessionCookie(m)}
	}
	resp := &authv3.CheckResponse{
		Status:          statusOK,
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(d),
	}
	slot.CompareAndSwap(nil, encode(resp))
	return slot.Load()
}

// okStrips holds okStrip extended with an application's service token
// header, by header name: that header carries a client secret (in its JSON)
// and must not reach the upstream either. Copy-on-write; there are as many
// entries as distinct header names configured, so it is never pruned.
var (
	okStrips   atomic.Pointer[map[string]*authv3.CheckResponse_OkResponse]
	okStripsMu sync.Mutex
)

func okStripWith(header string) *authv3.CheckResponse_OkResponse {
	if m := okStrips.Load(); m != nil {
		if r, ok := (*m)[header]; ok {
			return r
		}
	}
	okStripsMu.Lock()
	defer okStripsMu.Unlock()
	var next map[string]*authv3.CheckResponse_OkResponse
	if m := okStrips.Load(); m != nil {
		if r, ok := (*m)[header]; ok {
			return r
		}
		next = maps.Clone(*m)
	} else {
		next = make(map[string]*authv3.CheckResponse_OkResponse, 1)
	}
	r := &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		HeadersToRemove: append(slices.Clone(okStrip.OkResponse.HeadersToRemove), header),
	}}
	next[header] = r
	okStrips.Store(&next)
	return r
}

// preEncoded is a response that will be sent many times, with its wire
// encoding made once. It is a proto.Message (the embedded response's
// methods); Codec sends wire as it is.
type preEncoded struct {
	*authv3.CheckResponse
	wire []byte // nil if encoding failed: Codec then encodes as usual
}

func encode(resp *authv3.CheckResponse) *preEncoded {
	wire, err := proto.Marshal(resp)
	if err != nil {
		wire = nil
	}
	return &preEncoded{CheckResponse: resp, wire: wire}
}

// plainResponse renders every decision that carries no JWT: denies, and
// allows without a token identity (bypass, unmatched, ip/principal/everyone
// policies, and a deny in dry run, which Envoy is told to let through).
func plainResponse(d *decision) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{DynamicMetadata: metadata(d)}
	if d.allowed() || d.dryRun {
		resp.Status = statusOK
		resp.HttpResponse = okStrip
		if d.app != nil && d.app.App.ServiceTokenHeader != "" {
			resp.HttpResponse = okStripWith(d.app.App.ServiceTokenHeader)
		}
		return resp
	}
	resp.Status = statuses[d.reason]
	resp.HttpResponse = denied[d.reason]
	return resp
}

// metadata is the dynamic metadata Envoy stores under
// envoy.filters.http.ext_authz for access logs. Never a secret or a JWT.
// decision and reason are what the policies decided, also in dry run.
func metadata(d *decision) *structpb.Struct {
	f := make(map[string]*structpb.Value, 8)
	if d.allowed() {
		f[metaDecision] = valueAllow
	} else {
		f[metaDecision] = valueDeny
	}
	f[metaReason] = reasonValue[d.reason]
	if d.app != nil {
		f[metaApplication] = structpb.NewStringValue(d.app.App.Name)
	}
	if p := d.result.Policy; p != nil {
		f[metaPolicy] = structpb.NewStringValue(p.Name)
	}
	if t := d.tok(); t != nil {
		f[metaTokenID] = structpb.NewStringValue(t.ID)
		f[metaTokenName] = structpb.NewStringValue(t.Name)
		f[metaClientID] = structpb.NewStringValue(t.ClientID)
	} else if d.clientID != "" {
		f[metaClientID] = structpb.NewStringValue(d.clientID)
	}
	if d.dryRun {
		f[metaDryRun] = valueTrue
	}
	return &structpb.Struct{Fields: f}
}
