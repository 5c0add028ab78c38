package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func TestParseSince(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"24h", testNow.Add(-24 * time.Hour), true},
		{"90m", testNow.Add(-90 * time.Minute), true},
		{"0s", testNow, true},
		{"7d", testNow.AddDate(0, 0, -7), true},
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), true},
		{"2026-01-02T15:04:05+02:00", time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC), true},
		{"-1h", time.Time{}, false},
		{"-1d", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2026-01-02", time.Time{}, false},
		{"99999999d", time.Time{}, false},
	} {
		got, err := parseSince(tc.in, testNow)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestAuditList(t *testing.T) {
	f := startFake(t)
	events := []*adminv1.AuditEvent{
		{Time: ts(testNow.Add(-time.Hour)), AdminKey: "bootstrap", Method: "CreateServiceToken", Object: tokID + " (ci-deploy)", Outcome: "ok"},
		{Time: ts(testNow), AdminKey: "alice", Method: "DeleteServiceToken", Object: tokID, Outcome: "FailedPrecondition", Message: "in use\nby a policy"},
	}
	on(f, "ListAuditEvents", func(*adminv1.ListAuditEventsRequest) (*adminv1.ListAuditEventsResponse, error) {
		return &adminv1.ListAuditEventsResponse{Events: events}, nil
	})
	r := f.run(t, "", "audit", "list", "--since", "24h", "--limit", "50").ok(t)
	want := &adminv1.ListAuditEventsRequest{Since: ts(testNow.Add(-24 * time.Hour)), Limit: 50}
	if req := lastReq[*adminv1.ListAuditEventsRequest](t, f, "ListAuditEvents"); !proto.Equal(req, want) {
		t.Fatalf("request = %v, want %v", req, want)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	// The newline in the message must not break the table.
	if len(lines) != 3 || !strings.Contains(lines[1], "2026-06-01T11:00:00Z") || !strings.Contains(lines[2], "FailedPrecondition") ||
		!strings.Contains(lines[2], "in use\uFFFDby a policy") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	r = f.run(t, "", "audit", "list", "-o", "json").ok(t)
	if req := lastReq[*adminv1.ListAuditEventsRequest](t, f, "ListAuditEvents"); req.Since != nil || req.Limit != 0 {
		t.Fatalf("request = %v", req)
	}
	got := jsonArray(t, r.stdout, func() *adminv1.AuditEvent { return new(adminv1.AuditEvent) })
	if len(got) != 2 || !proto.Equal(got[1], events[1]) {
		t.Fatalf("json = %s", r.stdout)
	}
	f.run(t, "", "audit", "list", "--since", "last week").fails(t, exitUsage, `--since "last week"`)
	f.run(t, "", "audit", "list", "--limit", "-1").fails(t, exitUsage, "--limit")
}
