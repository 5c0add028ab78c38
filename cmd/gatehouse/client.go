package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// Connection defaults.
const (
	defaultServer       = "127.0.0.1:9002"
	defaultAdminKeyFile = "./data/admin.key"
	defaultTimeout      = 10 * time.Second
	envServer           = "GATEHOUSE_SERVER"
	envAdminKey         = "GATEHOUSE_ADMIN_KEY"
	// maxRecvMsgSize lets a list of many tokens through (gRPC's default is 4 MiB).
	maxRecvMsgSize = 256 << 20
)

// errPlaintext refuses to put the admin key on a network in clear.
var errPlaintext = errors.New("refusing to send the admin key over plaintext to a non-loopback address; use --tls")

// globals are the connection and output flags of every client command.
type globals struct {
	server       string
	adminKeyFile string
	tls          bool
	caFile       string
	timeout      time.Duration
	output       string
}

// register adds the global flags to fs. timeout, when not zero, replaces the
// default --timeout.
func (g *globals) register(fs *flag.FlagSet, timeout time.Duration) {
	if timeout == 0 {
		timeout = defaultTimeout
	}
	fs.StringVar(&g.server, "server", defaultServer, "`address` (HOST:PORT) of the admin API; overrides $"+envServer)
	fs.StringVar(&g.adminKeyFile, "admin-key-file", "", "read the admin key from `file` (default: $"+envAdminKey+", else "+defaultAdminKeyFile+")")
	fs.BoolVar(&g.tls, "tls", false, "connect with TLS, verifying the server's certificate (required for a non-loopback server)")
	fs.StringVar(&g.caFile, "ca-file", "", "verify the server's certificate with the CA certificates (PEM) in `file` instead of the system's; implies --tls")
	fs.DurationVar(&g.timeout, "timeout", timeout, "give up on a call to the admin API after `duration` (0: wait as long as it takes)")
	fs.StringVar(&g.output, "o", "table", "output `format`: table or json")
}

// finish applies the environment and checks the global flags once parsed.
func (g *globals) finish(fs *flag.FlagSet, getenv func(string) string) error {
	if !isSet(fs, "server") {
		if env := getenv(envServer); env != "" {
			g.server = env
		}
	}
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("-o %q: want table or json", g.output)
	}
	if g.timeout < 0 {
		return fmt.Errorf("--timeout %s: must not be negative", g.timeout)
	}
	if g.caFile != "" {
		g.tls = true
	}
	if !strings.HasPrefix(g.server, "unix:") {
		host, port, err := net.SplitHostPort(g.server)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("--server %q: want HOST:PORT, e.g. %s", g.server, defaultServer)
		}
	}
	return nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// loopback reports whether target is on this machine, where plaintext gRPC
// does not expose the admin key to a network.
func loopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// session is a running client command: its flags, output and (once asked
// for) its admin API connection.
type session struct {
	*cli
	g         *globals
	out       *printer
	key       string // the admin key, once loaded; never printed
	keySource string // where the key came from, for error messages
	conn      *grpc.ClientConn
	client    adminv1.AdminServiceClient
}

// admin returns the admin API client, connecting on first use.
func (s *session) admin() (adminv1.AdminServiceClient, error) {
	if s.client != nil {
		return s.client, nil
	}
	if !s.g.tls && !loopback(s.g.server) {
		return nil, errPlaintext
	}
	key, source, err := loadAdminKey(s.g.adminKeyFile, s.getenv)
	if err != nil {
		return nil, err
	}
	s.key, s.keySource = key, source
	transport := insecure.NewCredentials()
	if s.g.tls {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.g.caFile != "" {
			pem, err := os.ReadFile(s.g.caFile)
			if err != nil {
				return nil, fmt.Errorf("--ca-file: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", s.g.caFile)
			}
		}
		transport = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(s.g.server,
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(bearer(key)),
		grpc.WithUnaryInterceptor(timeoutInterceptor(s.g.timeout)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
		grpc.WithUserAgent("gatehouse-cli/"+buildVersion()),
	)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", s.g.server, err)
	}
	s.conn, s.client = conn, adminv1.NewAdminServiceClient(conn)
	return s.client, nil
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

// loadAdminKey finds the admin key: --admin-key-file when given (an explicit
// flag beats the environment), else $GATEHOUSE_ADMIN_KEY, else
// ./data/admin.key. It returns the key and a description of where it came
// from (never the key itself).
func loadAdminKey(file string, getenv func(string) string) (key, source string, err error) {
	switch {
	case file != "":
		source = "--admin-key-file " + file
	case getenv(envAdminKey) != "":
		key, source = strings.TrimSpace(getenv(envAdminKey)), "$"+envAdminKey
	default:
		file, source = defaultAdminKeyFile, defaultAdminKeyFile
	}
	if key == "" && file != "" {
		b, err := os.ReadFile(file)
		switch {
		case errors.Is(err, os.ErrNotExist) && source == defaultAdminKeyFile:
			return "", "", fmt.Errorf("no admin key: $%s is not set and %s does not exist; set %s or pass --admin-key-file", envAdminKey, defaultAdminKeyFile, envAdminKey)
		case err != nil:
			return "", "", fmt.Errorf("reading the admin key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return "", "", fmt.Errorf("the admin key from %s is empty", source)
	}
	for _, r := range key {
		if r <= ' ' || r > '~' {
			return "", "", fmt.Errorf("the admin key from %s contains white space or characters that cannot go in a header", source)
		}
	}
	return key, source, nil
}

// bearer sends the admin key as "authorization: Bearer <key>" metadata.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that plaintext works on loopback;
// session.admin refuses plaintext to anything else before dialling.
func (bearer) RequireTransportSecurity() bool { return false }

// String and GoString keep the key out of any accidental %v.
func (bearer) String() string   { return "[admin key]" }
func (bearer) GoString() string { return "[admin key]" }

// timeoutInterceptor bounds each unary call by d (0: no bound).
func timeoutInterceptor(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// hintError adds advice to a server error, keeping its gRPC status intact.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + "; " + e.hint }
func (e *hintError) Unwrap() error { return e.err }

// describe turns an error into the message after "gatehouse: ".
func describe(err error, s *session) string {
	var h *hintError
	if errors.As(err, &h) {
		return describe(h.err, s) + "; " + h.hint
	}
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	server, timeout := "", time.Duration(0)
	if s != nil {
		server, timeout = s.g.server, s.g.timeout
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if s != nil && s.g.tls && tlsFailure(msg) {
			return fmt.Sprintf("TLS connection to the admin API at %s failed: %s", server, msg)
		}
		if s != nil && !s.g.tls && (strings.Contains(msg, "server preface") || strings.Contains(msg, "http2")) {
			return fmt.Sprintf("the server at %s does not speak plaintext gRPC (%s); if it expects TLS, use --tls", server, msg)
		}
		if transportFailure(msg) {
			return fmt.Sprintf("cannot reach the admin API at %s: is \"gatehouse serve\" running?", server)
		}
		// Otherwise the server itself answered Unavailable: say why.
	case codes.DeadlineExceeded:
		return fmt.Sprintf("the admin API at %s did not answer within %s (DeadlineExceeded); see --timeout", server, timeout)
	case codes.Canceled:
		return "interrupted (Canceled)"
	case codes.Unauthenticated:
		if s != nil && s.keySource != "" {
			return fmt.Sprintf("%s (Unauthenticated); check the admin key from %s", msg, s.keySource)
		}
	}
	return fmt.Sprintf("%s (%s)", msg, st.Code())
}

// transportFailure reports whether an Unavailable status comes from the
// client's transport (no connection) rather than from the server.
func transportFailure(msg string) bool {
	for _, s := range []string{"connection error", "name resolver", "transport", "error reading from server", "connection closed", "zero addresses", "dial"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func tlsFailure(msg string) bool {
	for _, s := range []string{"tls", "x509", "certificate", "handshake"} {
		if strings.Contains(strings.ToLower(msg), s) {
			return true
		}
	}
	return false
}
