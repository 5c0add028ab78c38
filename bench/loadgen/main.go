// Command loadgen sends Envoy-shaped ext_authz v3 CheckRequests to a server
// at a fixed concurrency for a fixed time and reports throughput, latency
// percentiles, RPC errors and unexpected decisions, as a table on stdout and
// optionally as JSON (--json).
//
// All requests are built before the run (--requests distinct messages,
// cycled through with a per-worker random start so caches see many client
// ids). Workers are spread round-robin over --conns gRPC connections; each
// worker issues one Check at a time. A warmup period (--warmup) runs first
// and is not measured; a check counts when it starts inside the measured
// window and ends before the window closes.
//
// With --server-pid the server's CPU time (user+system from
// /proc/<pid>/stat) is sampled at both ends of the window and divided by
// the checks, which is a better cost measure than throughput on a machine
// where the load generator and the server share few cores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
	"github.com/gatehouse-dev/gatehouse/bench/internal/proc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/result"
)

type config struct {
	addr        string
	conns       int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	kase        checkreq.Case
	credsFile   string
	target      checkreq.Target
	requests    int
	jsonFile    string
	label       string
	serverPID   int
	quiet       bool
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var kase string
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9001", "ext_authz gRPC address (loopback)")
	fs.IntVar(&c.conns, "conns", 4, "gRPC client connections; workers are assigned to them round-robin")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent workers, each with one Check in flight")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before the window")
	fs.StringVar(&kase, "case", "token", "token, jwt, deny or bypass")
	fs.StringVar(&c.credsFile, "creds", "", "JSON list of {client_id, client_secret, jwt} (needed by token, jwt, deny)")
	fs.StringVar(&c.target.Host, "host", "app.example.com", ":authority of the requests")
	fs.StringVar(&c.target.Path, "path", "/api/v1/items", ":path of the requests")
	fs.IntVar(&c.requests, "requests", 0, "distinct pre-built requests (0: one per credential, at least 1000)")
	fs.StringVar(&c.jsonFile, "json", "", "also write the result as JSON to this file")
	fs.StringVar(&c.label, "label", "", "label for the report (e.g. floor, gatehouse)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "server process id: report its CPU time per check (Linux /proc)")
	fs.BoolVar(&c.quiet, "quiet", false, "no table on stdout")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.kase, err = checkreq.ParseCase(kase); err != nil {
		return nil, fmt.Errorf("--case: %w", err)
	}
	switch {
	case c.conns < 1 || c.conns > 1024:
		return nil, fmt.Errorf("--conns %d: want 1..1024", c.conns)
	case c.concurrency < 1 || c.concurrency > 100000:
		return nil, fmt.Errorf("--concurrency %d: want 1..100000", c.concurrency)
	case c.duration <= 0 || c.duration > 24*time.Hour:
		return nil, fmt.Errorf("--duration %v: want >0 and ≤24h", c.duration)
	case c.warmup < 0 || c.warmup > time.Hour:
		return nil, fmt.Errorf("--warmup %v: want 0..1h", c.warmup)
	case c.requests < 0 || c.requests > 1_000_000:
		return nil, fmt.Errorf("--requests %d: want 0..1000000", c.requests)
	case c.kase != checkreq.Bypass && c.credsFile == "":
		return nil, fmt.Errorf("--creds is required for case %s", c.kase)
	}
	return c, nil
}

func run(args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	var creds []checkreq.Cred
	if cfg.credsFile != "" {
		if creds, err = checkreq.ReadCreds(cfg.credsFile); err != nil {
			return err
		}
	}
	n := cfg.requests
	if n == 0 {
		n = max(len(creds), 1000)
	}
	reqs, err := checkreq.Build(cfg.kase, creds, cfg.target, n)
	if err != nil {
		return err
	}

	conns := make([]*grpc.ClientConn, cfg.conns)
	for i := range conns {
		cc, err := grpc.NewClient(cfg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("dial %s: %w", cfg.addr, err)
		}
		defer cc.Close()
		conns[i] = cc
	}

	res, err := load(cfg, conns, reqs)
	if err != nil {
		return err
	}
	if !cfg.quiet {
		printTable(stdout, res)
	}
	if cfg.jsonFile != "" {
		if err := res.Write(cfg.jsonFile); err != nil {
			return err
		}
	}
	if res.Checks == 0 {
		return fmt.Errorf("no check completed (errors: %d, first: %s)", res.Errors, res.FirstError)
	}
	return nil
}

// worker is one closed-loop client. Its fields are written only by its own
// goroutine until the run ends.
type worker struct {
	h          *hist
	errors     int64
	unexpected int64
	firstErr   error
}

func load(cfg *config, conns []*grpc.ClientConn, reqs []*authv3.CheckRequest) (*result.Load, error) {
	clients := make([]authv3.AuthorizationClient, len(conns))
	for i, cc := range conns {
		clients[i] = authv3.NewAuthorizationClient(cc)
		// Connect before the clock starts; the warmup absorbs the rest.
		cc.Connect()
	}
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	// One deadline for the whole run bounds every call (a hung server
	// cannot hold a worker past it) without a per-call timer.
	ctx, cancel := context.WithDeadline(context.Background(), end.Add(10*time.Second))
	defer cancel()

	var cpu cpuWindow
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		cpu.sample(ctx, cfg.serverPID, measureFrom, end)
	}()

	wantAllow := cfg.kase.WantAllow()
	workers := make([]*worker, cfg.concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{h: newHist()}
		workers[i] = w
		client := clients[i%len(clients)]
		rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(start.UnixNano())))
		wg.Go(func() {
			next := rng.IntN(len(reqs))
			for {
				req := reqs[next]
				next = rng.IntN(len(reqs))
				t0 := time.Now()
				resp, err := client.Check(ctx, req)
				t1 := time.Now()
				if t1.After(end) || ctx.Err() != nil {
					return
				}
				if t0.Before(measureFrom) {
					if err != nil {
						// Nothing listening yet, or the server is failing:
						// do not spin.
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					time.Sleep(time.Millisecond)
					continue
				}
				w.h.record(t1.Sub(t0))
				if (resp.GetStatus().GetCode() == 0) != wantAllow {
					w.unexpected++
				}
			}
		})
	}
	wg.Wait()
	cancel()
	<-cpuDone

	h := newHist()
	res := &result.Load{
		Label:       cfg.label,
		Case:        string(cfg.kase),
		Addr:        cfg.addr,
		Conns:       len(conns),
		Concurrency: cfg.concurrency,
		Requests:    len(reqs),
		WarmupS:     cfg.warmup.Seconds(),
		DurationS:   cfg.duration.Seconds(),
		ServerPID:   cfg.serverPID,
		Start:       start,
	}
	for _, w := range workers {
		h.merge(w.h)
		res.Errors += w.errors
		res.Unexpected += w.unexpected
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
	}
	res.Checks = int64(h.total)
	res.Throughput = float64(h.total) / cfg.duration.Seconds()
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.MeanUs = us(h.mean())
	res.P50Us = us(h.quantile(0.50))
	res.P90Us = us(h.quantile(0.90))
	res.P99Us = us(h.quantile(0.99))
	res.MaxUs = us(time.Duration(h.max))
	if h.total > 0 {
		if cpu.serverOK {
			res.ServerCPUPerCheckUs = us(cpu.server) / float64(h.total)
			res.ServerCPUUtil = cpu.server.Seconds() / cfg.duration.Seconds()
		}
		if cpu.selfOK {
			res.LoadgenCPUPerCheckUs = us(cpu.self) / float64(h.total)
		}
	}
	if cfg.serverPID != 0 && !cpu.serverOK {
		return nil, fmt.Errorf("--server-pid %d: could not read its CPU time: %v", cfg.serverPID, cpu.err)
	}
	return res, nil
}

// cpuWindow is the CPU time the server and this process used inside the
// measured window.
type cpuWindow struct {
	server, self     time.Duration
	serverOK, selfOK bool
	err              error
}

func (c *cpuWindow) sample(ctx context.Context, pid int, from, to time.Time) {
	sleepUntil := func(t time.Time) bool {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !sleepUntil(from) {
		return
	}
	self := os.Getpid()
	s0, serr0 := proc.CPUTime(pid)
	m0, merr0 := proc.CPUTime(self)
	if !sleepUntil(to) {
		return
	}
	s1, serr1 := proc.CPUTime(pid)
	m1, merr1 := proc.CPUTime(self)
	if pid != 0 {
		if c.err = errors.Join(serr0, serr1); c.err == nil {
			c.server, c.serverOK = s1-s0, true
		}
	}
	if merr0 == nil && merr1 == nil {
		c.self, c.selfOK = m1-m0, true
	}
}

func printTable(w io.Writer, r *result.Load) {
	label := r.Label
	if label == "" {
		label = "-"
	}
	fmt.Fprintf(w, "%-10s %-7s %5s %6s %10s %9s %9s %9s %9s %8s %8s %9s\n",
		"server", "case", "conns", "conc", "checks/s", "p50(µs)", "p90(µs)", "p99(µs)", "max(µs)", "errors", "unexpctd", "cpu/check")
	cpu := "-"
	if r.ServerCPUPerCheckUs > 0 {
		cpu = fmt.Sprintf("%.1fµs", r.ServerCPUPerCheckUs)
	}
	fmt.Fprintf(w, "%-10s %-7s %5d %6d %10.0f %9.0f %9.0f %9.0f %9.0f %8d %8d %9s\n",
		label, r.Case, r.Conns, r.Concurrency, r.Throughput, r.P50Us, r.P90Us, r.P99Us, r.MaxUs, r.Errors, r.Unexpected, cpu)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", strings.TrimSpace(r.FirstError))
	}
}
