package admin

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// servicePrefix is the prefix of every full method name of the admin API;
// other services on the same gRPC server (health, reflection) are exempt
// from admin authentication.
const servicePrefix = "/gatehouse.admin.v1."

// readMethods are the methods a read-only admin key may call. They change
// nothing and return no secret material. Every other admin method (Backup
// included: it holds secret digests and sealed private keys) needs a
// read-write key.
var readMethods = map[string]bool{
	"ListServiceTokens": true,
	"GetServiceToken":   true,
	"ListApplications":  true,
	"GetApplication":    true,
	"ListPolicies":      true,
	"GetPolicy":         true,
	"CheckAccess":       true,
	"ListSigningKeys":   true,
	"ListAdminKeys":     true,
	"ListAuditEvents":   true,
}

// mutating reports whether method changes the store (and is audited).
func mutating(method string) bool { return !readMethods[method] && method != "Backup" }

// caller is the admin key a call was authenticated with.
type caller struct {
	id, name string
	readOnly bool
}

type callerKey struct{}

func withCaller(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerFrom returns the authenticated admin key; the zero caller when the
// server runs without its interceptors.
func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// shortMethod turns "/gatehouse.admin.v1.AdminService/CreateServiceToken"
// into "CreateServiceToken".
func shortMethod(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// UnaryInterceptor authenticates each admin call, refuses mutations to
// read-only keys, and records failed mutations in the audit log.
func (s *Server) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, servicePrefix) {
			return handler(ctx, req)
		}
		method := shortMethod(info.FullMethod)
		c, err := s.authorize(ctx, method, req)
		if err != nil {
			return nil, err
		}
		resp, err := handler(withCaller(ctx, c), req)
		if err != nil && mutating(method) {
			s.auditFailure(c, method, objectOf(req), err)
		}
		return resp, err
	}
}

// StreamInterceptor is UnaryInterceptor for streaming calls (Backup).
func (s *Server) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, servicePrefix) {
			return handler(srv, ss)
		}
		c, err := s.authorize(ss.Context(), shortMethod(info.FullMethod), nil)
		if err != nil {
			return err
		}
		return handler(srv, &callerStream{ServerStream: ss, ctx: withCaller(ss.Context(), c)})
	}
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// authorize authenticates the call and checks that its key may call method.
// A read-only key's attempt at a mutation is audited.
func (s *Server) authorize(ctx context.Context, method string, req any) (caller, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return caller{}, err
	}
	if c.readOnly && !readMethods[method] {
		err := status.Errorf(codes.PermissionDenied, "admin key %q is read-only: %s needs a read-write key", c.name, method)
		s.auditFailure(c, method, objectOf(req), err)
		return caller{}, err
	}
	return c, nil
}

// authenticate checks the call's `authorization: Bearer <admin key>`
// metadata against the store. Messages never echo the key.
func (s *Server) authenticate(ctx context.Context) (caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return caller{}, status.Error(codes.Unauthenticated, `missing "authorization: Bearer <admin key>" metadata`)
	case len(vals) > 1:
		return caller{}, status.Error(codes.Unauthenticated, "more than one authorization metadata value")
	}
	const scheme = "Bearer "
	v := vals[0]
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return caller{}, status.Error(codes.Unauthenticated, `authorization metadata must be "Bearer <admin key>"`)
	}
	key := strings.TrimSpace(v[len(scheme):])
	if key == "" {
		return caller{}, status.Error(codes.Unauthenticated, "authorization metadata has an empty admin key")
	}
	if err := tokens.CheckSecret(key, tokens.AdminKeyPrefix, false); err != nil {
		// The reason (length, prefix, alphabet, checksum) never holds the key.
		return caller{}, status.Errorf(codes.Unauthenticated, "admin key is malformed (%s): expected a %s… key", secretReason(err), tokens.AdminKeyPrefix)
	}
	digest := tokens.Digest(key)
	var k *store.AdminKey
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		k, err = tx.AdminKeyByDigest(digest)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return caller{}, status.Error(codes.Unauthenticated, "admin key not recognised")
	case err != nil:
		return caller{}, s.toStatus("authenticate", err)
	case !tokens.DigestEqual(k.Digest, digest[:]):
		// The store found the key by this digest; a mismatch means a
		// corrupt record, never a valid key.
		return caller{}, status.Error(codes.Unauthenticated, "admin key not recognised")
	case !k.RevokedAt.IsZero():
		return caller{}, status.Errorf(codes.Unauthenticated, "admin key %q was revoked at %s", k.Name, k.RevokedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return caller{id: k.ID, name: k.Name, readOnly: k.ReadOnly}, nil
}
