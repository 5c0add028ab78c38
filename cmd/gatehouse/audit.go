package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// parseSince parses --since: a duration back from now ("24h", or "7d" for
// days, which Go durations lack) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 100*366 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration back from now (24h, 7d) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

func auditCommands() []*command {
	return []*command{{
		path: "audit list", maxArgs: 0,
		summary: "list the admin changes recorded in the audit log",
		help: `Lists the audit events, oldest first: the time, the name of the admin key that
made the call (never the key), the method, the object changed, the outcome
("ok" or the gRPC code) and a message.`,
		example: `gatehouse audit list --since 24h
gatehouse audit list --since 2026-01-01T00:00:00Z --limit 100 -o json`,
		define: func(fs *flag.FlagSet) action {
			since := fs.String("since", "", "only events since this `time`: a duration back from now (24h, 30m, 7d) or an RFC 3339 time")
			limit := fs.Int("limit", 0, "at most `n` events (default: the server's limit)")
			return func(ctx context.Context, s *session, args []string) error {
				req := &adminv1.ListAuditEventsRequest{}
				if *since != "" {
					t, err := parseSince(*since, s.now())
					if err != nil {
						return usagef("%s", err.Error())
					}
					req.Since = timestamppb.New(t)
				}
				if *limit < 0 || int(int32(*limit)) != *limit {
					return usagef("--limit %d: want a positive number", *limit)
				}
				req.Limit = int32(*limit)
				client, err := s.admin()
				if err != nil {
					return err
				}
				resp, err := client.ListAuditEvents(ctx, req)
				if err != nil {
					return err
				}
				events := resp.GetEvents()
				if s.out.json {
					return array(s.out, events)
				}
				rows := make([][]string, len(events))
				for i, e := range events {
					rows[i] = []string{e.GetTime().AsTime().UTC().Format(time.RFC3339), e.GetAdminKey(), e.GetMethod(),
						orDash(e.GetObject()), e.GetOutcome(), e.GetMessage()}
				}
				return s.out.table([]string{"TIME", "ADMIN KEY", "METHOD", "OBJECT", "OUTCOME", "MESSAGE"}, rows)
			}
		},
	}}
}
