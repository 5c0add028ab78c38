package authz

import (
	"context"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// floorServer is bench/floor's handler: the same OK with one header for
// every Check, no lookup. BenchmarkCheckOverGRPC divides by it.
type floorServer struct {
	authv3.UnimplementedAuthorizationServer
}

var floorOK = &authv3.CheckResponse{
	Status: &rpcstatus.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-floor", Value: "ok"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}},
}

func (floorServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return floorOK, nil
}

// tcpClient serves register on a real gRPC server on a loopback TCP port
// and returns a client over one connection.
func tcpClient(b *testing.B, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) authv3.AuthorizationClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	register(gs)
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// BenchmarkCheckOverGRPC runs whole Check RPCs over loopback TCP (client
// and server in this process, 16 concurrent callers), for the floor handler
// and for gatehouse, so one run gives the gRPC-included ratio and, with
// -cpuprofile, where gatehouse spends what the floor does not. The load
// benchmark (make bench-load) is the authority; this is the profiling tool.
func BenchmarkCheckOverGRPC(b *testing.B) {
	w, reqs := pathRequests(b, noLogger)
	token := reqs["service_token"]
	for _, c := range []struct {
		name     string
		register func(grpc.ServiceRegistrar)
		req      *authv3.CheckRequest
		opts     []grpc.ServerOption
	}{
		{"floor", func(gs grpc.ServiceRegistrar) { authv3.RegisterAuthorizationServer(gs, floorServer{}) }, token, nil},
		{"service_token/protocodec", w.srv.Register, token, nil},
		{"service_token", w.srv.Register, token, ServerOptions()},
		{"jwt_cookie", w.srv.Register, reqs["jwt_cookie"], ServerOptions()},
		{"deny", w.srv.Register, reqs["deny"], ServerOptions()},
	} {
		runOverGRPC(b, c.name, c.register, c.req, c.opts)
	}

	// Realistic Envoy requests (testdata/checkrequests), whose CheckRequest
	// decoding is the largest cost: Codec decoding in full against its
	// partial decoder (decode.go).
	fw := newFixtureWorld(b, noLogger)
	fw.publish()
	sub := map[string]string{"{{CLIENT_ID}}": fw.tok.ClientID, "{{CLIENT_SECRET}}": fw.secret}
	first, err := fw.srv.Check(context.Background(), loadFixture(b, "h1_get_service_token.json", sub))
	if err != nil {
		b.Fatal(err)
	}
	sub["{{JWT}}"] = first.GetOkResponse().GetHeaders()[0].GetHeader().GetValue()
	for _, fixture := range []string{"h1_get_service_token", "h1_browser_cookie_jwt", "h2_post_tls_with_body"} {
		req := loadFixture(b, fixture+".json", sub)
		runOverGRPC(b, fixture+"/full_decode", fw.srv.Register, req, fullDecodeOptions())
		runOverGRPC(b, fixture+"/partial_decode", fw.srv.Register, req, ServerOptions())
	}
}

// runOverGRPC is one BenchmarkCheckOverGRPC case. It reports cpu-ns/op,
// the process's CPU time per Check (client and server).
func runOverGRPC(b *testing.B, name string, register func(grpc.ServiceRegistrar), req *authv3.CheckRequest, opts []grpc.ServerOption) {
	b.Run(name, func(b *testing.B) {
		client := tcpClient(b, register, opts...)
		ctx := context.Background()
		resp, err := client.Check(ctx, req)
		if err != nil {
			b.Fatalf("Check: %v", err)
		}
		if name != "deny" && resp.GetStatus().GetCode() != 0 {
			b.Fatalf("Check denied: %v", resp.GetStatus())
		}
		b.ReportAllocs()
		b.SetParallelism(8) // × GOMAXPROCS callers
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		// Client and server CPU together: on a shared machine a steadier
		// comparison than ns/op, and the client's share is the same in every
		// case with the same request.
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
}
