package main

import (
	"context"
	"fmt"
	"strings"
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
	"google.golang.org/grpc/status"

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
	createAnyTokenApp(t, admin, actx, "drain", "drain.test")
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
	// Stubborn clients ignore health and keep sending, as a client with a
	// stale endpoint list would: through the drain delay they must still be
	// answered, and once the listeners close they may only be refused
	// (Unavailable), never answered wrongly.
	var (
		stubbornOK, stubbornOKAfterSignal atomic.Int64
		stubbornFirstErr                  atomic.Int64 // Unix ns of the first refused Check
		signalledAt                       atomic.Int64 // Unix ns of SIGTERM
	)
	for w := range 4 {
		tok := toks[w%len(toks)]
		req := checkRequest("drain.test", "/", map[string]string{
			"cf-access-client-id": tok.GetClientId(), "cf-access-client-secret": tok.GetClientSecret(),
		})
		load.Go(func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := client.Check(ctx, req)
				cancel()
				if err != nil {
					if status.Code(err) != codes.Unavailable {
						fail("stubborn client: Check failed with %v, want only Unavailable once the listener closes", err)
					}
					stubbornFirstErr.CompareAndSwap(0, time.Now().UnixNano())
					return
				}
				if resp.GetStatus().GetCode() != int32(codes.OK) {
					fail("stubborn client: Check denied during the drain: %s", resp.GetDeniedResponse().GetBody())
					return
				}
				stubbornOK.Add(1)
				if at := signalledAt.Load(); at != 0 && stop.Load() {
					stubbornOKAfterSignal.Add(1)
				}
			}
		})
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
	signalledAt.Store(signalled.UnixNano())
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
	// The drain delay (1s) kept answering after health went NOT_SERVING,
	// and nothing was refused before it was over.
	if n := stubbornOKAfterSignal.Load(); n == 0 {
		t.Error("no Check was answered between NOT_SERVING and the end of the drain delay")
	}
	if first := stubbornFirstErr.Load(); first == 0 {
		t.Error("stubborn clients were never refused: did the listener close?")
	} else if d := time.Duration(first - signalled.UnixNano()); d < 900*time.Millisecond {
		t.Errorf("a Check was refused %v after SIGTERM, before the 1s drain delay was over", d)
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
	t.Logf("%d Checks allowed, none failed, across SIGTERM; stubborn clients: %d answered, %d of them after NOT_SERVING",
		allowed.Load(), stubbornOK.Load(), stubbornOKAfterSignal.Load())
}

// TestSecondSignalExitsAtOnce: a second SIGTERM during a long drain exits
// at once with status 1 and says so.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	bin, _ := binaries(t)
	srv := startServe(t, bin, t.TempDir(), "--drain-delay", "1m")
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.logs.String(), "shutting down: draining") {
		if time.Now().After(deadline) {
			t.Fatalf("no drain after SIGTERM:\n%s", srv.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after the second SIGTERM (drain delay 1m):\n%s", srv.logs.String())
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d after a second signal, want 1", code)
	}
	if !strings.Contains(srv.logs.String(), "second signal: exiting without draining") {
		t.Errorf("no log line for the second signal:\n%s", srv.logs.String())
	}
}
