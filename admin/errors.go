package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/store"
)

// Errors of the admin operations, beyond the store's sentinels.
var (
	// ErrInvalid marks a request field that fails validation. It is
	// always wrapped with the field's name and what is wrong with it.
	ErrInvalid = errors.New("invalid")

	// ErrLastAdminKey is returned when revoking the last read-write admin
	// key: nobody could change anything afterwards, not even create a new
	// key.
	ErrLastAdminKey = errors.New("it is the last read-write admin key: create another one first")

	// ErrAlreadyRevoked is returned when revoking an admin key twice.
	ErrAlreadyRevoked = errors.New("already revoked")

	// ErrNoDecider is returned by CheckAccess on a server wired without an
	// authorizer.
	ErrNoDecider = errors.New("access checks are not available on this server")

	// ErrNoMasterKey is returned by signing key rotation when the server
	// has no master key to seal the new key with.
	ErrNoMasterKey = errors.New("no master key configured: cannot seal a new signing key")

	// ErrAdminKeyFileExists is returned by EnsureAdminKey when the store
	// has no usable admin key but the key file already exists: it is never
	// overwritten, because it may be something else entirely or the only
	// copy of a key. Remove it and start again.
	ErrAdminKeyFileExists = errors.New("admin key file already exists")
)

// fieldError is a validation error about one request field. The wrapped
// error decides the code (NotFound for a reference to something that does
// not exist, InvalidArgument otherwise); the message starts with the field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.err.Error()
	}
	return e.field + ": " + e.err.Error()
}

func (e *fieldError) Unwrap() error { return e.err }

// Is makes every field error match ErrInvalid.
func (e *fieldError) Is(target error) bool { return target == ErrInvalid }

// invalid wraps err (whose text says what is wrong) as an error about field.
// An empty field is for errors of the policy validators, whose text names
// the field after the record kind ("invalid policy: include[0]: ..."); the
// kind is dropped so that the message starts with the field.
func invalid(field string, err error) error {
	if field == "" {
		for _, kind := range []error{policy.ErrInvalidApplication, policy.ErrInvalidPolicy} {
			if p := kind.Error() + ": "; strings.HasPrefix(err.Error(), p) {
				err = &sentinelError{msg: strings.TrimPrefix(err.Error(), p), sentinel: err}
				break
			}
		}
	}
	return &fieldError{field: field, err: err}
}

// invalidf is invalid with a formatted reason.
func invalidf(field, format string, args ...any) error {
	return &fieldError{field: field, err: fmt.Errorf(format, args...)}
}

// sentinelError is an error with a complete message of its own that still
// matches its sentinel with errors.Is (whose text would only repeat it).
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// taken reports a uniqueness conflict: sentinel decides the code, the
// formatted text is the message.
func taken(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// toStatus maps an operation's error to the gRPC status the client sees. It
// is the only place that does: the message of an expected error is the
// error's text (which names the field or object, and never holds a secret);
// an unexpected error is logged with its cause and reported as Internal with
// a generic message.
func (s *Server) toStatus(method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fe *fieldError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrNameTaken), errors.Is(err, store.ErrClientIDTaken), errors.Is(err, ErrDomainTaken):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, store.ErrInUse), errors.Is(err, ErrLastAdminKey),
		errors.Is(err, ErrAlreadyRevoked), errors.Is(err, ErrNoMasterKey):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrNoDecider):
		return status.Error(codes.Unavailable, err.Error())
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	s.log.Error("admin: internal error", slog.String("method", method), slog.Any("error", err))
	return status.Error(codes.Internal, "internal error (the cause is in the server log)")
}
