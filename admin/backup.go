package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
)

// backupChunk is the size of a BackupChunk: large enough that a big file
// streams quickly, far below gRPC's 4 MiB default message limit.
const backupChunk = 64 << 10

// Backup streams a consistent copy of the store. The copy is read in one
// bbolt read transaction, which does not block writers.
func (s *Server) Backup(req *adminv1.BackupRequest, stream grpc.ServerStreamingServer[adminv1.BackupChunk]) error {
	const method = "Backup"
	ctx := stream.Context()
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.store.Backup(pw)
		pw.CloseWithError(err) // nil: the reader sees io.EOF
		done <- result{n, err}
	}()
	sendErr := sendChunks(pr, stream)
	// Unblock the writer if sending failed half-way.
	pr.CloseWithError(errors.Join(sendErr, io.ErrClosedPipe))
	res := <-done
	switch {
	case sendErr != nil && !errors.Is(sendErr, errBackupRead):
		return s.toStatus(method, sendErr)
	case res.err != nil:
		return s.toStatus(method, fmt.Errorf("backup: %w", res.err))
	case sendErr != nil:
		return s.toStatus(method, sendErr)
	}
	now := s.now()
	msg := fmt.Sprintf("%d bytes", res.n)
	err := s.store.Update(func(tx *store.Tx) error {
		return s.audit(ctx, tx, now, method, "", msg)
	})
	if err != nil {
		s.log.Warn("admin: cannot record a backup in the audit log", slog.Any("error", err))
	}
	s.logChange(ctx, method, msg)
	return nil
}

// errBackupRead marks a failure to read the backup pipe (the store's side
// failed), as opposed to a failure to send.
var errBackupRead = errors.New("read backup")

func sendChunks(r io.Reader, stream grpc.ServerStreamingServer[adminv1.BackupChunk]) error {
	buf := make([]byte, backupChunk)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&adminv1.BackupChunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return fmt.Errorf("%w: %w", errBackupRead, err)
		}
	}
}

// ListAuditEvents lists the most recent events (at most limit, default
// 1000) at or after since, oldest first.
func (s *Server) ListAuditEvents(ctx context.Context, req *adminv1.ListAuditEventsRequest) (*adminv1.ListAuditEventsResponse, error) {
	const method = "ListAuditEvents"
	limit := int(req.GetLimit())
	switch {
	case limit < 0:
		return nil, s.toStatus(method, invalidf("limit", "must not be negative, not %d", limit))
	case limit == 0:
		limit = defaultAuditLimit
	case limit > maxAuditLimit:
		return nil, s.toStatus(method, invalidf("limit", "at most %d, not %d", maxAuditLimit, limit))
	}
	var since time.Time
	if req.Since != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, s.toStatus(method, invalidf("since", "not a valid timestamp"))
		}
		since = req.GetSince().AsTime()
	}
	// A ring of the last limit events: the log is read once, oldest first.
	ring := make([]*store.AuditEvent, 0, min(limit, 1024))
	next := 0
	err := s.store.View(func(tx *store.Tx) error {
		return tx.ForEachAudit(since, func(e *store.AuditEvent) error {
			if len(ring) < limit {
				ring = append(ring, e)
			} else {
				ring[next] = e
				next = (next + 1) % limit
			}
			return nil
		})
	})
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	resp := &adminv1.ListAuditEventsResponse{Events: make([]*adminv1.AuditEvent, 0, len(ring))}
	for i := range ring {
		resp.Events = append(resp.Events, auditProto(ring[(next+i)%len(ring)]))
	}
	return resp, nil
}

const (
	defaultAuditLimit = 1000
	maxAuditLimit     = 100000
)

// CheckAccess asks the Decider what the authorizer would decide.
func (s *Server) CheckAccess(ctx context.Context, req *adminv1.CheckAccessRequest) (*adminv1.CheckAccessResponse, error) {
	const method = "CheckAccess"
	if s.decider == nil {
		return nil, s.toStatus(method, ErrNoDecider)
	}
	resp, err := s.decider.CheckAccess(ctx, req)
	if err != nil {
		return nil, s.toStatus(method, err)
	}
	return resp, nil
}
