package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func sampleKeys() []*adminv1.SigningKey {
	return []*adminv1.SigningKey{
		{Kid: "k2", Alg: "ES256", CreatedAt: ts(testNow.Add(-time.Minute)), Active: true},
		{Kid: "k1", Alg: "RS256", CreatedAt: ts(testNow.Add(-30 * 24 * time.Hour)), RetiredAt: ts(testNow.Add(-time.Minute)),
			RemoveAfter: ts(testNow.Add(24 * time.Hour))},
	}
}

// rotatingKeys is a rotation's pre-publication: k3 is published and signs
// in 9 minutes, when k2 retires.
func rotatingKeys() []*adminv1.SigningKey {
	return []*adminv1.SigningKey{
		{Kid: "k3", Alg: "RS256", CreatedAt: ts(testNow.Add(-time.Minute)), ActiveFrom: ts(testNow.Add(9 * time.Minute))},
		{Kid: "k2", Alg: "ES256", CreatedAt: ts(testNow.Add(-time.Hour)), Active: true, RetiredAt: ts(testNow.Add(9 * time.Minute)),
			RemoveAfter: ts(testNow.Add(730 * time.Hour))},
	}
}

func TestKeys(t *testing.T) {
	f := startFake(t)
	on(f, "ListSigningKeys", func(*adminv1.ListSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
		return &adminv1.ListSigningKeysResponse{Keys: sampleKeys()}, nil
	})
	on(f, "RotateSigningKeys", func(*adminv1.RotateSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
		return &adminv1.ListSigningKeysResponse{Keys: sampleKeys()}, nil
	})
	r := f.run(t, "", "keys", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "KID") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for i, want := range [][]string{{"k2", "ES256", "active", "1 minute ago"}, {"k1", "RS256", "retired", "30 days ago", "in 24 hours"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %q does not contain %q", lines[i+1], w)
			}
		}
	}
	r = f.run(t, "", "keys", "rotate", "--alg", "ES256", "-o", "json").ok(t)
	if req := lastReq[*adminv1.RotateSigningKeysRequest](t, f, "RotateSigningKeys"); req.Alg != "ES256" {
		t.Fatalf("request = %v", req)
	}
	got := jsonArray(t, r.stdout, func() *adminv1.SigningKey { return new(adminv1.SigningKey) })
	if len(got) != 2 || !proto.Equal(got[1], sampleKeys()[1]) {
		t.Fatalf("json = %s", r.stdout)
	}
	f.run(t, "", "keys", "rotate").ok(t)
	if req := lastReq[*adminv1.RotateSigningKeysRequest](t, f, "RotateSigningKeys"); req.Alg != "" || req.Immediate {
		t.Fatalf("default alg should be left to the server and the rotation pre-published, got %v", req)
	}
	f.run(t, "", "keys", "rotate", "--now").ok(t)
	if req := lastReq[*adminv1.RotateSigningKeysRequest](t, f, "RotateSigningKeys"); !req.Immediate {
		t.Fatalf("--now did not ask for an immediate rotation: %v", req)
	}

	// During pre-publication: the new key is pending, signing in 9 minutes,
	// when the active one retires.
	on(f, "ListSigningKeys", func(*adminv1.ListSigningKeysRequest) (*adminv1.ListSigningKeysResponse, error) {
		return &adminv1.ListSigningKeysResponse{Keys: rotatingKeys()}, nil
	})
	r = f.run(t, "", "keys", "list").ok(t)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	for i, want := range [][]string{{"k3", "pending", "in 9 minutes"}, {"k2", "active", "in 9 minutes", "in 30 days"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %q does not contain %q", lines[i+1], w)
			}
		}
	}
}
