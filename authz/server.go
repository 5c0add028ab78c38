package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// Config is the ext_authz server's process configuration. Served data
// (tokens, applications, policies, keys) comes from the Snapshot.
type Config struct {
	// Issuer is the iss of minted session JWTs and the only one accepted
	// back, e.g. "https://gatehouse.example.com".
	Issuer string
	// UnmatchedAllow lets requests that no application covers through
	// (with no identity). False denies them with no_application (403).
	UnmatchedAllow bool
	// TrustedProxies is how many x-forwarded-for entries, counted from the
	// right, were appended by proxies you trust; the N-th from the right is
	// then the client address for ip rules. Zero uses the TCP peer
	// (attributes.source.address).
	TrustedProxies int
	// LogAllowed logs allowed decisions too; denies are always logged.
	LogAllowed bool
	// Logger receives one line per decision at Info (the caller picks the
	// handler, normally JSON). Nil disables decision logging.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observer, if set, is told about every Check (for metrics). Nil
	// observes nothing.
	Observer Observer
}

// Observer is told the outcome of each Check, once, on the goroutine that
// ran it, after the response is built. It runs on the hot path: it must be
// safe for concurrent use, must not block and should not allocate.
// Explain is never observed.
type Observer interface {
	// ObserveCheck reports one decision: the application that decided it
	// (nil when none matched), its reason (Reason.Allowed tells allow from
	// deny), whether the application is in dry run (Envoy was told OK
	// whatever the reason), and how long Check took, including the
	// decision log line.
	ObserveCheck(app *policy.Application, reason Reason, dryRun bool, elapsed time.Duration)
}

// Errors returned by Config.Validate.
var (
	// ErrNoIssuer: without an issuer no session JWT can be signed or
	// accepted, so every token allow would fail.
	ErrNoIssuer = errors.New("authz: issuer is required")
	// ErrTrustedProxies: a negative number of trusted proxies.
	ErrTrustedProxies = errors.New("authz: trusted proxies must be zero or more")
)

// Validate reports a configuration Check cannot work with.
func (c Config) Validate() error {
	if c.Issuer == "" {
		return ErrNoIssuer
	}
	if c.TrustedProxies < 0 {
		return fmt.Errorf("%w: %d", ErrTrustedProxies, c.TrustedProxies)
	}
	return nil
}

// maxRequestIDLog bounds the x-request-id copied into a log line.
const maxRequestIDLog = 128

// Server answers Envoy's envoy.service.auth.v3.Authorization/Check from the
// published Snapshot. It is safe for concurrent use.
type Server struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	obs     Observer
	snap    atomic.Pointer[Snapshot]
	decider decider
	minted  *jwtCache
	seen    *lastSeen
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns a Server serving initial (an empty Snapshot if nil).
// cfg should have passed Validate.
func NewServer(cfg Config, initial *Snapshot) *Server {
	s := &Server{
		cfg:    cfg,
		now:    cfg.Now,
		log:    cfg.Logger,
		obs:    cfg.Observer,
		minted: newJWTCache(),
		seen:   newLastSeen(),
		decider: decider{
			issuer:         cfg.Issuer,
			unmatchedAllow: cfg.UnmatchedAllow,
			trustedProxies: cfg.TrustedProxies,
			certs:          newCertNames(),
			verified:       newVerifyCache(),
		},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.minted.current = func(id string, secretVersion int64, updatedAt time.Time) bool {
		return s.snap.Load().isVersion(id, secretVersion, updatedAt)
	}
	if initial == nil {
		initial = NewSnapshot(nil, nil, nil)
	}
	s.snap.Store(initial)
	return s
}

// Register adds the Authorization service to a gRPC server.
//
// It registers envoy.service.auth.v3.Authorization with its own handler for
// Check, which differs from the generated one in a single way: when the
// response is a cached token allow it returns it as a *preEncoded, which
// Codec sends as the bytes encoded when the response was first built. The
// wrapper is still a proto.Message, so any other codec encodes it as usual.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	desc := authv3.Authorization_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: s.checkHandler}}
	r.RegisterService(&desc, s)
}

// checkHandler is the generated _Authorization_Check_Handler, but for
// what it returns.
//
// The request is decoded into a *checkIn carrying the current snapshot:
// Codec then keeps only the fields and headers a decision with that
// snapshot reads (decode.go), and the request is decided with that same
// snapshot, so a publish between decoding and deciding cannot make the
// decision read a header the decoder dropped. Any other codec decodes the
// embedded CheckRequest in full.
func (s *Server) checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &checkIn{snap: s.snap.Load()}
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.grpcCheck(ctx, &in.CheckRequest, in.snap), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, &in.CheckRequest, info, func(ctx context.Context, req any) (any, error) {
		return s.grpcCheck(ctx, req.(*authv3.CheckRequest), in.snap), nil
	})
}

// checkIn is what Check's request is decoded into: a CheckRequest (the
// embedded message's methods make it a proto.Message for any codec) and
// the snapshot it will be decided with.
type checkIn struct {
	authv3.CheckRequest
	snap *Snapshot
}

// partialOK reports whether Codec may decode only what a decision with
// in.snap reads.
func (in *checkIn) partialOK() bool {
	return in.snap != nil && (in.snap.headers != nil || in.snap.engine == nil)
}

func (s *Server) grpcCheck(ctx context.Context, req *authv3.CheckRequest, snap *Snapshot) any {
	resp, enc := s.check(ctx, req, snap)
	if enc != nil {
		return enc
	}
	return resp
}

// Publish makes snap the state every later Check reads.
func (s *Server) Publish(snap *Snapshot) {
	if snap != nil {
		s.snap.Store(snap)
	}
}

// ForgetTokens drops what the server caches for these service tokens (the
// session JWTs minted for them and the responses built around them). Call it
// after publishing a snapshot in which they changed or were deleted: their
// cached entries would never be hit again and would otherwise stay until
// their shard of the cache next fills. Correctness does not depend on it:
// cache entries are keyed by the token's version.
func (s *Server) ForgetTokens(ids []string) { s.minted.forget(ids) }

// ForgetApplications is ForgetTokens for deleted applications and policies:
// it drops the session JWTs minted for them, of every token. It scans the
// whole cache, which is fine for a deletion, not for every request.
func (s *Server) ForgetApplications(appIDs, policyIDs []string) {
	s.minted.forgetTargets(appIDs, policyIDs)
}

// Snapshot returns the published state.
func (s *Server) Snapshot() *Snapshot { return s.snap.Load() }

// DrainLastSeen returns token id → when it last authenticated (by secret or
// session JWT) since the previous drain, and forgets those records.
func (s *Server) DrainLastSeen() map[string]time.Time { return s.seen.drain() }

// Check decides one request. It always answers with a CheckResponse (a deny
// is a non-OK status with a DeniedHttpResponse, never a gRPC error, so
// Envoy's failure_mode_allow cannot turn a deny into an allow) and never
// panics. The response may share immutable parts with other responses:
// callers must not modify it.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	resp, _ := s.check(ctx, req, s.snap.Load())
	return resp, nil
}

// check is Check with snap; enc is resp with its encoding when resp is a
// cached token allow, else nil.
func (s *Server) check(ctx context.Context, req *authv3.CheckRequest, snap *Snapshot) (resp *authv3.CheckResponse, enc *preEncoded) {
	var r request
	var d decision
	var start time.Time
	observed := false
	defer func() {
		if p := recover(); p != nil {
			d = decision{reason: ReasonInternalError}
			resp, enc = plainResponse(&d), nil
			if s.log != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "authz check panicked",
					slog.String("panic", fmt.Sprint(p)))
			}
			if s.obs != nil && !observed {
				s.observe(&d, start)
			}
		}
	}()
	logging := s.log != nil && s.log.Enabled(ctx, slog.LevelInfo)
	if logging || s.obs != nil {
		start = time.Now()
	}
	now := s.now()
	if r.parse(req) {
		d = s.decider.decide(snap, &r, now)
	} else {
		d.reason = ReasonMalformedRequest
	}
	if d.hasToken {
		s.seen.touch(d.token.ID, now)
	}
	if d.allowed() && d.hasToken {
		if m, reason := s.minted.get(snap.keys, s.cfg.Issuer, &d.token, d.app.App, d.result.Policy, now); m != nil {
			enc = tokenResponse(m, &d)
			resp = enc.CheckResponse
		} else {
			d.reason = reason
		}
	}
	if resp == nil {
		resp = plainResponse(&d)
	}
	if logging && (!d.allowed() || s.cfg.LogAllowed) {
		s.logDecision(ctx, &r, &d, start)
	}
	if s.obs != nil {
		observed = true // a panicking observer is not asked again
		s.obs.ObserveCheck(appOf(&d), d.reason, d.dryRun, time.Since(start))
	}
	return resp, enc
}

// observe reports a Check that panicked; a panic in the observer itself is
// swallowed here, since the Check is already being answered.
func (s *Server) observe(d *decision, start time.Time) {
	defer func() { _ = recover() }()
	s.obs.ObserveCheck(appOf(d), d.reason, d.dryRun, time.Since(start))
}

func appOf(d *decision) *policy.Application {
	if d.app == nil {
		return nil
	}
	return d.app.App
}

// logDecision writes the one decision line. It never logs a secret or a
// JWT; the client id only when it is well-formed.
func (s *Server) logDecision(ctx context.Context, r *request, d *decision, start time.Time) {
	var buf [12]slog.Attr
	a := buf[:0]
	if id := r.requestID; id != "" {
		if len(id) > maxRequestIDLog {
			id = id[:maxRequestIDLog] // client-controlled when Envoy preserves it
		}
		a = append(a, slog.String("request_id", id))
	}
	decision := "deny"
	if d.allowed() {
		decision = "allow"
	}
	a = append(a,
		slog.String("decision", decision),
		slog.String("reason", d.reason.String()),
	)
	if d.app != nil {
		a = append(a, slog.String("application", d.app.App.Name))
	}
	if p := d.result.Policy; p != nil {
		a = append(a, slog.String("policy", p.Name), slog.String("rule", d.result.Rule))
	}
	if d.hasToken {
		a = append(a, slog.String("token_name", d.token.Name), slog.String("client_id", d.token.ClientID))
		if d.previous {
			a = append(a, slog.Bool("previous_secret", true))
		}
	} else if d.clientID != "" {
		a = append(a, slog.String("client_id", d.clientID))
	}
	a = append(a,
		slog.Bool("dry_run", d.dryRun),
		slog.Int64("latency_us", time.Since(start).Microseconds()),
	)
	// Straight to the handler: Logger.LogAttrs would also walk the stack
	// for a source location nobody asked for (a quarter of the cost).
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "authz", 0)
	rec.AddAttrs(a...)
	_ = s.log.Handler().Handle(ctx, rec)
}

// Verdict is what Check would decide for a request, for `gatehouse check`
// and tests.
type Verdict struct {
	// Allowed: the policies admit the request. In dry run Envoy is told OK
	// whatever Allowed says.
	Allowed bool
	// Status is the HTTP status of the deny Envoy would send (200 when
	// allowed).
	Status                               int
	Reason                               Reason
	AppID, AppName                       string
	PolicyID, PolicyName, PolicyDecision string
	Rule                                 string // e.g. "include[0] service_token"
	TokenID, TokenName                   string
	DryRun                               bool
}

// Explain decides req exactly like Check but records nothing: no last-seen,
// no JWT minting, no log line.
func (s *Server) Explain(req *authv3.CheckRequest) (v Verdict) {
	defer func() {
		if p := recover(); p != nil {
			v = Verdict{Status: ReasonInternalError.HTTPStatus(), Reason: ReasonInternalError}
		}
	}()
	snap := s.snap.Load()
	var r request
	var d decision
	now := s.now()
	if r.parse(req) {
		d = s.decider.decide(snap, &r, now)
	} else {
		d.reason = ReasonMalformedRequest
	}
	if d.allowed() && d.hasToken && (snap.keys == nil || snap.keys.ActiveAt(now) == nil) {
		d.reason = ReasonNoSigningKey
	}
	v = Verdict{
		Allowed: d.allowed(),
		Status:  d.reason.HTTPStatus(),
		Reason:  d.reason,
		DryRun:  d.dryRun,
		Rule:    d.result.Rule,
	}
	if d.app != nil {
		v.AppID, v.AppName = d.app.App.ID, d.app.App.Name
	}
	if p := d.result.Policy; p != nil {
		v.PolicyID, v.PolicyName, v.PolicyDecision = p.ID, p.Name, string(p.Decision)
	}
	if d.hasToken {
		v.TokenID, v.TokenName = d.token.ID, d.token.Name
	}
	return v
}
