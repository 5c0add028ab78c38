// Command run is the side-by-side load benchmark of gatehouse against the
// floor server (bench/floor: the least an ext_authz v3 gRPC server in Go
// can do). `make bench-load` runs the full version, `make bench-load-short`
// a quick one; docs/performance.md explains the cases and the figures.
//
// It builds gatehouse, floor, loadgen and seed into a temporary directory,
// and for each data set (1k and 1M service tokens, 1,000 applications):
// initialises a data dir with one gatehouse start, seeds it with the server
// stopped, starts gatehouse again and measures the cold start (process
// start → /readyz 200), primes the session-JWT cache and captures JWTs for
// the jwt case, then runs every case at every concurrency in rounds that
// alternate floor and gatehouse (A B A B A B) so that drift on a shared
// machine hits both alike. It then measures Check throughput while an
// admin client creates and deletes tokens, and token creation throughput
// through the admin API with 32 clients.
//
// Servers run pinned to CPU 0 and the load generator to CPU 1 when taskset
// is available. Everything listens on 127.0.0.1. Results go to stdout as
// Markdown and to --out as JSON.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
)

type config struct {
	short         bool
	out           string
	workDir       string
	keep          bool
	profile       bool
	datasets      []dataset
	apps          int
	sample        int
	conc          []int
	cases         []checkreq.Case
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	conns         int
	churnRate     int
	churnConc     int
	createClients int
	createDur     time.Duration
	timeout       time.Duration
	memLimit      string
}

type dataset struct {
	name   string
	tokens int
}

func main() {
	pinSelf()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c := &config{}
	var sizes, conc, cases string
	fs.BoolVar(&c.short, "short", false, "quick version (< 2 min): 1k tokens, one round, short runs")
	fs.StringVar(&c.out, "out", filepath.Join(os.TempDir(), "gatehouse-bench-load.json"), "write the results as JSON here")
	fs.StringVar(&c.workDir, "work-dir", "", "directory for binaries, data dirs and logs (default: a new temporary directory)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (data dirs, logs, per-run JSON)")
	fs.BoolVar(&c.profile, "profile", false, "save a CPU profile of gatehouse and of floor over each measured window in <work-dir>/profiles (implies --keep)")
	fs.StringVar(&sizes, "tokens", "1000,1000000", "comma-separated token counts of the data sets")
	fs.IntVar(&c.apps, "apps", 1000, "applications per data set (plus one bypass application)")
	fs.IntVar(&c.sample, "sample", 10000, "tokens whose credentials the load generator uses")
	fs.StringVar(&conc, "concurrency", "16,64", "comma-separated concurrencies")
	fs.StringVar(&cases, "cases", "token,jwt,deny,bypass", "comma-separated cases")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds per case; each round runs floor then gatehouse")
	fs.DurationVar(&c.duration, "duration", 6*time.Second, "measured window per run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured warmup per run")
	fs.IntVar(&c.conns, "conns", 4, "gRPC connections of the load generator")
	fs.IntVar(&c.churnRate, "churn-rate", 50, "admin token creations per second (each deleted about a second later) in the churn case")
	fs.IntVar(&c.churnConc, "churn-concurrency", 64, "Check concurrency during the churn case")
	fs.IntVar(&c.createClients, "create-clients", 32, "concurrent admin clients in the token-creation case")
	fs.DurationVar(&c.createDur, "create-duration", 10*time.Second, "length of the token-creation case")
	fs.DurationVar(&c.timeout, "timeout", 90*time.Minute, "give up after this long")
	fs.StringVar(&c.memLimit, "gomemlimit", "700MiB", `GOMEMLIMIT of the gatehouse processes, Go's soft memory limit ("": none)`)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.short {
		// Flags given explicitly still win over the short defaults.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("tokens", func() { sizes = "1000" })
		def("sample", func() { c.sample = 1000 })
		def("rounds", func() { c.rounds = 1 })
		def("duration", func() { c.duration = 2 * time.Second })
		def("warmup", func() { c.warmup = time.Second })
		def("create-duration", func() { c.createDur = 3 * time.Second })
		def("timeout", func() { c.timeout = 10 * time.Minute })
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 10_000_000 {
			return nil, fmt.Errorf("--tokens: %q is not a count between 1 and 10000000", s)
		}
		c.datasets = append(c.datasets, dataset{name: countName(n), tokens: n})
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("--concurrency: %q is not between 1 and 10000", s)
		}
		c.conc = append(c.conc, n)
	}
	for _, s := range strings.Split(cases, ",") {
		k, err := checkreq.ParseCase(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--cases: %w", err)
		}
		c.cases = append(c.cases, k)
	}
	switch {
	case c.apps < 1 || c.apps > 100000:
		return nil, fmt.Errorf("--apps %d: want 1..100000", c.apps)
	case c.sample < 1 || c.sample > 1_000_000:
		return nil, fmt.Errorf("--sample %d: want 1..1000000", c.sample)
	case c.rounds < 1 || c.rounds > 20:
		return nil, fmt.Errorf("--rounds %d: want 1..20", c.rounds)
	case c.duration < time.Second || c.duration > 10*time.Minute:
		return nil, fmt.Errorf("--duration %v: want 1s..10m", c.duration)
	case c.warmup < 0 || c.warmup > time.Minute:
		return nil, fmt.Errorf("--warmup %v: want 0..1m", c.warmup)
	case c.conns < 1 || c.conns > 64:
		return nil, fmt.Errorf("--conns %d: want 1..64", c.conns)
	case c.churnRate < 0 || c.churnRate > 1000:
		return nil, fmt.Errorf("--churn-rate %d: want 0 (off)..1000", c.churnRate)
	case c.createClients < 0 || c.createClients > 1000:
		return nil, fmt.Errorf("--create-clients %d: want 0 (off)..1000", c.createClients)
	case c.createDur < time.Second || c.createDur > 10*time.Minute:
		return nil, fmt.Errorf("--create-duration %v: want 1s..10m", c.createDur)
	}
	return c, nil
}

func countName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// runner holds what every step needs.
type runner struct {
	cfg    *config
	root   string // repository root
	work   string
	bin    string
	pin    pinning
	floor  *child
	fAddr  string
	fDebug string // floor's pprof address, with --profile
	seq    int    // per-run file counter
	log    func(format string, args ...any)
}

func run(ctx context.Context, cfg *config) error {
	started := time.Now()
	r := &runner{cfg: cfg, log: func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}}
	var err error
	if r.root, err = repoRoot(ctx); err != nil {
		return err
	}
	if cfg.workDir != "" {
		r.work = cfg.workDir
		err = os.MkdirAll(r.work, 0o700)
	} else {
		r.work, err = os.MkdirTemp("", "gatehouse-bench-*")
	}
	if err != nil {
		return err
	}
	if !cfg.keep && !cfg.profile && cfg.workDir == "" {
		defer os.RemoveAll(r.work)
	}
	r.bin = filepath.Join(r.work, "bin")
	r.log("work dir %s", r.work)

	rep := &report{Conditions: conditions(cfg)}
	rep.Conditions.LoadAvgStart = loadAvg()

	r.log("building gatehouse, floor, loadgen, seed")
	build := exec.CommandContext(ctx, "go", "build", "-o", r.bin+"/", "./cmd/gatehouse", "./bench/floor", "./bench/loadgen", "./bench/seed")
	build.Dir = r.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	r.pin = detectPinning(ctx)
	rep.Conditions.Pinning = r.pin.describe()
	rep.Conditions.GoMemLimit = cfg.memLimit
	r.log("%s", rep.Conditions.Pinning)

	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	r.fAddr = addrs[0]
	floorArgs := []string{"--addr", r.fAddr}
	if cfg.profile {
		d, err := freeAddrs(1)
		if err != nil {
			return err
		}
		r.fDebug = d[0]
		floorArgs = append(floorArgs, "--debug-addr", r.fDebug)
	}
	r.floor, err = start("floor", r.pin.command(ctx, r.pin.server, filepath.Join(r.bin, "floor"), floorArgs...), filepath.Join(r.work, "floor.log"))
	if err != nil {
		return err
	}
	defer r.floor.stop(5 * time.Second)
	if err := waitGRPCHealth(ctx, r.floor, r.fAddr, 30*time.Second); err != nil {
		return err
	}

	for _, ds := range cfg.datasets {
		res, err := r.dataset(ctx, ds)
		if res != nil {
			rep.Datasets = append(rep.Datasets, res)
		}
		if err != nil {
			// Report what was measured before failing.
			rep.Conditions.LoadAvgEnd = loadAvg()
			rep.finish(cfg)
			_ = rep.writeJSON(cfg.out)
			fmt.Print(rep.markdown())
			return fmt.Errorf("data set %s: %w", ds.name, err)
		}
	}
	rep.Conditions.LoadAvgEnd = loadAvg()
	rep.Conditions.WallS = time.Since(started).Seconds()
	rep.finish(cfg)
	if err := rep.writeJSON(cfg.out); err != nil {
		return err
	}
	fmt.Print(rep.markdown())
	r.log("JSON written to %s", cfg.out)
	return nil
}

func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from inside the gatehouse module")
	}
	return filepath.Dir(mod), nil
}

// conditions records what the numbers were measured on.
func conditions(cfg *config) Conditions {
	c := Conditions{
		Date:      time.Now().UTC().Format(time.RFC3339),
		GoVersion: runtime.Version(),
		NumCPU:    machineCPUs(),
		Rounds:    cfg.rounds,
		DurationS: cfg.duration.Seconds(),
		WarmupS:   cfg.warmup.Seconds(),
		Conns:     cfg.conns,
		Short:     cfg.short,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				c.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		c.Kernel = strings.TrimSpace(string(b))
	}
	return c
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
