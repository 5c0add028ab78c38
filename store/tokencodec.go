package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// A hand-written decoder for token records, for Load: encoding/json spends
// most of a cold start on checkValid, reflection, unquoting and time and
// base64 parsing of a million records that all have the one shape encode
// gives them.
//
// It accepts only the canonical subset of what json.Unmarshal accepts, and
// for that subset gives exactly what json.Unmarshal would: a record as
// json.Marshal(*tokens.ServiceToken) writes it, keys in struct order (any of
// them may be missing), no whitespace, strings without escapes. Anything
// else (an escape, whitespace, an unknown, repeated or reordered key, a null
// but for a []byte, a number not in -?(0|[1-9][0-9]*) form, invalid UTF-8,
// a time not in RFC 3339 with at most nine fraction digits, a trailing byte)
// makes it report false, and the caller decodes with json.Unmarshal instead,
// which also produces the error for a record that is really corrupt. The
// differential fuzz test FuzzDecodeTokenRecord holds it to that.

// tokenField is one of ServiceToken's JSON fields, in struct order (the
// order json.Marshal writes them in).
type tokenField uint8

const (
	tfID tokenField = iota
	tfName
	tfClientID
	tfSecretDigest
	tfSecretVersion
	tfPreviousSecretDigest
	tfPreviousSecretExpiresAt
	tfEnabled
	tfCreatedAt
	tfUpdatedAt
	tfExpiresAt
	tfDuration
	tfLastSeenAt
	tfImported
	numTokenFields
)

// tokenKeys are the fields' JSON names, as in tokens.ServiceToken's tags.
var tokenKeys = [numTokenFields]string{
	tfID:                      "id",
	tfName:                    "name",
	tfClientID:                "client_id",
	tfSecretDigest:            "secret_digest",
	tfSecretVersion:           "client_secret_version",
	tfPreviousSecretDigest:    "previous_secret_digest",
	tfPreviousSecretExpiresAt: "previous_client_secret_expires_at",
	tfEnabled:                 "enabled",
	tfCreatedAt:               "created_at",
	tfUpdatedAt:               "updated_at",
	tfExpiresAt:               "expires_at",
	tfDuration:                "duration",
	tfLastSeenAt:              "last_seen_at",
	tfImported:                "imported",
}

// quotedKeys are tokenKeys as they start a member: `"id":`.
var quotedKeys = func() (q [numTokenFields][]byte) {
	for i, k := range tokenKeys {
		q[i] = []byte(`"` + k + `":`)
	}
	return q
}()

// digestChunk is the size of the blocks a Load worker carves secret digests
// out of: a few hundred digests per allocation instead of one each.
const digestChunk = 16 << 10

// tokenDecoder decodes token records. The zero value allocates every digest
// on its own; one with arena set carves them from shared chunks (each slice
// capped at its length, so an append copies instead of writing into a
// neighbour). A decoder is not safe for concurrent use.
type tokenDecoder struct {
	arena bool
	free  []byte // the unused rest of the current chunk

	durs    [4]parsedDuration // recently parsed durations
	nextDur int               // the entry of durs to replace next
}

type parsedDuration struct {
	s string
	d tokens.Duration
}

// decodeTokenFast decodes the token record raw into t and reports true, or
// reports false if raw is not in the canonical form it handles, leaving t
// in an unspecified state: the caller must then zero t and decode raw with
// json.Unmarshal. When it reports true, t is exactly what json.Unmarshal
// gives for raw into a zero ServiceToken (and json.Unmarshal succeeds).
func decodeTokenFast(raw []byte, t *tokens.ServiceToken) bool {
	var d tokenDecoder
	return d.decode(raw, t)
}

func (d *tokenDecoder) decode(raw []byte, t *tokens.ServiceToken) bool {
	*t = tokens.ServiceToken{}
	n := len(raw)
	if n < 2 || raw[0] != '{' || raw[n-1] != '}' {
		return false
	}
	// The three strings share one allocation, made once the record has
	// proved good; until then they are offsets into raw.
	var strs [3][2]int // absent: [0, 0]
	p := 1             // raw[p] is the next byte to read; raw[n-1] is the closing brace
	next := tfID
	for p < n-1 {
		// Key: one of the fields after the previous one, exactly, and the
		// colon.
		f := next
		for f < numTokenFields && !bytes.HasPrefix(raw[p:n-1], quotedKeys[f]) {
			f++
		}
		if f == numTokenFields {
			return false
		}
		next = f + 1
		p += len(quotedKeys[f])

		// Value. Each branch leaves p just after the value.
		var ok bool
		switch f {
		case tfID, tfName, tfClientID:
			var s, e int
			if s, e, p, ok = scanString(raw, p, n-1); !ok {
				return false
			}
			i := f - tfID
			strs[i] = [2]int{s, e}
		case tfSecretDigest:
			if t.SecretDigest, p, ok = d.bytesValue(raw, p, n-1); !ok {
				return false
			}
		case tfPreviousSecretDigest:
			if t.PreviousSecretDigest, p, ok = d.bytesValue(raw, p, n-1); !ok {
				return false
			}
		case tfSecretVersion:
			if t.SecretVersion, p, ok = int64Value(raw, p, n-1); !ok {
				return false
			}
		case tfEnabled:
			if t.Enabled, p, ok = boolValue(raw, p, n-1); !ok {
				return false
			}
		case tfImported:
			if t.Imported, p, ok = boolValue(raw, p, n-1); !ok {
				return false
			}
		case tfPreviousSecretExpiresAt:
			if t.PreviousSecretExpiresAt, p, ok = timeValue(raw, p, n-1); !ok {
				return false
			}
		case tfCreatedAt:
			if t.CreatedAt, p, ok = timeValue(raw, p, n-1); !ok {
				return false
			}
		case tfUpdatedAt:
			if t.UpdatedAt, p, ok = timeValue(raw, p, n-1); !ok {
				return false
			}
		case tfExpiresAt:
			if t.ExpiresAt, p, ok = timeValue(raw, p, n-1); !ok {
				return false
			}
		case tfLastSeenAt:
			if t.LastSeenAt, p, ok = timeValue(raw, p, n-1); !ok {
				return false
			}
		case tfDuration:
			if t.Duration, p, ok = d.durationValue(raw, p, n-1); !ok {
				return false
			}
		}

		// Then the end of the object, or a comma and another key.
		if p == n-1 {
			break
		}
		if raw[p] != ',' || p+1 >= n-1 {
			return false
		}
		p++
	}

	size := 0
	for i := range strs {
		size += strs[i][1] - strs[i][0]
	}
	if size > 0 {
		var b strings.Builder
		b.Grow(size)
		for i := range strs {
			b.Write(raw[strs[i][0]:strs[i][1]])
		}
		all, off := b.String(), 0
		for i, dst := range [3]*string{&t.ID, &t.Name, &t.ClientID} {
			l := strs[i][1] - strs[i][0]
			*dst = all[off : off+l]
			off += l
		}
	}
	return true
}

// scanString scans the JSON string starting at raw[p] (which must be its
// opening quote; end is where the value must end by) and returns its
// contents' bounds and the position after the closing quote. It fails on
// any escape, control character or invalid UTF-8, all of which
// json.Unmarshal would either reject or rewrite.
func scanString(raw []byte, p, end int) (s, e, next int, ok bool) {
	if p >= end || raw[p] != '"' {
		return 0, 0, 0, false
	}
	p++
	s = p
	// Eight bytes at a time while none is a quote, a backslash or a control
	// character (the tests below have no false negatives); then byte by
	// byte from the word that has one.
	var high uint64
	for p+8 <= end {
		x := binary.LittleEndian.Uint64(raw[p:])
		if hasZeroByte(x^(lsb*'"'))|hasZeroByte(x^(lsb*'\\'))|hasByteBelow(x, 0x20) != 0 {
			break
		}
		high |= x
		p += 8
	}
	ascii := high&msb == 0
	for ; p < end; p++ {
		c := raw[p]
		if c == '"' {
			break
		}
		if c < 0x20 || c == '\\' {
			return 0, 0, 0, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if p >= end {
		return 0, 0, 0, false
	}
	if !ascii && !utf8.Valid(raw[s:p]) {
		return 0, 0, 0, false
	}
	return s, p, p + 1, true
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte is non-zero if and only if one of x's bytes is zero.
func hasZeroByte(x uint64) uint64 { return (x - lsb) &^ x & msb }

// hasByteBelow is non-zero if and only if one of x's bytes is below n,
// for n <= 128.
func hasByteBelow(x uint64, n byte) uint64 { return (x - lsb*uint64(n)) &^ x & msb }

// bytesValue decodes a []byte field: null (nil) or a standard base64
// string, decoded as encoding/json does (so "" gives an empty, non-nil
// slice).
func (d *tokenDecoder) bytesValue(raw []byte, p, end int) ([]byte, int, bool) {
	if p+4 <= end && string(raw[p:p+4]) == "null" {
		return nil, p + 4, true
	}
	if p >= end || raw[p] != '"' {
		return nil, 0, false
	}
	l := bytes.IndexByte(raw[p+1:end], '"')
	if l < 0 {
		return nil, 0, false
	}
	src, next := raw[p+1:p+1+l], p+l+2
	if l == 0 {
		return []byte{}, next, true
	}
	// Decode rejects every byte outside the alphabet (a backslash, a
	// control character, UTF-8) but for CR and LF, which it skips and JSON
	// allows only escaped: with l%4 == 0, skipping them (four or more,
	// since what is left must be whole quanta too) gives fewer than l/4*3-2
	// bytes.
	if l%4 != 0 {
		return nil, 0, false
	}
	size := base64.StdEncoding.DecodedLen(l)
	var dst []byte
	if d.arena {
		if len(d.free) < size {
			d.free = make([]byte, max(digestChunk, size))
		}
		dst = d.free[:size]
	} else {
		dst = make([]byte, size)
	}
	m, err := base64.StdEncoding.Decode(dst, src)
	if err != nil || m < size-2 {
		return nil, 0, false
	}
	if d.arena {
		d.free = d.free[m:]
	}
	return dst[:m:m], next, true
}

// int64Value decodes an integer in canonical form (no fraction, exponent
// or leading zeros) that fits in an int64.
func int64Value(raw []byte, p, end int) (int64, int, bool) {
	neg := p < end && raw[p] == '-'
	if neg {
		p++
	}
	s := p
	var u uint64
	for p < end && '0' <= raw[p] && raw[p] <= '9' {
		u = u*10 + uint64(raw[p]-'0')
		p++
	}
	digits := p - s
	switch {
	case digits == 0, digits > 1 && raw[s] == '0', digits > 19:
		return 0, 0, false
	case p < end && raw[p] != ',':
		return 0, 0, false
	case neg && u > 1<<63, !neg && u > math.MaxInt64:
		return 0, 0, false
	}
	if neg {
		return int64(-u), p, true
	}
	return int64(u), p, true
}

func boolValue(raw []byte, p, end int) (bool, int, bool) {
	switch {
	case p+4 <= end && string(raw[p:p+4]) == "true":
		return true, p + 4, true
	case p+5 <= end && string(raw[p:p+5]) == "false":
		return false, p + 5, true
	}
	return false, 0, false
}

// durationValue decodes a tokens.Duration as its UnmarshalJSON does:
// "forever" or a positive Go duration (tokens.ParseDuration). The last few
// durations parsed are kept: records mostly share a handful, and parsing
// one costs an allocation (the string escapes into ParseDuration's error).
func (d *tokenDecoder) durationValue(raw []byte, p, end int) (tokens.Duration, int, bool) {
	s, e, next, ok := scanString(raw, p, end)
	if !ok {
		return 0, 0, false
	}
	b := raw[s:e]
	if string(b) == "forever" {
		return tokens.Forever, next, true
	}
	for _, c := range d.durs {
		if c.s != "" && c.s == string(b) {
			return c.d, next, true
		}
	}
	v, err := tokens.ParseDuration(string(b))
	if err != nil {
		return 0, 0, false
	}
	d.durs[d.nextDur] = parsedDuration{string(b), v}
	d.nextDur = (d.nextDur + 1) % len(d.durs)
	return v, next, true
}

// timeValue decodes a time.Time as its UnmarshalJSON does, for the form
// json.Marshal writes: "2006-01-02T15:04:05.999999999Z07:00" with 0 to 9
// fraction digits and "Z" or a ±hh:mm offset. parseRFC3339 checks every
// byte up to the first quote, so the string needs no scanString.
func timeValue(raw []byte, p, end int) (time.Time, int, bool) {
	if p >= end || raw[p] != '"' {
		return time.Time{}, 0, false
	}
	n := bytes.IndexByte(raw[p+1:end], '"')
	if n < 0 {
		return time.Time{}, 0, false
	}
	t, ok := parseRFC3339(raw[p+1 : p+1+n])
	return t, p + n + 2, ok
}

// parseRFC3339 follows time's parseRFC3339 (which Time.UnmarshalJSON tries
// first), including where it puts a time with an offset: in time.Local if
// Local has that offset at that instant, else in FixedZone("", offset). It
// accepts less: exactly two digits in every field and 1 to 9 fraction
// digits.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if b[i] < '0' || b[i] > '9' {
			return time.Time{}, false
		}
	}
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year := num2(b[0:])*100 + num2(b[2:])
	month, day := num2(b[5:]), num2(b[8:])
	hour, minute, sec := num2(b[11:]), num2(b[14:]), num2(b[17:])
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	b = b[19:]

	nsec := 0
	if b[0] == '.' {
		i := 1
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			nsec = nsec*10 + int(b[i]-'0')
		}
		if i == 1 || i > 10 {
			return time.Time{}, false
		}
		for range 10 - i {
			nsec *= 10
		}
		b = b[i:]
	}

	// What time.Date(..., time.UTC) gives (its fields too), for less.
	unix := unixDays(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	t := time.Unix(unix, int64(nsec)).UTC()
	if len(b) == 1 && b[0] == 'Z' {
		return t, true
	}
	if len(b) != len("-07:00") || (b[0] != '+' && b[0] != '-') || b[3] != ':' {
		return time.Time{}, false
	}
	for _, i := range [...]int{1, 2, 4, 5} {
		if b[i] < '0' || b[i] > '9' {
			return time.Time{}, false
		}
	}
	hr, mm := num2(b[1:]), num2(b[4:])
	if hr > 23 || mm > 59 {
		return time.Time{}, false
	}
	offset := (hr*60 + mm) * 60
	if b[0] == '-' {
		offset = -offset
	}
	t = t.Add(-time.Duration(offset) * time.Second)
	if _, local := t.In(time.Local).Zone(); local == offset {
		return t.In(time.Local), true
	}
	return t.In(time.FixedZone("", offset)), true
}

// unixDays is the number of days from 1970-01-01 to year-month-day in the
// proleptic Gregorian calendar, for a valid date with 0 <= year <= 9999
// (Howard Hinnant's days_from_civil, with years starting in March).
func unixDays(year, month, day int) int64 {
	y := year
	if month <= 2 {
		y--
	}
	era := (y+400)/400 - 1 // floor(y/400) for y >= -400
	yoe := y - era*400     // [0, 399]
	mp := (month + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// num2 is the value of the two decimal digits b starts with.
func num2(b []byte) int { return int(b[0]-'0')*10 + int(b[1]-'0') }

// daysIn is the number of days in month of year (proleptic Gregorian, as
// in package time; year 0 is a leap year).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
