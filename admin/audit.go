package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/store"
	"github.com/gatehouse-dev/gatehouse/tokens"
)

// systemActor is the audit log's admin key name for changes made by the
// server itself (bootstrap, scheduled signing key rotation).
const systemActor = "gatehouse"

// outcomeOK is the outcome of a successful change.
const outcomeOK = "ok"

// audit appends the event for a successful change in the change's own
// transaction, so that the log and the data cannot disagree, and logs it.
// message must never hold a secret.
func (s *Server) audit(ctx context.Context, tx *store.Tx, now time.Time, method, object, message string) error {
	return appendAudit(tx, &store.AuditEvent{
		Time:     now,
		AdminKey: callerFrom(ctx).name,
		Method:   method,
		Object:   object,
		Outcome:  outcomeOK,
		Message:  message,
	})
}

func appendAudit(tx *store.Tx, e *store.AuditEvent) error {
	if err := tx.AppendAudit(e); err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// logChange logs a committed change (after the transaction).
func (s *Server) logChange(ctx context.Context, method, object string) {
	s.log.Info("admin change", slog.String("method", method), slog.String("object", object),
		slog.String("admin_key", callerFrom(ctx).name))
}

// auditFailure records a failed mutation in its own transaction. It is best
// effort: the call has failed already, and a failure to record that is only
// logged.
func (s *Server) auditFailure(c caller, method, object string, err error) {
	st := status.Convert(err)
	e := &store.AuditEvent{
		Time:     s.now(),
		AdminKey: c.name,
		Method:   method,
		Object:   clip(object),
		Outcome:  st.Code().String(),
		Message:  st.Message(),
	}
	if err := s.store.Update(func(tx *store.Tx) error { return tx.AppendAudit(e) }); err != nil {
		s.log.Warn("admin: cannot record a failed call in the audit log", slog.String("method", method), slog.Any("error", err))
	}
	s.log.Info("admin call failed", slog.String("method", method), slog.String("object", object),
		slog.String("admin_key", c.name), slog.String("code", st.Code().String()), slog.String("message", st.Message()))
}

// objectOf names what a failed request was about, from its id or name field.
// Never a secret: no request has a getter by these names for one.
func objectOf(req any) string {
	if r, ok := req.(interface{ GetId() string }); ok && r.GetId() != "" {
		return safeText(r.GetId())
	}
	if r, ok := req.(interface{ GetName() string }); ok && r.GetName() != "" {
		return safeText(r.GetName())
	}
	if r, ok := req.(interface{ GetApplication() string }); ok && r.GetApplication() != "" {
		return safeText(r.GetApplication())
	}
	return ""
}

// maxEcho caps how much of a client-supplied string goes into a message or
// the audit log.
const maxEcho = 256

// clip truncates s to maxEcho bytes (on a rune boundary).
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	i := maxEcho
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// safeText is s clipped, or a placeholder when s looks like a client secret
// or an admin key pasted into the wrong field: such a string is never echoed
// into a message, a log line or the audit log.
func safeText(s string) string {
	if looksSecret(s) {
		return "(redacted: looks like a secret)"
	}
	return clip(s)
}

// quote is strconv.Quote(safeText(s)), for messages.
func quote(s string) string { return strconv.Quote(safeText(s)) }

func looksSecret(s string) bool {
	return tokens.CheckSecret(s, tokens.SecretPrefix, true) == nil ||
		tokens.CheckSecret(s, tokens.AdminKeyPrefix, false) == nil ||
		strings.HasPrefix(s, tokens.SecretPrefix) || strings.HasPrefix(s, tokens.AdminKeyPrefix)
}

// objectName is the audit log's "id (name)".
func objectName(id, name string) string {
	if name == "" {
		return id
	}
	return id + " (" + name + ")"
}
