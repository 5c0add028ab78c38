package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// printer writes a command's result as a table (for people) or as JSON (for
// programs).
type printer struct {
	w    io.Writer
	json bool
	// clock is what "3 hours ago" is relative to; read at print time, after
	// the call, so that a token created a moment ago expires "in 364 days",
	// not 365.
	clock func() time.Time
}

// jsonOptions: field names as in the .proto (and Cloudflare's API), unset
// fields left out.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// object prints m as one JSON object.
func (p *printer) object(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding the result as JSON: %w", err)
	}
	return p.writeJSON(b)
}

// array prints ms as one JSON array.
func array[M proto.Message](p *printer, ms []M) error {
	b := []byte{'['}
	for i, m := range ms {
		j, err := jsonOptions.Marshal(m)
		if err != nil {
			return fmt.Errorf("encoding the result as JSON: %w", err)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, j...)
	}
	return p.writeJSON(append(b, ']'))
}

// writeJSON indents b with two spaces. protojson deliberately varies its
// white space from build to build; re-indenting makes the output stable, so
// it can be diffed and documented.
func (p *printer) writeJSON(b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("encoding the result as JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := p.w.Write(out.Bytes())
	return err
}

// table prints rows under header, in aligned columns.
func (p *printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// field is one line of a detail view; an empty key continues the previous
// field (a list value, one item per line).
type field struct{ key, value string }

// detail prints one object as "key: value" lines.
func (p *printer) detail(fields []field) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		k := f.key
		if k != "" {
			k += ":"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(f.value))
	}
	return tw.Flush()
}

// cell makes a server-supplied string safe for a terminal table: control
// characters (tabs, newlines, escape sequences) become U+FFFD.
func cell(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

// ago is ts relative to now ("in 364 days", "3 hours ago"), or zero when ts
// is unset.
func (p *printer) ago(ts *timestamppb.Timestamp, zero string) string {
	if ts == nil {
		return zero
	}
	return relative(ts.AsTime(), p.clock())
}

// exact is ts in RFC 3339 (UTC) followed by the relative time, or zero when
// ts is unset.
func (p *printer) exact(ts *timestamppb.Timestamp, zero string) string {
	if ts == nil {
		return zero
	}
	t := ts.AsTime()
	return t.UTC().Format(time.RFC3339) + " (" + relative(t, p.clock()) + ")"
}

// relative says how far t is from now, in the largest whole unit that keeps
// the number small: seconds, minutes, hours up to two days, then days.
func relative(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		s = plural(int(d/time.Second), "second")
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	default:
		s = plural(int(d/(24*time.Hour)), "day")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// count is "1 policy", "2 policies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
