package main

import (
	"context"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/authz"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// checkAccessAdapter answers the admin API's CheckAccess with the
// authorizer's own decision logic (authz.Server.Explain), so `gatehouse
// check` can never disagree with what Envoy is told. It lives here because
// admin must not import authz.
type checkAccessAdapter struct{ srv *authz.Server }

func (a checkAccessAdapter) CheckAccess(ctx context.Context, in *adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) {
	req, err := checkRequestFrom(in)
	if err != nil {
		return nil, err
	}
	v := a.srv.Explain(req)
	decision := "deny"
	if v.Allowed {
		decision = "allow"
	}
	return &adminv1.CheckAccessResponse{
		Decision:        decision,
		HttpStatus:      int32(v.Status),
		Reason:          v.Reason.String(),
		ApplicationId:   v.AppID,
		ApplicationName: v.AppName,
		PolicyId:        v.PolicyID,
		PolicyName:      v.PolicyName,
		PolicyDecision:  v.PolicyDecision,
		Rule:            v.Rule,
		TokenId:         v.TokenID,
		TokenName:       v.TokenName,
		DryRun:          v.DryRun,
	}, nil
}

// checkRequestFrom builds the CheckRequest Envoy would send for the request
// described by in.
func checkRequestFrom(in *adminv1.CheckAccessRequest) (*authv3.CheckRequest, error) {
	if in.GetHost() == "" {
		return nil, status.Error(codes.InvalidArgument, "host: required")
	}
	path := in.GetPath()
	if path == "" {
		path = "/"
	}
	method := strings.ToUpper(in.GetMethod())
	if method == "" {
		method = "GET"
	}
	headers := map[string]string{":authority": in.GetHost(), ":path": path, ":method": method, ":scheme": "https"}
	for i, h := range in.GetHeaders() {
		name := strings.ToLower(strings.TrimSpace(h.GetName()))
		if name == "" || strings.ContainsAny(name, " \t\r\n:") && !strings.HasPrefix(name, ":") {
			return nil, status.Errorf(codes.InvalidArgument, "headers[%d].name: %q is not a header name", i, h.GetName())
		}
		if prev, ok := headers[name]; ok && !strings.HasPrefix(name, ":") {
			headers[name] = prev + "," + h.GetValue() // as Envoy joins repeated headers
		} else {
			headers[name] = h.GetValue()
		}
	}
	src := "127.0.0.1"
	if in.GetSourceIp() != "" {
		addr, err := netip.ParseAddr(in.GetSourceIp())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "source_ip: %q is not an IP address", in.GetSourceIp())
		}
		src = addr.String()
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: src, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
			}}},
			Principal: in.GetPrincipal(),
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   method,
			Path:     path,
			Host:     in.GetHost(),
			Scheme:   "https",
			Protocol: "HTTP/1.1",
			Headers:  headers,
		}},
	}}
	if in.GetApplication() != "" {
		req.Attributes.ContextExtensions = map[string]string{"application": in.GetApplication()}
	}
	return req, nil
}
