package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func TestAdminKeys(t *testing.T) {
	f := startFake(t)
	const newKey = "ghak_NEWkeyForAlice0123456789abcdefgh"
	created := &adminv1.AdminKey{Id: "ak-2", Name: "alice", ReadOnly: true, CreatedAt: ts(testNow), Key: newKey}
	on(f, "CreateAdminKey", func(*adminv1.CreateAdminKeyRequest) (*adminv1.AdminKey, error) {
		return proto.Clone(created).(*adminv1.AdminKey), nil
	})
	revoked := &adminv1.AdminKey{Id: "ak-1", Name: "bootstrap", CreatedAt: ts(testNow.Add(-48 * time.Hour)), RevokedAt: ts(testNow)}
	on(f, "RevokeAdminKey", func(*adminv1.RevokeAdminKeyRequest) (*adminv1.AdminKey, error) { return revoked, nil })
	on(f, "ListAdminKeys", func(*adminv1.ListAdminKeysRequest) (*adminv1.ListAdminKeysResponse, error) {
		return &adminv1.ListAdminKeysResponse{AdminKeys: []*adminv1.AdminKey{revoked, {Id: "ak-2", Name: "alice", ReadOnly: true}}}, nil
	})

	r := f.run(t, "", "admin-key", "create", "alice", "--read-only").ok(t)
	if req := lastReq[*adminv1.CreateAdminKeyRequest](t, f, "CreateAdminKey"); req.Name != "alice" || !req.ReadOnly {
		t.Fatalf("request = %v", req)
	}
	if strings.Count(r.stdout, newKey) != 1 || !strings.Contains(r.stdout, "\nAdmin key: "+newKey+"\n") ||
		!strings.Contains(r.stdout, "will not be shown again") || !strings.Contains(r.stdout, "read-only") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	r = f.run(t, "", "admin-key", "create", "alice", "-o", "json").ok(t)
	var got adminv1.AdminKey
	jsonObject(t, r.stdout, &got)
	if !proto.Equal(&got, created) {
		t.Fatalf("json = %s", r.stdout)
	}

	r = f.run(t, "", "admin-key", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "bootstrap") || !strings.Contains(lines[1], "read-write") ||
		!strings.Contains(lines[1], "2 days ago") || !strings.Contains(lines[1], "now") || !strings.Contains(lines[2], "read-only") {
		t.Fatalf("table:\n%s", r.stdout)
	}

	r = f.run(t, "", "admin-key", "revoke", "bootstrap").ok(t)
	if req := lastReq[*adminv1.RevokeAdminKeyRequest](t, f, "RevokeAdminKey"); req.Id != "bootstrap" {
		t.Fatalf("request = %v", req)
	}
	if !strings.Contains(r.stdout, "revoked:") || !strings.Contains(r.stdout, "2026-06-01T12:00:00Z") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}
