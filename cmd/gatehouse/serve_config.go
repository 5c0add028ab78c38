package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/tokens"
)

// serveConfig holds the process settings of `gatehouse serve`. Served data
// (tokens, applications, policies, keys) lives in the store, not here.
//
// Zero values: Issuer "" means "http://" + the bound HTTP address; KeyRotation 0 turns
// scheduled signing-key rotation off; DisableInactiveAfter 0 turns the
// inactive-token sweep off; AdminKeyFile "" means <data-dir>/admin.key;
// MasterKeyFile "" means <data-dir>/master.key.
type serveConfig struct {
	DataDir   string
	AuthzAddr string
	AdminAddr string
	HTTPAddr  string
	DebugAddr string // "": off
	Issuer    string

	Unmatched      string // "deny" or "allow"
	TrustedProxies int
	LogAllowed     bool
	LogLevel       string
	LogFormat      string

	SigningAlg           string
	KeyRotation          time.Duration
	DisableInactiveAfter time.Duration
	LastSeenFlush        time.Duration
	DrainDelay           time.Duration
	ShutdownGrace        time.Duration

	AdminKeyFile  string
	MasterKeyFile string
	AdminTLSCert  string
	AdminTLSKey   string
	AdminClientCA string
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		DataDir:       "./data",
		AuthzAddr:     "127.0.0.1:9001",
		AdminAddr:     "127.0.0.1:9002",
		HTTPAddr:      "127.0.0.1:9003",
		Unmatched:     "deny",
		LogAllowed:    true,
		LogLevel:      "info",
		LogFormat:     "json",
		SigningAlg:    string(tokens.RS256),
		KeyRotation:   tokens.DefaultKeyRotation,
		LastSeenFlush: time.Minute,
		ShutdownGrace: 15 * time.Second,
	}
}

const serveUsage = `Usage: gatehouse serve [flags]

Runs the gatehouse server: the Envoy ext_authz v3 gRPC service (--authz-addr),
the admin gRPC API (--admin-addr) and the HTTP listener with the JWKS, health
and metrics endpoints (--http-addr). All state lives in one bbolt file,
<data-dir>/gatehouse.db. On first start gatehouse creates the data dir, a
master key that seals the JWT signing keys (<data-dir>/master.key, 0600), a
signing key, and an admin key written to <data-dir>/admin.key (0600). A second
server on the same data dir fails at once: the file is locked.

SIGTERM or SIGINT first turns /readyz to 503 and gRPC health to NOT_SERVING,
keeps answering for --drain-delay (so Envoy's health checks and Kubernetes
move traffic away), then stops accepting connections, waits up to
--shutdown-grace for in-flight requests, flushes last-seen times and closes
the store; a second signal exits at once.

Flags:
`

func (c *serveConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the bbolt store, master key and bootstrap admin key")
	fs.StringVar(&c.AuthzAddr, "authz-addr", c.AuthzAddr, "ext_authz v3 gRPC listen address (Envoy's cluster points here)")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "admin gRPC listen address")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "loopback address for Go profiles at /debug/pprof/ (default off)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listen address: /.well-known/jwks.json, /cdn-cgi/access/certs, /healthz, /readyz, /metrics")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, `"iss" of session JWTs (default "http://" + the bound --http-addr, with this host's name for an unspecified address such as 0.0.0.0)`)
	fs.StringVar(&c.Unmatched, "unmatched", c.Unmatched, "decision for a request that matches no application: deny or allow")
	fs.IntVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "x-forwarded-for entries, counted from the right, appended by proxies you trust, Envoy's own included; the N-th from the right is the client address for ip rules (0: use the TCP peer address; Envoy with use_remote_address behind one load balancer: 2)")
	fs.BoolVar(&c.LogAllowed, "log-allowed", c.LogAllowed, "log allowed decisions too (denies are always logged)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	fs.StringVar(&c.SigningAlg, "signing-alg", c.SigningAlg, "algorithm of new session-JWT signing keys: RS256, ES256 or EdDSA")
	fs.DurationVar(&c.KeyRotation, "key-rotation", c.KeyRotation, `rotate the signing key this often (0: only by "gatehouse keys rotate")`)
	fs.DurationVar(&c.DisableInactiveAfter, "disable-inactive-after", c.DisableInactiveAfter, "disable tokens not seen for this long, 720h to 8760h (0: off)")
	fs.DurationVar(&c.LastSeenFlush, "last-seen-flush", c.LastSeenFlush, "how often last_seen_at times are written to the store (a kill -9 loses at most this much of them; a graceful stop writes them)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on SIGTERM, keep serving this long while reporting not ready, before closing the listeners (e.g. 5s behind a load balancer or Kubernetes Service)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long a shutdown waits for in-flight requests")
	fs.StringVar(&c.AdminKeyFile, "admin-key-file", c.AdminKeyFile, "bootstrap admin key file: read if it exists and the store has no admin key, else written there (default <data-dir>/admin.key)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", c.MasterKeyFile, "file with the key that seals signing keys in the store (default <data-dir>/master.key; created if missing)")
	fs.StringVar(&c.AdminTLSCert, "admin-tls-cert", c.AdminTLSCert, "PEM certificate for TLS on the admin listener")
	fs.StringVar(&c.AdminTLSKey, "admin-tls-key", c.AdminTLSKey, "PEM private key for --admin-tls-cert")
	fs.StringVar(&c.AdminClientCA, "admin-client-ca", c.AdminClientCA, "PEM CA bundle: require admin clients to present a certificate it signed (mTLS)")
	return fs
}

// validate checks the settings and fills the derived defaults.
func (c *serveConfig) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	for _, a := range []struct{ name, addr string }{{"--authz-addr", c.AuthzAddr}, {"--admin-addr", c.AdminAddr}, {"--http-addr", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", a.name, a.addr))
		}
	}
	if err := checkDebugAddr(c.DebugAddr); err != nil {
		errs = append(errs, err)
	}
	if c.AuthzAddr == c.AdminAddr && !strings.HasSuffix(c.AuthzAddr, ":0") {
		errs = append(errs, errors.New("--authz-addr and --admin-addr must differ: the ext_authz port never serves admin operations"))
	}
	switch c.Unmatched {
	case "deny", "allow":
	default:
		errs = append(errs, fmt.Errorf("--unmatched: %q is not deny or allow", c.Unmatched))
	}
	if c.TrustedProxies < 0 || c.TrustedProxies > 10 {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %d is not between 0 and 10", c.TrustedProxies))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("--log-format: %q is not json or text", c.LogFormat))
	}
	switch tokens.Alg(c.SigningAlg) {
	case tokens.RS256, tokens.ES256, tokens.EdDSA:
	default:
		errs = append(errs, fmt.Errorf("--signing-alg: %q is not RS256, ES256 or EdDSA", c.SigningAlg))
	}
	if c.KeyRotation < 0 || (c.KeyRotation > 0 && c.KeyRotation < time.Hour) {
		errs = append(errs, fmt.Errorf("--key-rotation: %v must be 0 (off) or at least 1h", c.KeyRotation))
	}
	if c.DisableInactiveAfter != 0 && (c.DisableInactiveAfter < 720*time.Hour || c.DisableInactiveAfter > 8760*time.Hour) {
		errs = append(errs, fmt.Errorf("--disable-inactive-after: %v is not 0 (off) or between 720h and 8760h", c.DisableInactiveAfter))
	}
	if c.LastSeenFlush < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--last-seen-flush: %v is shorter than 100ms", c.LastSeenFlush))
	}
	if c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--drain-delay: %v is not between 0 and 5m", c.DrainDelay))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace: %v is negative", c.ShutdownGrace))
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		errs = append(errs, errors.New("--admin-tls-cert and --admin-tls-key go together"))
	}
	if c.AdminClientCA != "" && c.AdminTLSCert == "" {
		errs = append(errs, errors.New("--admin-client-ca needs --admin-tls-cert and --admin-tls-key"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.AdminKeyFile == "" {
		c.AdminKeyFile = filepath.Join(c.DataDir, "admin.key")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	return nil
}
