package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// TestGracefulShutdownUnderLoad: a child `gatehouse serve` under Check load
// gets SIGTERM. Its clients behave as Envoy does, sending Checks until the
// gRPC health check reports NOT_SERVING. No Check may fail: health turns
// first, --drain-delay keeps the listener answering while clients move away,
// and in-flight Checks finish before the store closes. The server exits 0,
// and the last_seen_at times recorded in memory are flushed on the way out
// (periodic flushes are set to an hour, so only the shutdown flush can have
// written them).
func TestGracefulShutdownUnderLoad(t *testing.T) {
	bin, _ := binaries(t)
	dataDir := t.TempDir()
	srv := startServe(t, bin, dataDir, "--drain-delay", "1s", "--last-seen-flush", "1h", "--log-allowed=false")
	admin, actx := srv.adminClient(t)
	app, err := admin.CreateApplication(actx, &adminv1.CreateApplicationRequest{Name: "drain", Domains: []string{"drain.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePolicy(actx, &adminv1.CreatePolicyRequest{
		Application: app.GetId(), Name: "any token", Decision: "non_identity",
		Include: []*adminv1.Rule{{Selector: &adminv1.Rule_AnyValidServiceToken{AnyValidServiceToken: &adminv1.Empty{}}}},
	}); err != nil {
		t.Fatal(err)
	}
	var toks []*adminv1.ServiceToken
	for i := range 4 {
		tok, err := admin.CreateServiceToken(actx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("drain-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}

	conn, err := grpc.NewClient(srv.authzAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)

	var (
		stop      atomic.Bool // set when health says NOT_SERVING, as Envoy's health checker would
		allowed   atomic.Int64
		mu        sync.Mutex
		failures  []string
		load      sync.WaitGroup
		started   = make(chan struct{})
		startOnce sync.Once
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for w := range 8 {
		tok := toks[w%len(toks)]
		req := checkRequest("drain.test", "/", map[string]string{
			"cf-access-client-id": tok.GetClientId(), "cf-access-client-secret": tok.GetClientSecret(),
		})
		load.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := client.Check(ctx, req)
				cancel()
				switch {
				case err != nil:
					fail("Check failed during the drain: %v", err)
					return
				case resp.GetStatus().GetCode() != int32(codes.OK):
					fail("Check denied during the drain: %s", resp.GetDeniedResponse().GetBody())
					return
				}
				if allowed.Add(1) == 200 {
					startOnce.Do(func() { close(started) })
				}
			}
		})
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no load after 30s")
	}
	time.Sleep(200 * time.Millisecond) // steady load, not a ramp

	health := healthpb.NewHealthClient(conn)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	for !stop.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case err != nil:
			fail("health check failed before it reported NOT_SERVING: %v", err)
			stop.Store(true)
		case resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING:
			stop.Store(true)
		case time.Since(signalled) > 5*time.Second:
			fail("health still %v 5s after SIGTERM", resp.GetStatus())
			stop.Store(true)
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	load.Wait()
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30s of SIGTERM")
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0\n%s", code, srv.logs.String())
	}
	mu.Lock()
	for _, f := range failures {
		t.Error(f)
	}
	mu.Unlock()
	if n := allowed.Load(); n < 200 {
		t.Fatalf("only %d Checks allowed", n)
	}

	again := startServe(t, bin, dataDir)
	admin, actx = again.adminClient(t)
	for _, tok := range toks {
		got, err := admin.GetServiceToken(actx, &adminv1.GetServiceTokenRequest{Id: tok.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetLastSeenAt() == nil {
			t.Errorf("token %s: last_seen_at was not flushed on shutdown", tok.GetName())
		}
	}
	t.Logf("%d Checks allowed, none failed, across SIGTERM", allowed.Load())
}
