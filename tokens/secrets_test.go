package tokens

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secretRE is the pattern the package doc gives secret scanners.
var secretRE = regexp.MustCompile(`^gh(st|ak)_[0-9A-Za-z]{49}$`)

var hex64RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// independentCheck validates a secret the long way, without the package's
// helpers: hash/crc32 on a []byte and a base62 encoding by repeated
// division, compared as strings.
func independentCheck(s, prefix string, legacyHex bool) bool {
	if legacyHex && hex64RE.MatchString(s) {
		return true
	}
	if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+49 {
		return false
	}
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for _, c := range s[len(prefix):] {
		if !strings.ContainsRune(alphabet, c) {
			return false
		}
	}
	crc := crc32.ChecksumIEEE([]byte(s[:len(prefix)+43]))
	want := ""
	for range 6 {
		want = string(alphabet[crc%62]) + want
		crc /= 62
	}
	return s[len(prefix)+43:] == want
}

// withChecksum completes prefix+random43 with its checksum.
func withChecksum(head string) string {
	return string(appendChecksum([]byte(head), crc32IEEE(head)))
}

func TestNewSecretFormat(t *testing.T) {
	for _, prefix := range []string{SecretPrefix, AdminKeyPrefix} {
		seen := map[string]bool{}
		for range 300 {
			s, err := NewSecret(prefix)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) != 54 || !secretRE.MatchString(s) || !strings.HasPrefix(s, prefix) {
				t.Fatalf("NewSecret(%q) has the wrong shape (len %d)", prefix, len(s))
			}
			if !independentCheck(s, prefix, false) {
				t.Fatalf("NewSecret(%q): independent checksum check fails", prefix)
			}
			if err := CheckSecret(s, prefix, false); err != nil {
				t.Fatalf("CheckSecret(NewSecret(%q)): %v", prefix, err)
			}
			other := AdminKeyPrefix
			if prefix == AdminKeyPrefix {
				other = SecretPrefix
			}
			if err := CheckSecret(s, other, true); !errors.Is(err, ErrSecretMalformed) {
				t.Fatalf("a %q secret passed CheckSecret for %q: %v", prefix, other, err)
			}
			if seen[s] {
				t.Fatal("NewSecret repeated a secret")
			}
			seen[s] = true
		}
	}
}

func TestNewSecretBadPrefix(t *testing.T) {
	for _, p := range []string{"", "GHST_", "gh-st_", "a_very_long_prefix_", "ghst_ "} {
		if _, err := NewSecret(p); !errors.Is(err, ErrPrefixInvalid) {
			t.Errorf("NewSecret(%q) = %v, want ErrPrefixInvalid", p, err)
		}
	}
}

// TestRandomBase62Rejection checks the rejection sampling: bytes 248..255
// are skipped, the rest map to byte%62, so every character is equally likely.
func TestRandomBase62Rejection(t *testing.T) {
	src := make([]byte, 64)
	for i := range src {
		src[i] = 255 // rejected
	}
	copy(src, []byte{248, 0, 255, 61, 62, 247, 123, 250, 186})
	got, err := appendRandomBase62(nil, 6, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	// 0→'0', 61→'z', 62→'0', 247%62=61→'z', 123%62=61→'z', 186%62=0→'0'
	if want := "0z0zz0"; string(got) != want {
		t.Errorf("appendRandomBase62 = %q, want %q", got, want)
	}
	// A source that runs dry is an error, not a short secret.
	if _, err := appendRandomBase62(nil, 43, bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("appendRandomBase62 with a short source: no error")
	}
	// Every value 0..247 maps to each character exactly 4 times.
	counts := map[byte]int{}
	for b := 0; b < 248; b++ {
		counts[base62[b%62]]++
	}
	for c, n := range counts {
		if n != 4 {
			t.Errorf("character %q drawn by %d byte values, want 4", c, n)
		}
	}
}

func TestCRC32MatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "a", "ghst_", strings.Repeat("xyz", 40)} {
		if got, want := crc32IEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("crc32IEEE(%q) = %08x, want %08x", s, got, want)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	good := withChecksum(SecretPrefix + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg")
	goodAdmin := withChecksum(AdminKeyPrefix + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg")
	hexLower := "bdd31cbc4dec990953e39163fbbb194c93313ca9f0a6e420346af9d326b1d2a5"
	body := good[len(SecretPrefix):]

	// typo changes the character at i to the next one in the alphabet.
	typo := func(s string, i int) string {
		b := []byte(s)
		b[i] = base62[(base62Digit(b[i])+1)%62]
		return string(b)
	}
	swap := func(s string, i int) string {
		b := []byte(s)
		b[i], b[i+1] = b[i+1], b[i]
		return string(b)
	}
	if good[10] == good[11] {
		t.Fatal("test secret needs distinct adjacent characters")
	}

	tests := []struct {
		name   string
		s      string
		prefix string
		legacy bool
		why    string // substring of the error; "" = valid
	}{
		{"good", good, SecretPrefix, false, ""},
		{"good with legacy allowed", good, SecretPrefix, true, ""},
		{"good admin key", goodAdmin, AdminKeyPrefix, false, ""},
		{"legacy hex lowercase", hexLower, SecretPrefix, true, ""},
		{"legacy hex uppercase", strings.ToUpper(hexLower), SecretPrefix, true, ""},
		{"legacy hex mixed case", "BDD31cbc" + hexLower[8:], SecretPrefix, true, ""},
		{"legacy hex not allowed", hexLower, SecretPrefix, false, "legacy 64-hex"},
		{"legacy hex 63 chars", hexLower[:63], SecretPrefix, true, "does not start"},
		{"legacy hex 65 chars", hexLower + "a", SecretPrefix, true, "does not start"},
		{"legacy hex with g", "g" + hexLower[1:], SecretPrefix, true, "does not start"},
		{"empty", "", SecretPrefix, true, "empty"},
		{"prefix only", SecretPrefix, SecretPrefix, false, "length is 5 characters, want 54"},
		{"one short", good[:53], SecretPrefix, false, "length is 53 characters, want 54"},
		{"one long", good + "a", SecretPrefix, false, "length is 55 characters, want 54"},
		{"too long", SecretPrefix + strings.Repeat("a", MaxSecretLen), SecretPrefix, true, "over 256"},
		{"admin key as client secret", goodAdmin, SecretPrefix, true, `starts with "ghak_" (an admin key), want "ghst_"`},
		{"client secret as admin key", good, AdminKeyPrefix, false, `starts with "ghst_" (a service token secret), want "ghak_"`},
		{"no prefix", body + "abcde", SecretPrefix, false, `does not start with "ghst_"`},
		{"uppercase prefix", "GHST_" + body, SecretPrefix, false, `does not start with "ghst_"`},
		{"Cloudflare new format", "cfast_" + strings.Repeat("a", 48), SecretPrefix, true, "does not start"},
		{"dash in random part", good[:20] + "-" + good[21:], SecretPrefix, false, "outside [0-9A-Za-z]"},
		{"space in checksum", good[:53] + " ", SecretPrefix, false, "outside [0-9A-Za-z]"},
		{"non-ASCII", good[:50] + "é" + good[52:], SecretPrefix, false, "outside [0-9A-Za-z]"},
		{"NUL byte", good[:30] + "\x00" + good[31:], SecretPrefix, false, "outside [0-9A-Za-z]"},
		{"typo in random part", typo(good, 10), SecretPrefix, false, "checksum"},
		{"typo in first random char", typo(good, 5), SecretPrefix, false, "checksum"},
		{"typo in checksum", typo(good, 53), SecretPrefix, false, "checksum"},
		{"swapped characters", swap(good, 10), SecretPrefix, false, "checksum"},
		{"checksum of another secret", good[:48] + goodAdmin[48:], SecretPrefix, false, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSecret(tt.s, tt.prefix, tt.legacy)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("CheckSecret = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrSecretMalformed) {
				t.Fatalf("CheckSecret = %v, want ErrSecretMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("CheckSecret = %q, want it to say %q", err, tt.why)
			}
			if len(tt.s) > len(SecretPrefix) && strings.Contains(err.Error(), tt.s[len(SecretPrefix):]) {
				t.Errorf("CheckSecret error contains the secret: %q", err)
			}
			if independentCheck(tt.s, tt.prefix, tt.legacy) {
				t.Errorf("the independent check accepts what CheckSecret rejects")
			}
		})
	}
}

// TestCheckSecretEverySingleTypo changes each character after the prefix to
// every other base62 character: CRC-32 catches every such error.
func TestCheckSecretEverySingleTypo(t *testing.T) {
	s, err := NewSecret(SecretPrefix)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(s)
	for i := len(SecretPrefix); i < len(b); i++ {
		orig := b[i]
		for j := 0; j < len(base62); j++ {
			if base62[j] == orig {
				continue
			}
			b[i] = base62[j]
			if err := CheckSecret(string(b), SecretPrefix, true); !errors.Is(err, ErrSecretMalformed) {
				t.Fatalf("typo at %d (%q→%q) accepted", i, orig, base62[j])
			}
		}
		b[i] = orig
	}
}

func TestCheckSecretDoesNotAllocate(t *testing.T) {
	good, _ := NewSecret(SecretPrefix)
	hexSecret := strings.Repeat("aB3", 21) + "f"
	for name, s := range map[string]string{"ghst": good, "hex": hexSecret} {
		if n := testing.AllocsPerRun(100, func() {
			if CheckSecret(s, SecretPrefix, true) != nil {
				panic("rejected")
			}
		}); n != 0 {
			t.Errorf("CheckSecret(%s) allocates %v times", name, n)
		}
	}
}

func TestDigest(t *testing.T) {
	s, _ := NewSecret(SecretPrefix)
	want := sha256.Sum256([]byte("gatehouse.secret.v1\x00" + s))
	if got := Digest(s); got != want {
		t.Errorf("Digest = %x, want SHA-256 of domain+secret %x", got, want)
	}
	long := strings.Repeat("x", MaxSecretLen+1)
	if got, want := Digest(long), sha256.Sum256([]byte("gatehouse.secret.v1\x00"+long)); got != want {
		t.Errorf("Digest(long) = %x, want %x", got, want)
	}
	atMax := strings.Repeat("y", MaxSecretLen)
	if got, want := Digest(atMax), sha256.Sum256([]byte("gatehouse.secret.v1\x00"+atMax)); got != want {
		t.Errorf("Digest(MaxSecretLen) = %x, want %x", got, want)
	}
	if Digest("a") == Digest("b") || Digest("") == Digest("a") {
		t.Error("different secrets have the same digest")
	}
	if n := testing.AllocsPerRun(100, func() { _ = Digest(s) }); n != 0 {
		t.Errorf("Digest allocates %v times", n)
	}
}

func TestDigestEqual(t *testing.T) {
	a, b := Digest("a"), Digest("b")
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", a[:], a[:], true},
		{"copy", a[:], bytes.Clone(a[:]), true},
		{"different", a[:], b[:], false},
		{"shorter", a[:], a[:31], false},
		{"nil", a[:], nil, false},
		{"both nil", nil, nil, false},
		{"both empty", []byte{}, []byte{}, false},
	}
	for _, tt := range tests {
		if got := DigestEqual(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: DigestEqual = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestClientID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewClientID()
		if err != nil {
			t.Fatal(err)
		}
		if !ValidClientID(id) || !regexp.MustCompile(`^[0-9a-f]{32}\.access$`).MatchString(id) {
			t.Fatalf("NewClientID = %q, not 32 lowercase hex + .access", id)
		}
		if seen[id] {
			t.Fatal("NewClientID repeated")
		}
		seen[id] = true
	}
}

func TestValidClientID(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"88bf3b6d86161464f6509f7219099e57.access", true}, // Cloudflare's docs example
		{"00000000000000000000000000000000.access", true},
		{"88BF3B6D86161464F6509F7219099E57.access", false},  // uppercase
		{"88bf3b6d86161464f6509f7219099e5.access", false},   // 31 hex
		{"88bf3b6d86161464f6509f7219099e577.access", false}, // 33 hex
		{"88bf3b6d86161464f6509f7219099e57.Access", false},
		{"88bf3b6d86161464f6509f7219099e57", false},
		{"88bf3b6d86161464f6509f7219099e57.access.example.com", false},
		{"88bf3b6d86161464f6509f7219099g57.access", false},
		{"88bf3b6d86161464f6509f7219099e57xaccess", false},
		{".access", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidClientID(tt.s); got != tt.want {
			t.Errorf("ValidClientID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	before := time.Now().UnixMilli()
	prev := ""
	for range 1000 {
		id := NewID()
		if !ValidID(id) || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("NewID = %q, not a canonical RFC 9562 version 7 UUID", id)
		}
		// Ids sort in creation order (what keeps the store's inserts at
		// the end of its B+tree), even within one millisecond.
		if id <= prev {
			t.Fatalf("NewID = %q after %q: not increasing", id, prev)
		}
		prev = id
		ms, err := strconv.ParseInt(id[:8]+id[9:13], 16, 64)
		if err != nil || ms < before || ms > time.Now().UnixMilli() {
			t.Fatalf("NewID = %q: timestamp %d (%v) not within the test's run (from %d)", id, ms, err, before)
		}
	}
	tests := []struct {
		s    string
		want bool
	}{
		{"0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"0B7E6C3E-5D0F-4A7E-9D6B-2F9F1A2B3C4D", false}, // not lowercase
		{"0b7e6c3e5d0f4a7e9d6b2f9f1a2b3c4d", false},     // no hyphens
		{"{0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d}", false},
		{"urn:uuid:0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d", false},
		{"0b7e6c3e5-d0f-4a7e-9d6b-2f9f1a2b3c4d", false}, // hyphen moved
		{"0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4g", false},
		{"0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4", false},
		{"0b7e6c3e-5d0f-4a7e-9d6b-2f9f1a2b3c4d0", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.s); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"plain", "ci-deploy", nil},
		{"inner spaces", "CI deploy  (prod)", nil},
		{"unicode letters", "Überprüfung 日本 ñ", nil},
		{"emoji", "deploy 🚀", nil},
		{"255 ASCII", strings.Repeat("a", 255), nil},
		{"255 two-byte runes", strings.Repeat("é", 255), nil},
		{"empty", "", ErrNameEmpty},
		{"256 ASCII", strings.Repeat("a", 256), ErrNameTooLong},
		{"256 two-byte runes", strings.Repeat("é", 256), ErrNameTooLong},
		{"huge", strings.Repeat("日", 10000), ErrNameTooLong},
		{"NUL", "a\x00b", ErrNameNotPrintable},
		{"tab", "a\tb", ErrNameNotPrintable},
		{"newline", "a\nb", ErrNameNotPrintable},
		{"DEL", "a\x7f", ErrNameNotPrintable},
		{"C1 control", "a\u0085b", ErrNameNotPrintable},
		{"no-break space", "a\u00a0b", ErrNameNotPrintable},
		{"zero-width space", "a\u200bb", ErrNameNotPrintable},
		{"bidi override", "a\u202eb", ErrNameNotPrintable},
		{"invalid UTF-8", "a\xffb", ErrNameNotPrintable},
		{"truncated UTF-8", "caf\xc3", ErrNameNotPrintable},
		{"encoded U+FFFD is fine", "a\uFFFDb", nil},
		{"leading space", " name", ErrNameSpace},
		{"trailing space", "name ", ErrNameSpace},
		{"only a space", " ", ErrNameSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.in)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateName = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ValidateName = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzCheckSecret checks that CheckSecret never panics, agrees with an
// independent implementation of the format both ways, and never echoes the
// secret in its error.
func FuzzCheckSecret(f *testing.F) {
	good := withChecksum(SecretPrefix + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg")
	f.Add(good, false, false)                                                               // valid ghst_ secret
	f.Add(withChecksum(AdminKeyPrefix+strings.Repeat("Z", 43)), true, false)                // valid admin key
	f.Add("bdd31cbc4dec990953e39163fbbb194c93313ca9f0a6e420346af9d326b1d2a5", false, true)  // legacy hex
	f.Add("BDD31CBC4DEC990953E39163FBBB194C93313CA9F0A6E420346AF9D326B1D2A5", false, false) // legacy hex, refused
	f.Add(good[:53], false, false)                                                          // truncated
	f.Add(good[:10]+"x"+good[11:], false, false)                                            // typo
	f.Add(good[:20]+"_"+good[21:], false, false)                                            // bad character
	f.Add("", false, true)                                                                  // empty
	f.Add(SecretPrefix, false, false)                                                       // prefix only
	f.Add("cfast_"+strings.Repeat("a", 48), false, true)                                    // Cloudflare new format
	f.Add(strings.Repeat("ghst_", 60), false, false)                                        // over MaxSecretLen
	f.Add(good[:50]+"\xff\xfe\xfd\xfc", false, false)                                       // invalid UTF-8
	f.Fuzz(func(t *testing.T, s string, admin, legacy bool) {
		prefix := SecretPrefix
		if admin {
			prefix = AdminKeyPrefix
		}
		err := CheckSecret(s, prefix, legacy)
		if ok := independentCheck(s, prefix, legacy); ok != (err == nil) {
			t.Fatalf("CheckSecret = %v, independent check valid = %v", err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrSecretMalformed) {
				t.Fatalf("CheckSecret error %v does not wrap ErrSecretMalformed", err)
			}
			if len(s) >= 24 && strings.Contains(err.Error(), s) {
				t.Fatalf("CheckSecret error contains the secret: %q", err)
			}
		}
	})
}
