package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/gatehouse-dev/gatehouse/admin"
	"github.com/gatehouse-dev/gatehouse/authz"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// runServe is `gatehouse serve`: parse flags, validate, wire, run until a
// signal or ctx ends, then shut down in order. `gatehouse help serve` calls
// it with -h and expects flag.ErrHelp or nil back.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultServeConfig()
	fs := cfg.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return &usageError{msg: err.Error()}
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)

	// Signals are this function's to handle (a first one drains, a second
	// exits at once): main's own signal context would end ctx on the same
	// first signal, racing with that, so only ctx's values are kept.
	ctx, stop := signalContext(context.WithoutCancel(ctx), logger)
	defer stop()

	s, err := startServer(cfg, logger, time.Now)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.shutdown()
}

// signalContext ends ctx on the first SIGINT/SIGTERM; a second one exits the
// process at once.
func signalContext(parent context.Context, logger *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			logger.Info("shutting down: draining in-flight requests (send the signal again to exit at once)", "signal", sig.String())
			cancel()
		case <-ctx.Done():
			return
		}
		sig := <-ch
		logger.Warn("second signal: exiting without draining", "signal", sig.String())
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// server is a running gatehouse: the store, the published view, three
// listeners and the background jobs.
type server struct {
	cfg    serveConfig
	log    *slog.Logger
	now    func() time.Time
	db     *store.DB
	master []byte

	view    *view
	authz   *authz.Server
	admin   *admin.Server
	metrics *metrics

	authzGRPC   *grpc.Server
	adminGRPC   *grpc.Server
	httpSrv     *http.Server
	debugSrv    *http.Server // nil unless --debug-addr
	authzHealth *health.Server
	adminHealth *health.Server
	ready       atomic.Bool

	// The listeners between openListeners and serve, and the bound
	// addresses (useful with port 0).
	authzLn, adminLn, httpLn       net.Listener
	debugLn                        net.Listener // nil unless --debug-addr
	authzAddr, adminAddr, httpAddr string
	debugAddr                      string // "" unless --debug-addr

	jobsStop       chan struct{}
	jobsDone       sync.WaitGroup
	lastExpiryWarn time.Time
	closed         sync.Once
	stopped        sync.Once
	stopErr        error
	// drainCut, when closed, ends the drain delay early (tests; nil, and
	// so never, in production).
	drainCut chan struct{}
}

// startServer opens the store, prepares keys, builds the first snapshot and
// starts the listeners and jobs. On error everything opened is closed.
func startServer(cfg serveConfig, logger *slog.Logger, now func() time.Time) (_ *server, err error) {
	s := &server{cfg: cfg, log: logger, now: now, jobsStop: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	if err := ensureDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.DataDir, "gatehouse.db")
	s.db, err = store.Open(dbPath, store.Options{})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	s.master, err = loadOrCreateMasterKey(cfg.MasterKeyFile)
	if err != nil {
		return nil, err
	}
	if err := s.bootstrapAdminKey(); err != nil {
		return nil, err
	}
	if created, err := admin.EnsureSigningKey(s.db, s.master, tokens.Alg(cfg.SigningAlg), now()); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	} else if created {
		logger.Info("created the first session-JWT signing key", "alg", cfg.SigningAlg)
	}

	s.view, err = loadView(s.db, s.master, logger)
	if err != nil {
		return nil, err
	}
	if err := s.openListeners(); err != nil {
		return nil, err
	}
	if s.cfg.Issuer == "" {
		s.cfg.Issuer = defaultIssuer(s.httpAddr)
		if s.cfg.Issuer != "http://"+s.httpAddr {
			s.log.Warn("the HTTP listener is on every interface: the session JWTs' issuer defaults to this host's name; set --issuer to the URL origins use", "issuer", s.cfg.Issuer)
		}
	}
	s.metrics = newMetrics(s)
	authzCfg := authz.Config{
		Issuer:         s.cfg.Issuer,
		UnmatchedAllow: cfg.Unmatched == "allow",
		TrustedProxies: cfg.TrustedProxies,
		LogAllowed:     cfg.LogAllowed,
		Logger:         logger,
		Now:            now,
		Observer:       s.metrics,
	}
	if err := authzCfg.Validate(); err != nil {
		return nil, err
	}
	s.authz = authz.NewServer(authzCfg, s.view.current())
	s.view.setSink(viewSink{
		publish:            s.authz.Publish,
		forgetTokens:       s.authz.ForgetTokens,
		forgetApplications: s.authz.ForgetApplications,
		appsChanged:        s.metrics.pruneApps,
	})

	s.admin = admin.New(admin.Config{
		Store:     s.db,
		Now:       now,
		Logger:    logger,
		Decider:   checkAccessAdapter{s.authz},
		MasterKey: s.master,
	})

	if err := s.serve(); err != nil {
		return nil, err
	}
	s.startJobs()
	s.ready.Store(true)
	logger.Info("gatehouse serving",
		"authz_addr", s.authzAddr, "admin_addr", s.adminAddr, "http_addr", s.httpAddr,
		"data_dir", cfg.DataDir, "issuer", s.cfg.Issuer, "tokens", s.view.current().Len())
	// Loading decoded every token (garbage once copied into the snapshot)
	// and read every page of the data file (released as it went, but for
	// the last stretch): give both back rather than keep them in RSS; off
	// the start-up path, since the second is a full collection.
	go func() {
		if err := s.db.ReleaseMappedPages(); err != nil && s.ready.Load() {
			logger.Warn("cannot release the data file's mapped pages", "err", err)
		}
		debug.FreeOSMemory()
	}()
	return s, nil
}

func ensureDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("--data-dir %s is a file, not a directory", dir)
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("data dir: %w", err)
	}
}

// loadOrCreateMasterKey reads the 32-byte key that seals signing keys in the
// store, creating it (0600) on first start.
func loadOrCreateMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := decodeMasterKey(b)
		if derr != nil {
			return nil, fmt.Errorf("master key %s: %w", path, derr)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("master key: %w", err)
	}
	key, err := tokens.NewMasterKey()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(encodeMasterKey(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	return key, nil
}

// defaultIssuer is the iss of session JWTs without --issuer: the HTTP
// listener's URL, with the host's name in place of an unspecified address
// (0.0.0.0, ::), which no origin could fetch keys from.
func defaultIssuer(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "http://" + httpAddr
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// bootstrapAdminKey makes sure the store has an admin key. When it has none:
// a key already in --admin-key-file (for example a mounted Kubernetes
// Secret) is registered; otherwise a new key is generated and written there.
func (s *server) bootstrapAdminKey() error {
	path := s.cfg.AdminKeyFile
	var has bool
	if err := s.db.View(func(tx *store.Tx) error {
		keys, err := tx.AdminKeys()
		has = len(keys) > 0
		return err
	}); err != nil {
		return fmt.Errorf("admin keys: %w", err)
	}
	if has {
		return nil // the file is only for a store without admin keys: not read
	}
	if b, err := os.ReadFile(path); err == nil {
		registered, err := registerAdminKey(s.db, "bootstrap", strings.TrimSpace(string(b)), s.now())
		if err != nil {
			return fmt.Errorf("admin key file %s: %w", path, err)
		}
		if registered {
			s.log.Info("registered the admin key from file", "path", path)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin key file: %w", err)
	}
	created, err := admin.EnsureAdminKey(s.db, path, s.now())
	if err != nil {
		return fmt.Errorf("admin key: %w", err)
	}
	if created {
		s.log.Info("created the first admin key; the CLI reads it from this file", "path", path)
	}
	return nil
}

// openListeners binds the three addresses, so that a port already in use
// fails start-up before anything is served, and port 0 works (the bound
// addresses are logged and used for the default issuer).
func (s *server) openListeners() error {
	var err error
	if s.authzLn, err = net.Listen("tcp", s.cfg.AuthzAddr); err != nil {
		return fmt.Errorf("--authz-addr: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
		return fmt.Errorf("--admin-addr: %w", err)
	}
	if s.httpLn, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	if s.cfg.DebugAddr != "" {
		if s.debugLn, err = net.Listen("tcp", s.cfg.DebugAddr); err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		s.debugAddr = s.debugLn.Addr().String()
	}
	s.authzAddr, s.adminAddr, s.httpAddr = s.authzLn.Addr().String(), s.adminLn.Addr().String(), s.httpLn.Addr().String()
	return nil
}

// The per-service names gRPC health reports (besides "", the whole server):
// Envoy's and Kubernetes' gRPC health checks may ask for either.
var (
	authzService = authv3.Authorization_ServiceDesc.ServiceName // envoy.service.auth.v3.Authorization
	adminService = adminv1.AdminService_ServiceDesc.ServiceName // gatehouse.admin.v1.AdminService
)

// serve builds the gRPC and HTTP servers and starts serving.
func (s *server) serve() error {
	// ext_authz: Check and health only. Never an admin service.
	s.authzGRPC = grpc.NewServer(append(authz.ServerOptions(), grpc.MaxRecvMsgSize(4<<20))...)
	s.authz.Register(s.authzGRPC)
	s.authzHealth = health.NewServer()
	s.authzHealth.SetServingStatus(authzService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.authzGRPC, s.authzHealth)

	var adminOpts []grpc.ServerOption
	if s.cfg.AdminTLSCert != "" {
		creds, err := adminTLS(s.cfg)
		if err != nil {
			return err
		}
		adminOpts = append(adminOpts, grpc.Creds(creds))
	}
	// Metrics first, so calls the admin key check refuses are counted.
	adminOpts = append(adminOpts,
		grpc.ChainUnaryInterceptor(s.metrics.unaryInterceptor(), s.admin.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(s.metrics.streamInterceptor(), s.admin.StreamInterceptor()))
	s.adminGRPC = grpc.NewServer(adminOpts...)
	adminv1.RegisterAdminServiceServer(s.adminGRPC, s.admin)
	s.adminHealth = health.NewServer()
	s.adminHealth.SetServingStatus(adminService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.adminGRPC, s.adminHealth)
	reflection.Register(s.adminGRPC)

	s.httpSrv = &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	authzLn, adminLn, httpLn, debugLn := s.authzLn, s.adminLn, s.httpLn, s.debugLn
	s.authzLn, s.adminLn, s.httpLn, s.debugLn = nil, nil, nil, nil // owned by the servers now
	s.serveDebug(debugLn)
	go s.serveGRPC("authz", s.authzGRPC, authzLn)
	go s.serveGRPC("admin", s.adminGRPC, adminLn)
	go func() {
		if err := s.httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http listener stopped", "err", err)
		}
	}()
	return nil
}

func (s *server) serveGRPC(name string, g *grpc.Server, ln net.Listener) {
	if err := g.Serve(ln); err != nil {
		s.log.Error("gRPC listener stopped", "listener", name, "err", err)
	}
}

func adminTLS(cfg serveConfig) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(cfg.AdminTLSCert, cfg.AdminTLSKey)
	if err != nil {
		return nil, fmt.Errorf("--admin-tls-cert/--admin-tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.AdminClientCA != "" {
		pem, err := os.ReadFile(cfg.AdminClientCA)
		if err != nil {
			return nil, fmt.Errorf("--admin-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--admin-client-ca: no PEM certificate in %s", cfg.AdminClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(tc), nil
}

func (s *server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", s.authz.JWKSHandler())
	mux.Handle("GET /cdn-cgi/access/certs", s.authz.CloudflareCertsHandler())
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if problem := s.notReady(); problem != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, problem+"\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// notReady says why the server cannot take traffic, or "" when it can.
func (s *server) notReady() string {
	if !s.ready.Load() {
		return "not ready: starting or shutting down"
	}
	if err := s.db.Err(); err != nil {
		return "not ready: the store refuses writes after a failed commit: " + err.Error()
	}
	if ks := s.authz.Snapshot().Keys(); ks == nil || ks.ActiveAt(s.now()) == nil {
		return "not ready: no signing key"
	}
	return ""
}

// shutdown stops in order: /readyz 503 and gRPC health NOT_SERVING; keep
// answering for --drain-delay, so Envoy's health checks and Kubernetes move
// traffic away before the listeners close; drain gRPC (with a deadline, then
// a hard stop); stop HTTP; stop jobs; flush last-seen; close the store.
//
// Later calls wait for the first to finish and return its result.
func (s *server) shutdown() error {
	s.stopped.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *server) stop() error {
	s.ready.Store(false)
	s.authzHealth.Shutdown()
	s.adminHealth.Shutdown()
	if d := s.cfg.DrainDelay; d > 0 {
		s.log.Info("draining: reporting not ready and still answering until the drain delay is over", "drain_delay", d.String())
		select {
		case <-time.After(d):
		case <-s.drainCut:
		}
	}
	s.log.Info("closing the listeners and finishing in-flight requests", "shutdown_grace", s.cfg.ShutdownGrace.String())

	var wg sync.WaitGroup
	for _, g := range []*grpc.Server{s.authzGRPC, s.adminGRPC} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(s.cfg.ShutdownGrace):
				s.log.Warn("shutdown grace period over: closing remaining connections")
				g.Stop()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	_ = s.httpSrv.Shutdown(ctx)
	if s.debugSrv != nil {
		_ = s.debugSrv.Close() // a streaming profile is not worth waiting for
	}
	wg.Wait()

	s.stopJobs()
	s.flushLastSeen()
	err := s.closeAll()
	s.log.Info("gatehouse stopped")
	return err
}

func (s *server) closeAll() error {
	var err error
	s.closed.Do(func() {
		for _, ln := range []net.Listener{s.authzLn, s.adminLn, s.httpLn, s.debugLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if s.db != nil {
			err = s.db.Close()
		}
	})
	return err
}
