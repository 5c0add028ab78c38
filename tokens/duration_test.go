package tokens

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		err  error
	}{
		{"8760h", DefaultDuration, nil},
		{"forever", Forever, nil},
		{"1h30m", Duration(90 * time.Minute), nil},
		{"300ms", Duration(300 * time.Millisecond), nil},
		{"2h45m", Duration(2*time.Hour + 45*time.Minute), nil},
		{"1µs", Duration(time.Microsecond), nil},
		{"", 0, ErrDurationEmpty},
		{"-1h", 0, ErrDurationNotPos},
		{"0s", 0, ErrDurationNotPos},
		{"0", 0, ErrDurationNotPos},
		{"-0s", 0, ErrDurationNotPos},
		{"abc", 0, ErrDurationNotValid},
		{"Forever", 0, ErrDurationNotValid},
		{"1y", 0, ErrDurationNotValid},
		{"8760", 0, ErrDurationNotValid},
		{" 1h", 0, ErrDurationNotValid},
		{"1h ", 0, ErrDurationNotValid},
		{"9999999999999h", 0, ErrDurationNotValid}, // overflows int64 nanoseconds
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %v", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    Duration
		want string
	}{
		{Forever, "forever"},
		{DefaultDuration, "8760h"},
		{Duration(time.Hour), "1h"},
		{Duration(90 * time.Minute), "1h30m"},
		{Duration(10 * time.Minute), "10m"},
		{Duration(time.Minute), "1m"},
		{Duration(70 * time.Second), "1m10s"},
		{Duration(10 * time.Second), "10s"},
		{Duration(time.Hour + time.Second), "1h0m1s"},
		{Duration(20 * time.Hour), "20h"},
		{Duration(300 * time.Millisecond), "300ms"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("Duration(%d).String() = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	for _, d := range []Duration{Forever, DefaultDuration, Duration(90 * time.Minute)} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("JSON round trip of %v via %s = %v, %v", d, b, back, err)
		}
	}
	// null is an error too, not "forever": a damaged record must not make a
	// token eternal.
	var d Duration
	for _, bad := range []string{`"-1h"`, `""`, `3600`, `null`, `"abc"`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

// FuzzParseDuration checks that ParseDuration never panics, accepts only
// "forever" or positive durations, and that String parses back to the same
// value.
func FuzzParseDuration(f *testing.F) {
	f.Add("8760h")                    // Cloudflare's default
	f.Add("forever")                  // never expires
	f.Add("1h30m0.5s")                // mixed units and a fraction
	f.Add("300ms")                    // sub-second
	f.Add("-1h")                      // negative
	f.Add("0s")                       // zero
	f.Add("")                         // empty
	f.Add("abc")                      // not a duration
	f.Add("2562047h47m16.854775807s") // the largest time.Duration
	f.Add("1e3h")                     // exponent: not Go syntax
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrDurationEmpty) && !errors.Is(err, ErrDurationNotValid) && !errors.Is(err, ErrDurationNotPos) {
				t.Fatalf("ParseDuration(%q) error %v wraps no sentinel", s, err)
			}
			return
		}
		if d < 0 || d == Forever && s != "forever" {
			t.Fatalf("ParseDuration(%q) = %d", s, int64(d))
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q).String() = %q parses to %v, %v", s, d.String(), back, err)
		}
	})
}
