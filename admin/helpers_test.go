package admin_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"log/slog"

	"github.com/gatehouse-dev/gatehouse/admin"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// t0 is the tests' starting time.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeDecider answers CheckAccess with a canned response echoing the host.
type fakeDecider struct{}

func (fakeDecider) CheckAccess(ctx context.Context, req *adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) {
	if req.GetHost() == "" {
		return nil, status.Error(codes.InvalidArgument, "host: required")
	}
	return &adminv1.CheckAccessResponse{Decision: "deny", HttpStatus: 403, Reason: "no application for " + req.GetHost()}, nil
}

// env is a running admin server over bufconn on a real store.
type env struct {
	t      testing.TB
	db     *store.DB
	dir    string
	clk    *clock
	logs   *syncBuffer
	srv    *admin.Server
	master []byte
	conn   *grpc.ClientConn
	client adminv1.AdminServiceClient
	health healthpb.HealthClient
	key    string // the bootstrap (read-write) admin key
	lis    *bufconn.Listener
}

// dial opens another client connection to the server.
func (e *env) dial() *grpc.ClientConn {
	e.t.Helper()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return e.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

type envOption func(*admin.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	return newEnvSync(t, true, opts...)
}

// newEnvSync starts an env; noSync=false keeps fsync on (benchmarks).
func newEnvSync(t testing.TB, noSync bool, opts ...envOption) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "gatehouse.db"), store.Options{NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: t0}
	keyPath := filepath.Join(dir, "admin.key")
	created, err := admin.EnsureAdminKey(db, keyPath, clk.Now())
	if err != nil || !created {
		t.Fatalf("EnsureAdminKey = %v, %v", created, err)
	}
	raw, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	master, err := tokens.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := admin.Config{
		Store:      db,
		Now:        clk.Now,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Decider:    fakeDecider{},
		MasterKey:  master,
		SigningAlg: tokens.AlgES256, // fast to generate
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := admin.New(cfg)
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
	})
	e := &env{
		db: db, dir: dir, clk: clk, logs: logs, srv: srv, master: master, conn: conn,
		client: adminv1.NewAdminServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
		key:    strings.TrimSpace(string(raw)),
		t:      t,
		lis:    lis,
	}
	return e
}

// ctx is a context carrying the bootstrap key.
func (e *env) ctx() context.Context { return withKey(e.key) }

func withKey(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// createToken creates a token and fails the test on error.
func (e *env) createToken(name, duration string) *adminv1.ServiceToken {
	e.t.Helper()
	tok, err := e.client.CreateServiceToken(e.ctx(), &adminv1.CreateServiceTokenRequest{Name: name, Duration: duration})
	if err != nil {
		e.t.Fatalf("CreateServiceToken(%q): %v", name, err)
	}
	return tok
}

func (e *env) createApp(name string, domains ...string) *adminv1.Application {
	e.t.Helper()
	a, err := e.client.CreateApplication(e.ctx(), &adminv1.CreateApplicationRequest{Name: name, Domains: domains})
	if err != nil {
		e.t.Fatalf("CreateApplication(%q): %v", name, err)
	}
	return a
}

func tokenRule(ref string) *adminv1.Rule {
	return &adminv1.Rule{Selector: &adminv1.Rule_ServiceToken{ServiceToken: &adminv1.ServiceTokenRule{TokenId: ref}}}
}

func ipRule(cidr string) *adminv1.Rule {
	return &adminv1.Rule{Selector: &adminv1.Rule_Ip{Ip: &adminv1.IPRule{Ip: cidr}}}
}

func everyone() *adminv1.Rule {
	return &adminv1.Rule{Selector: &adminv1.Rule_Everyone{Everyone: &adminv1.Empty{}}}
}

// storedToken reads a token straight from the store.
func (e *env) storedToken(id string) *tokens.ServiceToken {
	e.t.Helper()
	var tok *tokens.ServiceToken
	if err := e.db.View(func(tx *store.Tx) error {
		var err error
		tok, err = tx.Token(id)
		return err
	}); err != nil {
		e.t.Fatalf("store token %s: %v", id, err)
	}
	return tok
}

// audit returns every audit event.
func (e *env) audit() []*store.AuditEvent {
	e.t.Helper()
	var evs []*store.AuditEvent
	if err := e.db.View(func(tx *store.Tx) error {
		return tx.ForEachAudit(time.Time{}, func(ev *store.AuditEvent) error {
			evs = append(evs, ev)
			return nil
		})
	}); err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// lastAudit returns the newest audit event.
func (e *env) lastAudit() *store.AuditEvent {
	e.t.Helper()
	evs := e.audit()
	if len(evs) == 0 {
		e.t.Fatal("audit log is empty")
	}
	return evs[len(evs)-1]
}

// wantStatus checks that err is a status with code whose message contains
// every one of subs.
func wantStatus(t *testing.T, err error, code codes.Code, subs ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status (want %s)", err, code)
	}
	if st.Code() != code {
		t.Fatalf("code = %s (%q), want %s", st.Code(), st.Message(), code)
	}
	for _, s := range subs {
		if !strings.Contains(st.Message(), s) {
			t.Fatalf("message %q does not contain %q", st.Message(), s)
		}
	}
}
