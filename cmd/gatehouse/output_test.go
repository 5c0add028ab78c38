package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func TestRelative(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{500 * time.Millisecond, "now"},
		{-time.Second, "1 second ago"},
		{45 * time.Second, "in 45 seconds"},
		{-90 * time.Second, "1 minute ago"},
		{59 * time.Minute, "in 59 minutes"},
		{-3 * time.Hour, "3 hours ago"},
		{47 * time.Hour, "in 47 hours"},
		{48 * time.Hour, "in 2 days"},
		{8760*time.Hour - time.Second, "in 364 days"},
		{-24 * 400 * time.Hour, "400 days ago"},
	} {
		if got := relative(testNow.Add(tc.d), testNow); got != tc.want {
			t.Errorf("relative(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	p := &printer{clock: func() time.Time { return testNow }}
	if got := p.ago(nil, "never"); got != "never" {
		t.Errorf("ago(nil) = %q", got)
	}
	if got := p.exact(ts(testNow.Add(time.Hour)), "never"); got != "2026-06-01T13:00:00Z (in 1 hour)" {
		t.Errorf("exact = %q", got)
	}
}

func TestCellNeutralisesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"plain":             "plain",
		"tab\there":         "tab\uFFFDhere",
		"esc\x1b[31mred":    "esc\uFFFD[31mred",
		"line\nbreak\r":     "line\uFFFDbreak\uFFFD",
		"unicode ok: é, 日本": "unicode ok: é, 日本",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArrayIsValidJSON(t *testing.T) {
	for n := range 4 {
		var keys []*adminv1.SigningKey
		for i := range n {
			keys = append(keys, &adminv1.SigningKey{Kid: string(rune('a' + i)), Active: i == 0})
		}
		var b bytes.Buffer
		if err := array(&printer{w: &b}, keys); err != nil {
			t.Fatal(err)
		}
		var v []map[string]any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil || len(v) != n {
			t.Fatalf("%d elements: %v\n%s", n, err, b.String())
		}
		if n > 0 && (v[0]["kid"] != "a" || v[0]["active"] != true) {
			t.Fatalf("field names: %s", b.String())
		}
		if n > 1 && v[1]["active"] != nil {
			t.Fatalf("unpopulated field emitted: %s", b.String())
		}
	}
}
