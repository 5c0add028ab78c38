package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Duration is a service token's lifetime. Forever (the zero value) means the
// token never expires. In JSON and on the command line it is a Go duration
// string ("8760h") or "forever", as in Cloudflare Access's API.
type Duration time.Duration

const (
	// Forever is the duration of a token that never expires.
	Forever Duration = 0
	// DefaultDuration is one year, Cloudflare's default.
	DefaultDuration = Duration(8760 * time.Hour)
)

// Errors returned by ParseDuration.
var (
	ErrDurationEmpty    = errors.New(`duration is empty: use a Go duration such as "8760h", or "forever"`)
	ErrDurationNotValid = errors.New(`duration is not a Go duration such as "8760h" or "90m", nor "forever"`)
	ErrDurationNotPos   = errors.New("duration must be positive")
)

// ParseDuration parses a token duration: "forever" or a positive Go duration.
func ParseDuration(s string) (Duration, error) {
	switch s {
	case "":
		return 0, ErrDurationEmpty
	case "forever":
		return Forever, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrDurationNotValid, s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w: %q", ErrDurationNotPos, s)
	}
	return Duration(d), nil
}

// String returns "forever" or the Go duration string ("8760h0m0s" is
// shortened to "8760h").
func (d Duration) String() string {
	if d == Forever {
		return "forever"
	}
	return shortDuration(time.Duration(d))
}

func shortDuration(d time.Duration) string {
	s := d.String()
	// "8760h0m0s" -> "8760h", "1h30m0s" -> "1h30m".
	for _, suf := range []string{"0s", "0m"} {
		if len(s) > len(suf)+1 && s[len(s)-len(suf):] == suf && (s[len(s)-len(suf)-1] == 'm' || s[len(s)-len(suf)-1] == 'h') {
			s = s[:len(s)-len(suf)]
		}
	}
	return s
}

// MarshalJSON encodes the duration as its String form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON decodes what MarshalJSON wrote.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
