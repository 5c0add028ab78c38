package policy

import "errors"

// Errors returned by NormalizePath and ParseDomain.
var (
	// ErrPathAmbiguous means a request path could name different resources
	// on different backends (an encoded slash or backslash, a NUL, broken
	// percent-encoding, a path parameter on a dot segment, ...). The
	// request cannot be routed safely and must be refused rather than
	// matched against a guess.
	ErrPathAmbiguous = errors.New("ambiguous request path")
	// ErrInvalidDomain means an application domain is not
	// "host[/path-prefix]" with a valid host name, wildcard or IP literal.
	ErrInvalidDomain = errors.New("invalid domain")
)

// Errors returned by ValidateApplication, ValidatePolicy and ValidRule. The
// wrapped message names the offending field, e.g.
// `invalid application: domains[1]: invalid domain "a.*.com": ...`.
var (
	// ErrInvalidApplication means an Application record is malformed.
	ErrInvalidApplication = errors.New("invalid application")
	// ErrInvalidPolicy means a Policy record is malformed.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrInvalidRule means a Rule is malformed (no selector, several
	// selectors, a bad CIDR, ...).
	ErrInvalidRule = errors.New("invalid rule")
)

// Errors returned by Compile, in addition to the validation errors above.
var (
	// ErrConflict means two records cannot coexist: two applications with
	// the same id or name, two claiming the same host and path prefix, or
	// two policies with the same id.
	ErrConflict = errors.New("conflicting records")
	// ErrUnknownApplication means a policy's application_id names no
	// application given to Compile.
	ErrUnknownApplication = errors.New("policy names an unknown application")
)
