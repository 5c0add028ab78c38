package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

const (
	// SecretPrefix starts every service token client secret gatehouse issues.
	SecretPrefix = "ghst_"
	// AdminKeyPrefix starts every admin API key.
	AdminKeyPrefix = "ghak_"
	// MaxSecretLen bounds what CheckSecret and Digest callers accept: a
	// longer presented secret is rejected before it is hashed, so a client
	// cannot make the server hash megabytes per request.
	MaxSecretLen = 256

	// SecretRandomLen is the number of base62 characters of randomness in a
	// secret: 62^43 > 2^256.
	SecretRandomLen = 43
	// SecretChecksumLen is the number of base62 characters of the CRC32
	// checksum that ends a secret: 62^6 > 2^32.
	SecretChecksumLen = 6
	// SecretBodyLen is the length of a secret after its prefix.
	SecretBodyLen = SecretRandomLen + SecretChecksumLen

	// LegacySecretLen is the length of a Cloudflare hex client secret.
	LegacySecretLen = 64

	// maxPrefixLen bounds NewSecret's prefix; ours are 5 bytes.
	maxPrefixLen = 16
)

// base62 is the secret alphabet, in digit order: the checksum is written
// most significant digit first with these digits.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors about secrets and identifiers.
var (
	// ErrSecretMalformed means a presented secret is not a well-formed
	// gatehouse (or, where allowed, legacy hex) secret. The wrapping error
	// says why (length, prefix, alphabet, checksum) and never contains the
	// secret.
	ErrSecretMalformed = errors.New("client secret is malformed")
	// ErrPrefixInvalid means NewSecret was asked for a prefix that is not
	// 1–16 characters of [a-z0-9_]: a programming error.
	ErrPrefixInvalid = errors.New("secret prefix must be 1-16 characters of [a-z0-9_]")
	// ErrClientIDMalformed means a client id is not 32 lowercase hex
	// characters followed by ".access".
	ErrClientIDMalformed = errors.New(`client id must be 32 lowercase hex characters followed by ".access"`)
)

// Errors returned by ValidateName.
var (
	// ErrNameEmpty means a name is the empty string.
	ErrNameEmpty = errors.New("name is empty")
	// ErrNameTooLong means a name has more than MaxNameLen characters.
	ErrNameTooLong = errors.New("name is longer than 255 characters")
	// ErrNameNotPrintable means a name is not valid UTF-8 or holds a
	// character that is not printable (a control character, a tab, a line
	// break, a non-ASCII space...).
	ErrNameNotPrintable = errors.New("name must be printable UTF-8 text")
	// ErrNameSpace means a name starts or ends with a space, which would make
	// two names that look the same differ.
	ErrNameSpace = errors.New("name must not start or end with a space")
)

// MaxNameLen is the maximum length of a token name, in characters (runes).
const MaxNameLen = 255

// Precomputed reasons for CheckSecret, so that the common rejections do not
// allocate either.
var (
	errSecretEmpty    = fmt.Errorf("%w: it is empty", ErrSecretMalformed)
	errSecretTooLong  = fmt.Errorf("%w: length is over %d characters", ErrSecretMalformed, MaxSecretLen)
	errSecretAlphabet = fmt.Errorf("%w: it holds a character outside [0-9A-Za-z] after the prefix", ErrSecretMalformed)
	errSecretChecksum = fmt.Errorf("%w: checksum does not match (mistyped, truncated or altered)", ErrSecretMalformed)
	errSecretHex      = fmt.Errorf("%w: it is a legacy 64-hex secret, which is not accepted here", ErrSecretMalformed)
)

// NewSecret returns a new secret: prefix, then SecretRandomLen base62
// characters from crypto/rand (256 bits), then the SecretChecksumLen-character
// base62 CRC32 checksum of everything before it. See the package doc for the
// exact format.
func NewSecret(prefix string) (string, error) {
	if !validPrefix(prefix) {
		return "", ErrPrefixInvalid
	}
	b := make([]byte, 0, len(prefix)+SecretBodyLen)
	b = append(b, prefix...)
	var err error
	if b, err = appendRandomBase62(b, SecretRandomLen, rand.Reader); err != nil {
		return "", err
	}
	b = appendChecksum(b, crc32IEEE(string(b)))
	return string(b), nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// appendRandomBase62 appends n uniformly random base62 characters read from r.
// It uses rejection sampling: a byte is used only if it is below 248 (= 4*62),
// so that byte%62 is uniform; 97% of bytes are kept.
func appendRandomBase62(dst []byte, n int, r io.Reader) ([]byte, error) {
	var buf [64]byte
	for n > 0 {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
		for _, c := range buf {
			if c >= 248 {
				continue
			}
			dst = append(dst, base62[c%62])
			if n--; n == 0 {
				break
			}
		}
	}
	clear(buf[:])
	return dst, nil
}

// appendChecksum appends v as SecretChecksumLen base62 digits, most
// significant first, zero-padded.
func appendChecksum(dst []byte, v uint32) []byte {
	var d [SecretChecksumLen]byte
	x := uint64(v)
	for i := SecretChecksumLen - 1; i >= 0; i-- {
		d[i] = base62[x%62]
		x /= 62
	}
	return append(dst, d[:]...)
}

// crc32IEEE is crc32.ChecksumIEEE for a string, without converting it to a
// []byte (which would allocate for a secret-sized string).
func crc32IEEE(s string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = tab[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// base62Val maps a byte to its base62 digit value plus one; 0 means the
// byte is not in the alphabet.
var base62Val = func() (t [256]uint8) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = uint8(i + 1)
	}
	return t
}()

// base62Digit returns c's value, or -1 if c is not in the alphabet.
func base62Digit(c byte) int { return int(base62Val[c]) - 1 }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckSecret reports whether s is a well-formed secret for prefix: prefix
// followed by SecretBodyLen base62 characters whose last SecretChecksumLen
// are the checksum of the rest. With legacyHex, a Cloudflare-style secret of
// 64 hex characters (either case) is accepted too.
//
// It runs before any lookup, so a mistyped secret is told apart from a wrong
// one and costs no hashing. The error wraps ErrSecretMalformed and says what
// is wrong, never what the secret is. It does not allocate on success (nor
// for most rejections).
func CheckSecret(s, prefix string, legacyHex bool) error {
	switch {
	case s == "":
		return errSecretEmpty
	case len(s) > MaxSecretLen:
		return errSecretTooLong
	case len(s) == LegacySecretLen && isHex(s):
		if legacyHex {
			return nil
		}
		return errSecretHex
	}
	if !strings.HasPrefix(s, prefix) {
		return prefixError(s, prefix)
	}
	body := s[len(prefix):]
	if len(body) != SecretBodyLen {
		return fmt.Errorf("%w: length is %d characters, want %d", ErrSecretMalformed, len(s), len(prefix)+SecretBodyLen)
	}
	for i := 0; i < SecretRandomLen; i++ {
		if base62Val[body[i]] == 0 {
			return errSecretAlphabet
		}
	}
	var sum uint64
	for i := SecretRandomLen; i < SecretBodyLen; i++ {
		v := base62Val[body[i]]
		if v == 0 {
			return errSecretAlphabet
		}
		sum = sum*62 + uint64(v-1)
	}
	if sum != uint64(crc32IEEE(s[:len(prefix)+SecretRandomLen])) {
		return errSecretChecksum
	}
	return nil
}

// prefixError explains a prefix mismatch, naming the other known prefix when
// s carries it (an admin key pasted as a client secret, or the reverse).
func prefixError(s, prefix string) error {
	for _, p := range [...]struct{ prefix, what string }{
		{SecretPrefix, "a service token secret"},
		{AdminKeyPrefix, "an admin key"},
	} {
		if p.prefix != prefix && strings.HasPrefix(s, p.prefix) {
			return fmt.Errorf("%w: it starts with %q (%s), want %q", ErrSecretMalformed, p.prefix, p.what, prefix)
		}
	}
	return fmt.Errorf("%w: it does not start with %q", ErrSecretMalformed, prefix)
}

// digestDomain separates secret digests from any other SHA-256 use.
const digestDomain = "gatehouse.secret.v1\x00"

// Digest returns SHA-256("gatehouse.secret.v1\x00" + s), the only form in
// which a secret is stored. A plain (fast) hash is right here: secrets are
// 256 random bits, so there is nothing to brute-force, and Check stays cheap.
// It does not allocate for s up to MaxSecretLen bytes.
func Digest(s string) [32]byte {
	if len(s) > MaxSecretLen {
		h := sha256.New()
		io.WriteString(h, digestDomain)
		io.WriteString(h, s)
		var out [32]byte
		h.Sum(out[:0])
		return out
	}
	var buf [len(digestDomain) + MaxSecretLen]byte
	n := copy(buf[:], digestDomain)
	n += copy(buf[n:], s)
	sum := sha256.Sum256(buf[:n])
	clear(buf[:n]) // do not leave the secret on the stack
	return sum
}

// DigestEqual compares two digests in constant time. It is false if their
// lengths differ (a missing digest never matches).
func DigestEqual(a, b []byte) bool {
	return len(a) != 0 && subtle.ConstantTimeCompare(a, b) == 1
}

// clientIDSuffix ends every client id, as in Cloudflare Access.
const clientIDSuffix = ".access"

// NewClientID returns a new client id: 32 lowercase hex characters from
// crypto/rand followed by ".access", like Cloudflare's.
func NewClientID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]) + clientIDSuffix, nil
}

// ValidClientID reports whether s is 32 lowercase hex characters followed by
// ".access".
func ValidClientID(s string) bool {
	return len(s) == 32+len(clientIDSuffix) &&
		strings.HasSuffix(s, clientIDSuffix) &&
		isLowerHex(s[:32])
}

// NewID returns a new time-ordered (version 7) UUID in canonical lowercase
// form: 48 bits of Unix milliseconds, then 74 random bits. Ids written one
// after another land next to each other in the store's B+tree, so a commit
// of 32 new tokens rewrites a few pages at the end of the tokens bucket
// instead of 32 random leaves and their parents: with a million tokens,
// creation through the admin API went from ~2,400 to ~3,300 tokens/s
// (docs/performance.md, change 10). The creation time it reveals is the
// token's created_at, which the admin API shows anyway.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidID reports whether s is a UUID in canonical lowercase form
// (8-4-4-4-12 hex digits). Any version is accepted.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ValidateName checks a token name: 1–255 characters of valid UTF-8, every
// one printable (unicode.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space), not starting or ending with a space.
func ValidateName(name string) error {
	if name == "" {
		return ErrNameEmpty
	}
	if len(name) > utf8.UTFMax*MaxNameLen {
		return fmt.Errorf("%w: it has %d bytes", ErrNameTooLong, len(name))
	}
	n := 0
	for i, r := range name {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size == 1 {
				return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrNameNotPrintable, i)
			}
		}
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: character %d is %U, which is not printable", ErrNameNotPrintable, n+1, r)
		}
		n++
	}
	if n > MaxNameLen {
		return fmt.Errorf("%w: it has %d", ErrNameTooLong, n)
	}
	if name[0] == ' ' || name[len(name)-1] == ' ' {
		return ErrNameSpace
	}
	return nil
}
