package admin

import (
	"context"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// Store is the part of *store.DB that admin uses.
type Store interface {
	// Update runs fn in one read-write transaction.
	Update(fn func(*store.Tx) error) error
	// Batch is Update through bbolt's batching: fn may run more than once.
	Batch(fn func(*store.Tx) error) error
	// View runs fn in a read-only transaction.
	View(fn func(*store.Tx) error) error
	// Backup writes a consistent copy of the whole database to w.
	Backup(w io.Writer) (int64, error)
}

// Decider answers CheckAccess: what the authorizer would decide for a
// request. The server's wiring implements it over the authorizer so that
// admin never imports it.
type Decider interface {
	CheckAccess(ctx context.Context, req *adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error)
}

// Config configures a Server. Only Store is required.
type Config struct {
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per change and the causes of internal
	// errors; nil discards.
	Logger *slog.Logger
	// Decider answers CheckAccess; nil makes CheckAccess fail with
	// Unavailable.
	Decider Decider
	// MasterKey (32 bytes) seals new signing keys. Without it
	// RotateSigningKeys fails with FailedPrecondition.
	MasterKey []byte
	// SigningAlg is the algorithm of a new signing key when the request
	// names none; empty means RS256.
	SigningAlg tokens.Alg
}

// Server implements adminv1.AdminServiceServer. Register it on a gRPC server
// created with ServerOptions (or with UnaryInterceptor and
// StreamInterceptor): without them every call is unauthenticated.
type Server struct {
	adminv1.UnimplementedAdminServiceServer

	store   Store
	now     func() time.Time
	log     *slog.Logger
	decider Decider
	master  []byte
	alg     tokens.Alg
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:   cfg.Store,
		now:     cfg.Now,
		log:     cfg.Logger,
		decider: cfg.Decider,
		master:  cfg.MasterKey,
		alg:     cfg.SigningAlg,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.alg == "" {
		s.alg = defaultAlg
	}
	return s
}

// ServerOptions returns the interceptors that authenticate and authorize
// admin calls, for grpc.NewServer.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(s.StreamInterceptor()),
	}
}

// Register registers the AdminService on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	adminv1.RegisterAdminServiceServer(g, s)
}
