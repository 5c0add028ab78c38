package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// The debug listener (--debug-addr, off by default) serves Go's runtime
// profiles, net/http/pprof, for profiling a live server: "go tool pprof
// http://127.0.0.1:9004/debug/pprof/profile?seconds=10". Profiles show
// memory, goroutine stacks and timings, never request data in clear, but
// they are not for the network: the address must be loopback (reach it
// with kubectl port-forward or ssh), and it shares no listener with
// ext_authz, admin or the public HTTP endpoints.

// checkDebugAddr accepts "" (off) or a loopback host:port.
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr: %q is not host:port", addr)
	}
	if !loopback(addr) {
		return fmt.Errorf("--debug-addr: %q is not a loopback address: profiles are for this machine only (reach them with kubectl port-forward or ssh)", host)
	}
	return nil
}

func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// serveDebug starts the debug server on ln, if there is one.
func (s *server) serveDebug(ln net.Listener) {
	if ln == nil {
		return
	}
	s.debugSrv = &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a CPU profile or trace streams for as long as
		// its ?seconds= asks.
	}
	go func() {
		if err := s.debugSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("debug listener stopped", "err", err)
		}
	}()
	s.log.Info("serving Go profiles (net/http/pprof)", "addr", ln.Addr().String())
}
