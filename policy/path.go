package policy

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// NormalizePath turns a request target (Envoy's :path, query included) into
// the form application path prefixes are compared against:
//
//   - the query ("?...") and fragment ("#...") are cut off first, so an
//     encoded "%3F" or "%23" is part of the path, never a query;
//   - percent-escapes are decoded, except %25 ('%'), %3F ('?') and %23
//     ('#'), which are kept (with upper-case hex) so that the result
//     normalises to itself;
//   - empty segments are merged ("//a" is "/a") and "." and ".." segments
//     are resolved, never climbing above the root ("/a/../../b" is "/b");
//     a trailing slash is kept ("/a/b/.." is "/a/").
//
// It returns ErrPathAmbiguous, wrapped with the reason, for input that
// backends disagree about: %2F (encoded '/'), %5C or a raw '\', a NUL (raw
// or %00), invalid or truncated percent-encoding, bytes that are not UTF-8
// after decoding (overlong forms such as %C0%AE for '.'), a path parameter
// on an empty or dot segment ("/..;/admin", which servlet containers
// resolve as "/../admin"), and a target that does not start with '/' ("*",
// "http://host/"). Other ';' parameters stay literal.
//
// Paths are case-sensitive. A path that is already normal is returned as
// is, without allocating.
func NormalizePath(p string) (string, error) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty path", ErrPathAmbiguous)
	case p == "*":
		return "", fmt.Errorf("%w: asterisk-form request target \"*\"", ErrPathAmbiguous)
	case p[0] != '/':
		return "", fmt.Errorf("%w: does not start with \"/\"", ErrPathAmbiguous)
	}
	if isNormalPath(p) {
		return p, nil
	}
	return normalizePathSlow(p)
}

// isNormalPath reports whether NormalizePath would return p unchanged. p
// starts with '/'. It must agree exactly with normalizePathSlow (the fuzz
// test checks that).
func isNormalPath(p string) bool {
	nonASCII := false
	seg := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			s := p[seg:i]
			if (s == "" && i < len(p)) || s == "." || s == ".." {
				return false
			}
			seg = i + 1
			continue
		}
		switch c := p[i]; {
		case c == 0 || c == '\\':
			return false
		case c == '%':
			if !isKeptEscape(p[i:]) {
				return false
			}
			i += 2
		case c == ';':
			if s := p[seg:i]; s == "" || s == "." || s == ".." {
				return false
			}
		case c >= utf8.RuneSelf:
			nonASCII = true
		}
	}
	return !nonASCII || utf8.ValidString(p)
}

// isKeptEscape reports whether s starts with one of the escapes that
// NormalizePath keeps in canonical form.
func isKeptEscape(s string) bool {
	return len(s) >= 3 && (s[:3] == "%25" || s[:3] == "%3F" || s[:3] == "%23")
}

func normalizePathSlow(p string) (string, error) {
	// Decode into a stack buffer when the path is short (the common case);
	// only the final string then allocates.
	var arr [256]byte
	buf := arr[:0]
	if len(p) > len(arr) {
		buf = make([]byte, 0, len(p))
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case 0:
			return "", fmt.Errorf("%w: NUL byte at offset %d", ErrPathAmbiguous, i)
		case '\\':
			return "", fmt.Errorf("%w: backslash at offset %d", ErrPathAmbiguous, i)
		case '%':
			if i+2 >= len(p) {
				return "", fmt.Errorf("%w: truncated percent-encoding at offset %d", ErrPathAmbiguous, i)
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: invalid percent-encoding %q at offset %d", ErrPathAmbiguous, p[i:i+3], i)
			}
			switch v := hi<<4 | lo; v {
			case 0:
				return "", fmt.Errorf("%w: encoded NUL (%%00) at offset %d", ErrPathAmbiguous, i)
			case '/':
				return "", fmt.Errorf("%w: encoded slash (%%2F) at offset %d", ErrPathAmbiguous, i)
			case '\\':
				return "", fmt.Errorf("%w: encoded backslash (%%5C) at offset %d", ErrPathAmbiguous, i)
			case '%', '?', '#':
				buf = append(buf, '%', upperHex[v>>4], upperHex[v&0xf])
			default:
				buf = append(buf, v)
			}
			i += 2
		default:
			buf = append(buf, c)
		}
	}
	if !utf8.Valid(buf) {
		return "", fmt.Errorf("%w: not valid UTF-8 after percent-decoding", ErrPathAmbiguous)
	}

	// Resolve segments in place: the output never gets ahead of the input,
	// so writing at w never overwrites a segment not yet read. The output
	// is "/seg1/seg2" plus a trailing slash when the last input segment
	// was empty, "." or "..".
	n := len(buf)
	w := 0
	trailing := false
	for r := 1; r <= n; {
		end := r + bytes.IndexByte(buf[r:], '/')
		if end < r {
			end = n
		}
		seg := buf[r:end]
		last := end == n
		if j := bytes.IndexByte(seg, ';'); j >= 0 && dotSegment(seg[:j]) >= 0 {
			return "", fmt.Errorf("%w: path parameter (;) on an empty or dot segment", ErrPathAmbiguous)
		}
		switch dotSegment(seg) {
		case 0, 1:
			trailing = last
		case 2:
			if j := bytes.LastIndexByte(buf[:w], '/'); j >= 0 {
				w = j
			}
			trailing = last
		default:
			buf[w] = '/'
			w++
			w += copy(buf[w:], seg)
			trailing = false
		}
		r = end + 1
	}
	out := buf[:w]
	if w == 0 || trailing {
		out = append(out, '/')
	}
	return string(out), nil
}

// dotSegment returns 0 for an empty segment, 1 for ".", 2 for ".." and -1
// for anything else.
func dotSegment(s []byte) int {
	switch {
	case len(s) == 0:
		return 0
	case len(s) == 1 && s[0] == '.':
		return 1
	case len(s) == 2 && s[0] == '.' && s[1] == '.':
		return 2
	}
	return -1
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
