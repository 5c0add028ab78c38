// Command whoami is the demo origin behind gatehouse: a tiny HTTP server that accepts a request only
// if its cf-access-jwt-assertion header holds a session JWT that verifies against gatehouse's
// JWKS, and answers with the verified claims and what the request looked like on arrival.
//
//	whoami --aud <AUD tag of the application> [--issuer http://127.0.0.1:9003]
//
// It is also the worked example of what an origin must do itself - see verify.go: gatehouse (like
// Cloudflare Access) vouches for a request by signing a JWT, and only an origin that checks the
// signature, audience and expiry is protected when something bypasses the proxy.
//
// The answer, 200:
//
//	{"claims": {...}, "request": {"method", "host", "path", "query", "headers": {...}, "client_secret_seen": false}}
//
// headers holds every request header except credentials (cookie, authorization,
// cf-access-jwt-assertion, cf-access-client-secret); client_secret_seen reports whether a
// cf-access-client-secret header arrived at all - gatehouse strips it, so it should be false.
// A missing or invalid token gets 401 {"error":"unauthorized","reason":"..."}. GET /healthz
// answers 200 without a token.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// hiddenHeaders are credentials: never echoed back, whoever asks.
var hiddenHeaders = map[string]bool{
	"cookie":                  true,
	"authorization":           true,
	"proxy-authorization":     true,
	"cf-access-jwt-assertion": true,
	"cf-access-client-secret": true,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "whoami:", err)
		}
		os.Exit(2)
	}
}

type config struct {
	addr      string
	jwksURL   string
	issuer    string
	audiences []string
	anyAud    bool
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var auds listFlag
	fs := flag.NewFlagSet("whoami", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen `address`")
	fs.StringVar(&c.jwksURL, "jwks-url", "http://127.0.0.1:9003/.well-known/jwks.json", "`URL` of gatehouse's JWKS")
	fs.Var(&auds, "aud", "accepted `audience` (the application's AUD tag); repeatable or comma-separated")
	fs.StringVar(&c.issuer, "issuer", "", "required iss claim (gatehouse's --issuer); unchecked when empty")
	fs.BoolVar(&c.anyAud, "insecure-any-aud", false, "accept any audience: a token minted for another application then works here too")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.audiences = auds
	switch {
	case len(c.audiences) == 0 && !c.anyAud:
		return nil, errors.New("--aud is required (the AUD tag of the application this origin serves), or pass --insecure-any-aud")
	case len(c.audiences) > 0 && c.anyAud:
		return nil, errors.New("--aud and --insecure-any-aud exclude each other")
	}
	if u, err := url.Parse(c.jwksURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--jwks-url: %q is not an http(s) URL", c.jwksURL)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.anyAud {
		log.Warn("--insecure-any-aud: tokens for any application are accepted")
	}
	keys := NewKeySet(cfg.jwksURL, time.Now)
	if err := keys.Refresh(ctx); err != nil {
		// Not fatal: gatehouse may start after us. The first request retries.
		log.Warn("JWKS not loaded yet", "url", cfg.jwksURL, "err", err)
	}
	v := &Verifier{Keys: keys, Audiences: cfg.audiences, Issuer: cfg.issuer, Now: time.Now}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(v, log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("listening", "addr", ln.Addr().String(), "jwks", cfg.jwksURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// response is the 200 body.
type response struct {
	Claims  map[string]any `json:"claims"`
	Request requestView    `json:"request"`
}

type requestView struct {
	Method           string            `json:"method"`
	Host             string            `json:"host"`
	Path             string            `json:"path"`
	Query            string            `json:"query,omitempty"`
	Headers          map[string]string `json:"headers"`
	ClientSecretSeen bool              `json:"client_secret_seen"`
}

func newHandler(v *Verifier, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		token, err := TokenFrom(r.Header)
		var claims map[string]any
		if err == nil {
			claims, err = v.Verify(r.Context(), token)
		}
		if err != nil {
			reason := Reason(err)
			log.Info("unauthorized", "method", r.Method, "path", r.URL.Path, "reason", reason)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "reason": reason})
			return
		}
		writeJSON(w, http.StatusOK, response{Claims: claims, Request: describe(r)})
	})
	return mux
}

func describe(r *http.Request) requestView {
	rv := requestView{
		Method:  r.Method,
		Host:    r.Host,
		Path:    r.URL.Path,
		Query:   r.URL.RawQuery,
		Headers: make(map[string]string, len(r.Header)),
	}
	for name, vals := range r.Header {
		lower := strings.ToLower(name)
		if lower == "cf-access-client-secret" {
			rv.ClientSecretSeen = true
		}
		if !hiddenHeaders[lower] {
			rv.Headers[lower] = strings.Join(vals, ", ")
		}
	}
	return rv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
