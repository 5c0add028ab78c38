// Command floor is the least an Envoy ext_authz v3 gRPC server in Go can
// do: every Check gets the same OK response with one header, no lookup, no
// logging. It is the baseline the load benchmark divides gatehouse's
// figures by. It uses grpc.NewServer() with default options, like a first
// attempt would, and serves gRPC health so readiness can be probed the same
// way as for any gRPC service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ok is shared by every response; gRPC only reads it while marshalling.
// --pad-bytes lengthens its header value, for the "sized floor" of the load
// benchmark: the same do-nothing server answering with as many bytes as
// gatehouse does.
var ok = &authv3.CheckResponse{
	Status: &statuspb.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-floor", Value: "ok"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}},
}

type server struct {
	authv3.UnimplementedAuthorizationServer
}

func (server) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return ok, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	debug := flag.String("debug-addr", "", "serve net/http/pprof here, for profiling next to gatehouse (default off)")
	pad := flag.Int("pad-bytes", 0, "make the OK response this many bytes longer (a header value of that length)")
	flag.Parse()
	if *pad < 0 || *pad > 1<<20 {
		fmt.Fprintln(os.Stderr, "floor: --pad-bytes: want 0..1048576")
		os.Exit(2)
	}
	if *pad > 0 {
		ok.GetOkResponse().Headers[0].Header.Value = strings.Repeat("x", *pad)
	}
	if *debug != "" {
		dl, err := net.Listen("tcp", *debug)
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		go http.Serve(dl, nil) // net/http/pprof registers on the default mux
	}
	if err := serve(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, server{})
	healthpb.RegisterHealthServer(gs, health.NewServer()) // SERVING for ""
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	fmt.Fprintf(os.Stderr, "floor: serving ext_authz on %s\n", lis.Addr())
	if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
