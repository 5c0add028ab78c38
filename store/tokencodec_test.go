package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// canonicalRunes are the runes json.Marshal writes as they are (no <, >, &,
// quote, backslash, control characters, U+2028 or U+2029), from every UTF-8
// length.
var canonicalRunes = []rune("abcXYZ019 -_.:/!#$%'()*+,;=?@[]^`{|}~\x7f" +
	"éüßÆøñ¡¿\u00a0\u0100\u07ff" + // two bytes
	"日本語中文한국어\u0800\ufffd\uffff\u2027\u202a" + // three bytes
	"😀🎉𐍈\U00010000\U0010ffff") // four bytes

func randString(r *rand.Rand, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var b strings.Builder
	for range n {
		b.WriteRune(canonicalRunes[r.IntN(len(canonicalRunes))])
	}
	return b.String()
}

// randTime covers zero, pre-1970, far-future (year 9999) and year-0 times,
// with and without nanoseconds, in UTC and in fixed zones.
func randTime(r *rand.Rand) time.Time {
	var t time.Time
	switch r.IntN(8) {
	case 0:
		return time.Time{}
	case 1: // before 1970
		t = time.Unix(-r.Int64N(62_000_000_000), r.Int64N(1e9))
	case 2: // far future, up to the end of year 9999
		t = time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC).Add(-time.Duration(r.Int64N(1<<62)) * time.Nanosecond)
	case 3: // year 0 and 1
		t = time.Date(r.IntN(2), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
	case 4: // whole seconds, milliseconds, microseconds
		t = time.Unix(r.Int64N(4_000_000_000), 0).Add(time.Duration(r.IntN(1000)) * []time.Duration{0, time.Millisecond, time.Microsecond}[r.IntN(3)])
	default:
		t = time.Unix(r.Int64N(4_000_000_000), r.Int64N(1e9))
	}
	switch r.IntN(6) {
	case 0:
		t = t.In(time.FixedZone("", (r.IntN(27)-12)*3600))
	case 1:
		t = t.In(time.FixedZone("X", r.IntN(48*60-1)*60-(24*60-1)*60)) // ±23:59
	case 2:
		t = t.Local()
	default:
		t = t.UTC()
	}
	if y := t.Year(); y < 0 || y > 9999 { // RFC 3339 has 4-digit years
		t = t.UTC()
	}
	return t
}

func randDigest(r *rand.Rand) []byte {
	switch r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, []int{32, 32, 32, 1, 2, 3, 31, 33}[r.IntN(8)])
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randToken(r *rand.Rand) *tokens.ServiceToken {
	t := &tokens.ServiceToken{
		ID:            randString(r, 0, 40),
		Name:          randString(r, 0, 60),
		ClientID:      randString(r, 0, 40),
		SecretDigest:  randDigest(r),
		SecretVersion: []int64{0, 1, 2, 9, 10, 12345, -1, -9_223_372_036_854_775_808, 9_223_372_036_854_775_807}[r.IntN(9)],
		Enabled:       r.IntN(2) == 0,
		CreatedAt:     randTime(r),
		UpdatedAt:     randTime(r),
		ExpiresAt:     randTime(r),
		Duration:      []tokens.Duration{tokens.Forever, tokens.DefaultDuration, tokens.Duration(time.Nanosecond), tokens.Duration(90 * time.Minute), tokens.Duration(1<<63 - 1), tokens.Duration(1500 * time.Millisecond)}[r.IntN(6)],
		LastSeenAt:    randTime(r),
		Imported:      r.IntN(2) == 0,
	}
	if r.IntN(2) == 0 {
		t.PreviousSecretDigest = randDigest(r)
		t.PreviousSecretExpiresAt = randTime(r)
	}
	return t
}

// checkFastDecode decodes raw with both decoders (plain and arena) and, if
// they claim it, fails unless json.Unmarshal succeeds and gives the same
// token. It returns whether the fast decoder claimed raw.
func checkFastDecode(t testing.TB, raw []byte) bool {
	t.Helper()
	var fast, arena tokens.ServiceToken
	ok := decodeTokenFast(raw, &fast)
	d := tokenDecoder{arena: true}
	if okArena := d.decode(raw, &arena); okArena != ok {
		t.Fatalf("%s: decodeTokenFast = %v but the arena decoder = %v", raw, ok, okArena)
	}
	if !ok {
		return false
	}
	var want tokens.ServiceToken
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s: decodeTokenFast took it, json.Unmarshal: %v", raw, err)
	}
	if diff := tokenDiff(&fast, &want); diff != "" {
		t.Fatalf("%s: decodeTokenFast differs from json.Unmarshal: %s", raw, diff)
	}
	if diff := tokenDiff(&arena, &want); diff != "" {
		t.Fatalf("%s: arena decoder differs from json.Unmarshal: %s", raw, diff)
	}
	return true
}

// tokenDiff describes how got differs from want, field by field; times
// must be Equal and in the same Location, and then the whole values must
// be reflect.DeepEqual (which also compares slices' nil-ness and Location
// pointers' contents).
func tokenDiff(got, want *tokens.ServiceToken) string {
	var diffs []string
	times := []struct {
		name      string
		got, want time.Time
	}{
		{"PreviousSecretExpiresAt", got.PreviousSecretExpiresAt, want.PreviousSecretExpiresAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"LastSeenAt", got.LastSeenAt, want.LastSeenAt},
	}
	for _, tm := range times {
		if !tm.got.Equal(tm.want) || tm.got.Location().String() != tm.want.Location().String() {
			diffs = append(diffs, fmt.Sprintf("%s = %v (%s), want %v (%s)", tm.name,
				tm.got, tm.got.Location(), tm.want, tm.want.Location()))
		}
	}
	for _, b := range []struct {
		name      string
		got, want []byte
	}{
		{"SecretDigest", got.SecretDigest, want.SecretDigest},
		{"PreviousSecretDigest", got.PreviousSecretDigest, want.PreviousSecretDigest},
	} {
		if !bytes.Equal(b.got, b.want) || (b.got == nil) != (b.want == nil) {
			diffs = append(diffs, fmt.Sprintf("%s = %#v, want %#v", b.name, b.got, b.want))
		}
	}
	if len(diffs) == 0 && !reflect.DeepEqual(got, want) {
		diffs = append(diffs, fmt.Sprintf("not DeepEqual:\n got %#v\nwant %#v", got, want))
	}
	return strings.Join(diffs, "; ")
}

func encodeTokenT(t testing.TB, tok *tokens.ServiceToken) []byte {
	t.Helper()
	raw, err := encode(tok)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return raw
}

// TestDecodeTokenFastCanonical: whatever encode writes, with strings it
// writes unescaped, the fast decoder takes and decodes exactly as
// json.Unmarshal does.
func TestDecodeTokenFastCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	toks := []*tokens.ServiceToken{newToken(0), newToken(1), {}, {ID: "x"}}
	for range 5000 {
		toks = append(toks, randToken(r))
	}
	for _, tok := range toks {
		raw := encodeTokenT(t, tok)
		if !checkFastDecode(t, raw) {
			t.Fatalf("decodeTokenFast refused a canonical record: %s", raw)
		}
	}
}

// TestDecodeTokenFastLocal: a time with an offset lands in time.Local
// when Local has that offset then, else in a FixedZone, as with
// json.Unmarshal.
func TestDecodeTokenFastLocal(t *testing.T) {
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("", -5*3600-1800)}
	if paris, err := time.LoadLocation("Europe/Paris"); err == nil {
		zones = append(zones, paris)
	}
	for _, zone := range zones {
		time.Local = zone
		r := rand.New(rand.NewPCG(3, 4))
		for range 2000 {
			tok := randToken(r)
			tok.CreatedAt = time.Unix(r.Int64N(4_000_000_000), r.Int64N(1e9)).In(zone)
			raw := encodeTokenT(t, tok)
			if !checkFastDecode(t, raw) {
				t.Fatalf("Local %s: decodeTokenFast refused a canonical record: %s", zone, raw)
			}
		}
		for _, s := range []string{
			`{"created_at":"2026-07-01T12:00:00+02:00"}`,
			`{"created_at":"2026-01-01T12:00:00+01:00"}`,
			`{"created_at":"2026-01-01T12:00:00+00:00"}`,
			`{"created_at":"2026-01-01T12:00:00-05:30"}`,
			`{"created_at":"2026-01-01T12:00:00+23:59"}`,
		} {
			if !checkFastDecode(t, []byte(s)) {
				t.Errorf("Local %s: decodeTokenFast refused %s", zone, s)
			}
		}
	}
}

// TestDecodeTokenFastOther: inputs the fast decoder must refuse (json may
// accept them, with a different reading, or fail), and a few it takes.
func TestDecodeTokenFastOther(t *testing.T) {
	base := string(encodeTokenT(t, &tokens.ServiceToken{
		ID: "id1", Name: "name", ClientID: "cid", SecretDigest: []byte{1, 2, 3},
		SecretVersion: 3, PreviousSecretDigest: []byte{4}, PreviousSecretExpiresAt: t0,
		Enabled: true, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0,
		Duration: tokens.DefaultDuration, LastSeenAt: t0, Imported: true,
	}))
	take := []string{
		base,
		`{}`,
		`{"id":"a"}`,
		`{"secret_digest":null,"previous_secret_digest":null}`,
		`{"secret_digest":""}`,
		`{"secret_digest":"AQID"}`,
		`{"client_secret_version":-0}`,
		`{"client_secret_version":-9223372036854775808}`,
		`{"client_secret_version":9223372036854775807}`,
		"{\"name\":\"é😀\u2028\"}", // U+2028 unescaped is valid JSON
		`{"duration":"1h30m"}`,
		`{"duration":"1.5h"}`,
		`{"created_at":"2026-03-01T12:00:00.1Z"}`,
		`{"created_at":"2026-03-01T12:00:00.000000000Z"}`,
		`{"created_at":"2024-02-29T23:59:59.999999999Z"}`,
		`{"created_at":"2000-02-29T00:00:00Z"}`,
		`{"created_at":"2026-12-31T00:00:00Z"}`,
		`{"created_at":"2026-10-31T00:00:00Z"}`,
		`{"created_at":"0000-02-29T00:00:00Z"}`,
		`{"created_at":"9999-12-31T23:59:59.999999999Z"}`,
		`{"created_at":"0001-01-01T00:00:00Z"}`,
		`{"created_at":"2026-03-01T12:00:00-00:00"}`,
	}
	for _, s := range take {
		if !checkFastDecode(t, []byte(s)) {
			t.Errorf("decodeTokenFast refused %s", s)
		}
	}
	refuse := []string{
		// Escapes.
		`{"name":"a\"b"}`,
		`{"name":"\u00e9"}`,
		`{"name":"a\\b"}`,
		`{"name":"\u003c"}`,
		`{"na\u006de":"x"}`,
		`{"secret_digest":"AQ\u003d\u003d"}`,
		`{"duration":"8760\u0068"}`,
		// Invalid UTF-8, control characters.
		"{\"name\":\"a\xffb\"}",
		"{\"name\":\"\xed\xa0\x80\"}",
		"{\"name\":\"a\tb\"}",
		"{\"name\":\"a\x00b\"}",
		// Whitespace.
		` {}`,
		`{} `,
		`{ "id":"a"}`,
		`{"id" :"a"}`,
		`{"id": "a"}`,
		`{"id":"a" }`,
		`{"id":"a", "name":"b"}`,
		"{\"id\":\"a\"\n}",
		// Key order, unknown keys, duplicates, case.
		`{"name":"b","id":"a"}`,
		`{"id":"a","id":"b"}`,
		`{"id":"a","extra":1}`,
		`{"ID":"a"}`,
		`{"Name":"a"}`,
		`{"enabled":true,"enabled":false}`,
		// Nulls but for []byte.
		`{"id":null}`,
		`{"enabled":null}`,
		`{"client_secret_version":null}`,
		`{"created_at":null}`,
		`{"duration":null}`,
		// Numbers.
		`{"client_secret_version":1e3}`,
		`{"client_secret_version":1.0}`,
		`{"client_secret_version":01}`,
		`{"client_secret_version":+1}`,
		`{"client_secret_version":-}`,
		`{"client_secret_version":9223372036854775808}`,
		`{"client_secret_version":-9223372036854775809}`,
		`{"client_secret_version":99999999999999999999}`,
		`{"client_secret_version":"1"}`,
		// Wrong types, bad values.
		`{"id":1}`,
		`{"enabled":"true"}`,
		`{"enabled":True}`,
		`{"enabled":truex}`,
		`{"secret_digest":"AQI"}`,
		`{"secret_digest":"!!!!"}`,
		`{"secret_digest":[1]}`,
		`{"secret_digest":"AQ=="x}`,
		`{"secret_digest":"AQ"}`,
		`{"secret_digest":"AQ=\"="}`,
		"{\"secret_digest\":\"AQID\n\n\n\nAQID\"}",
		"{\"secret_digest\":\"AQ==\r\n\r\n\"}",
		"{\"secret_digest\":\"\n\n\n\n\"}",
		"{\"secret_digest\":\"AQ\n=\"}",
		"{\"secret_digest\":\"AQI\n\"}",
		"{\"secret_digest\":\"AQ\x00=\"}",
		"{\"secret_digest\":\"AQ\xc3\xa9\"}",
		`{"duration":"0s"}`,
		`{"duration":"-1h"}`,
		`{"duration":""}`,
		`{"duration":"8760"}`,
		`{"duration":8760}`,
		`{"created_at":"2026-03-01T12:00:00"}`,
		`{"created_at":"2026-03-01 12:00:00Z"}`,
		`{"created_at":"2026-03-01t12:00:00Z"}`,
		`{"created_at":"2026-03-01T12:00:00z"}`,
		`{"created_at":"2026-02-29T12:00:00Z"}`,
		`{"created_at":"2026-13-01T12:00:00Z"}`,
		`{"created_at":"2026-00-01T12:00:00Z"}`,
		`{"created_at":"2026-01-00T12:00:00Z"}`,
		`{"created_at":"2026-01-32T12:00:00Z"}`,
		`{"created_at":"2026-04-31T12:00:00Z"}`,
		`{"created_at":"2026-06-31T12:00:00Z"}`,
		`{"created_at":"2026-09-31T12:00:00Z"}`,
		`{"created_at":"2026-11-31T12:00:00Z"}`,
		`{"created_at":"1900-02-29T12:00:00Z"}`,
		`{"created_at":"2026-03-01T24:00:00Z"}`,
		`{"created_at":"2026-03-01T12:60:00Z"}`,
		`{"created_at":"2026-03-01T12:00:60Z"}`,
		`{"created_at":"2026-03-01T12:00:00.Z"}`,
		`{"created_at":"2026-03-01T12:00:00,5Z"}`,
		`{"created_at":"2026-03-01T12:00:00.1234567891Z"}`,
		`{"created_at":"2026-03-01T12:00:00+24:00"}`,
		`{"created_at":"2026-03-01T12:00:00+01:60"}`,
		`{"created_at":"2026-03-01T12:00:00+0100"}`,
		`{"created_at":"2026-03-01T2:00:00Z"}`,
		`{"created_at":"12026-03-01T12:00:00Z"}`,
		`{"created_at":1}`,
		// Structure.
		``,
		`{`,
		`}`,
		`[]`,
		`null`,
		`{,}`,
		`{"id":"a",}`,
		`{"id":"a",,"name":"b"}`,
		`{"id""a"}`,
		`{"id":}`,
		`{"id"}`,
		`{"id`,
		`{"id":"a"}}`,
		`{"id":"a"}{}`,
		`{"id":"a"`,
	}
	// Every proper prefix of a good record is truncated.
	for i := range len(base) {
		refuse = append(refuse, base[:i])
	}
	for _, s := range refuse {
		if checkFastDecode(t, []byte(s)) {
			t.Errorf("decodeTokenFast took %s", s)
		}
	}
}

// TestUnixDays: every date parseRFC3339 takes, against time.Date.
func TestUnixDays(t *testing.T) {
	for d := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 10000; d = d.AddDate(0, 0, 1) {
		if got := unixDays(d.Year(), int(d.Month()), d.Day()); got*86400 != d.Unix() {
			t.Fatalf("unixDays(%s) = %d, want %d", d.Format(time.DateOnly), got, d.Unix()/86400)
		}
	}
}

// TestLoadFastAndFallback: Load and LoadAndSubscribeEach give, for a mix of
// canonical records and records only encoding/json reads, exactly what
// json.Unmarshal does.
func TestLoadFastAndFallback(t *testing.T) {
	db := openTest(t, fast)
	const n = 3000 // two decoding workers
	r := rand.New(rand.NewPCG(5, 6))
	records := map[string][]byte{}
	for i := range n {
		tok := randToken(r)
		tok.ID = testID(1, i)
		raw := encodeTokenT(t, tok)
		switch i % 7 {
		case 3: // whitespace: fallback
			var buf bytes.Buffer
			if err := json.Indent(&buf, raw, "", " "); err != nil {
				t.Fatal(err)
			}
			raw = buf.Bytes()
		case 5: // an escaped name: fallback
			tok.Name = "<" + tok.Name + ">"
			raw = encodeTokenT(t, tok)
		}
		records[tok.ID] = raw
	}
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		for id, raw := range records {
			if err := btx.Bucket(bucketTokens).Put([]byte(id), raw); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := mustLoad(t, db)
	if len(st.Tokens) != n {
		t.Fatalf("Load returned %d tokens, want %d", len(st.Tokens), n)
	}
	for i, got := range st.Tokens {
		id := testID(1, i)
		var want tokens.ServiceToken
		if err := json.Unmarshal(records[id], &want); err != nil {
			t.Fatal(err)
		}
		if diff := tokenDiff(got, &want); diff != "" {
			t.Fatalf("token %d: %s", i, diff)
		}
	}
	var streamed []*tokens.ServiceToken
	st2, err := db.LoadAndSubscribeEach(func(tok *tokens.ServiceToken) {
		c := *tok // Clone would turn an empty digest into nil
		c.SecretDigest, c.PreviousSecretDigest = bytes.Clone(tok.SecretDigest), bytes.Clone(tok.PreviousSecretDigest)
		streamed = append(streamed, &c)
	}, func(Change) {})
	if err != nil || st2.Tokens != nil || st2.Rev != st.Rev || len(streamed) != n {
		t.Fatalf("LoadAndSubscribeEach: rev %d (Load %d), %d tokens streamed, %d in State, %v", st2.Rev, st.Rev, len(streamed), len(st2.Tokens), err)
	}
	for i, got := range streamed {
		if diff := tokenDiff(got, st.Tokens[i]); diff != "" {
			t.Fatalf("streamed token %d: %s", i, diff)
		}
	}
	// Tokens may be kept and changed one by one: digests do not overlap.
	a, b := st.Tokens[0], st.Tokens[1]
	wantB := append([]byte(nil), b.SecretDigest...)
	a.SecretDigest = append(a.SecretDigest, 0xff, 0xff)
	if !bytes.Equal(b.SecretDigest, wantB) {
		t.Errorf("appending to one token's digest changed the next one's")
	}

	bad := testID(1, n-5)
	if err := db.bolt.Update(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketTokens).Put([]byte(bad), []byte(`{"id":"x","enabled":"yes"}`))
	}); err != nil {
		t.Fatal(err)
	}
	_, err = db.Load()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load with a bad record = %v, want ErrCorrupt naming %s", err, bad)
	}
	_, err = db.LoadAndSubscribeEach(func(*tokens.ServiceToken) {}, func(Change) {})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadAndSubscribeEach with a bad record = %v, want ErrCorrupt naming %s", err, bad)
	}
}

// FuzzDecodeTokenRecord: whatever the fast decoder takes, json.Unmarshal
// takes too and decodes to the same token.
func FuzzDecodeTokenRecord(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 40 {
		f.Add(encodeTokenT(f, randToken(r)))
	}
	f.Add(encodeTokenT(f, newToken(1)))
	for _, s := range []string{
		`{}`,
		`{"secret_digest":null,"previous_secret_digest":""}`,
		`{"name":"a\"b"}`,
		`{"id": "a"}`,
		`{"client_secret_version":1e3}`,
		`{"created_at":"2026-03-01T12:00:00+01:00"}`,
		`{"created_at":"2026-03-01T12:00:00.123Z","duration":"1h30m"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkFastDecode(t, raw)
	})
}

// BenchmarkDecodeTokenRecord: one token record as Load sees it, through
// encoding/json and through the fast decoder (alone, and as Load's
// workers run it: into a block, digests from a shared chunk).
func BenchmarkDecodeTokenRecord(b *testing.B) {
	tok := newToken(12345)
	tok.LastSeenAt = t0.Add(1234567891 * time.Nanosecond)
	tok.PreviousSecretDigest = bytes.Repeat([]byte{7}, 32)
	tok.PreviousSecretExpiresAt = t0.Add(time.Hour)
	raw := encodeTokenT(b, tok)
	if !decodeTokenFast(raw, new(tokens.ServiceToken)) {
		b.Fatalf("decodeTokenFast refused %s", raw)
	}
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var t tokens.ServiceToken
			if err := json.Unmarshal(raw, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			t := new(tokens.ServiceToken)
			if !decodeTokenFast(raw, t) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("fast-load", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		const blockLen = 1024
		var (
			block []tokens.ServiceToken
			d     = tokenDecoder{arena: true}
		)
		for b.Loop() {
			if len(block) == 0 {
				block = make([]tokens.ServiceToken, blockLen)
			}
			if !d.decode(raw, &block[0]) {
				b.Fatal("refused")
			}
			block = block[1:]
		}
	})
}
