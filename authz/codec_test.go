package authz

import (
	"bytes"
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// pathRequests is a world with a bypass policy for 192.0.2.0/24 and one
// request for each kind of path: a service-token allow, a JWT-cookie allow,
// a deny (wrong secret) and a bypass.
func pathRequests(tb testing.TB, mods ...func(*Config)) (*base, map[string]*authv3.CheckRequest) {
	w := newBase(tb, mods...)
	w.policy(w.app, policy.Bypass, ipRule("192.0.2.0/24"))
	w.publish()
	jwt := w.sessionJWT(tb)
	bypass := httpReq("app.example.com", "/health")
	bypass.Attributes.Source.Address.GetSocketAddress().Address = "192.0.2.10"
	return w, map[string]*authv3.CheckRequest{
		"service_token": tokenReq(w.alpha.ClientID, w.alphaSecret),
		"jwt_cookie":    cookieReq(jwt),
		"deny":          tokenReq(w.alpha.ClientID, w.betaSecret),
		"bypass":        bypass,
	}
}

// codecResponses returns the responses a Check gives on each kind of path,
// and an empty one.
func codecResponses(tb testing.TB) map[string]*authv3.CheckResponse {
	w, reqs := pathRequests(tb, noLogger)
	out := map[string]*authv3.CheckResponse{"empty": {}}
	for name, req := range reqs {
		out[name] = w.check(req)
	}
	return out
}

// TestCodecMatchesProto: the vtproto encoding of every kind of response
// decodes to the same message as protobuf-go's; messages without vtproto
// code (health) go through the fallback.
func TestCodecMatchesProto(t *testing.T) {
	c := Codec()
	if c.Name() != protocodec.Name {
		t.Fatalf("Name() = %q", c.Name())
	}
	for name, resp := range codecResponses(t) {
		data, err := c.Marshal(resp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := &authv3.CheckResponse{}
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !proto.Equal(got, resp) {
			t.Errorf("%s: vtproto bytes decode to\n%v\nwant\n%v", name, got, resp)
		}
		if n, want := data.Len(), proto.Size(resp); n != want {
			t.Errorf("%s: %d bytes, protobuf-go says %d", name, n, want)
		}
		data.Free()
	}
	h := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	data, err := c.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	got := &healthpb.HealthCheckResponse{}
	if err := c.Unmarshal(data, got); err != nil || !proto.Equal(got, h) {
		t.Fatalf("health round trip: %v, %v", got, err)
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Fatal("Marshal of a non-message succeeded")
	}
}

// BenchmarkMarshalResponse: what encoding a Check's response costs, with
// grpc-go's proto codec and with Codec.
func BenchmarkMarshalResponse(b *testing.B) {
	resps := codecResponses(b)
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
	}{{"proto", encoding.GetCodecV2(protocodec.Name)}, {"vtproto", Codec()}} {
		for _, kind := range []string{"service_token", "jwt_cookie", "deny", "bypass"} {
			resp := resps[kind]
			b.Run(kind+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					data, err := c.codec.Marshal(resp)
					if err != nil {
						b.Fatal(err)
					}
					data.Free()
				}
			})
		}
	}
}

// TestPreEncodedResponsesOverGRPC: through a real gRPC server, with Codec
// (cached token allows sent as their stored bytes) and with grpc-go's own
// codec (the wrapper encoded as a plain message), every kind of response
// arrives equal to what Check returns; and the stored bytes are the
// response's encoding.
func TestPreEncodedResponsesOverGRPC(t *testing.T) {
	w, reqs := pathRequests(t, noLogger)
	for _, opts := range []struct {
		name string
		opts []grpc.ServerOption
	}{{"Codec", ServerOptions()}, {"grpc-go codec", nil}} {
		client := grpcClientWith(t, w.srv, opts.opts...)
		for name, req := range reqs {
			want, _ := w.srv.Check(context.Background(), req)
			for range 2 { // the first may build the cached response
				got, err := client.Check(context.Background(), req)
				if err != nil {
					t.Fatalf("%s/%s: %v", opts.name, name, err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("%s/%s: over gRPC\n%v\nwant\n%v", opts.name, name, got, want)
				}
			}
		}
	}

	_, enc := w.srv.check(context.Background(), reqs["service_token"], w.srv.Snapshot())
	if enc == nil || enc.wire == nil {
		t.Fatal("a token allow was not pre-encoded")
	}
	decoded := &authv3.CheckResponse{}
	if err := proto.Unmarshal(enc.wire, decoded); err != nil || !proto.Equal(decoded, enc.CheckResponse) {
		t.Fatalf("stored bytes decode to %v (%v), want %v", decoded, err, enc.CheckResponse)
	}
	data, err := Codec().Marshal(enc)
	if err != nil || !bytes.Equal(data.Materialize(), enc.wire) {
		t.Fatalf("Codec did not send the stored bytes: %v", err)
	}
	if _, enc := w.srv.check(context.Background(), reqs["deny"], w.srv.Snapshot()); enc != nil {
		t.Fatal("a deny was pre-encoded: it carries per-request metadata")
	}
}
