package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// pinning says how processes are placed on CPUs.
type pinning struct {
	enabled bool
	server  string // taskset CPU list for servers
	loadgen string // taskset CPU list for the load generator
	why     string // when disabled: why
}

// detectPinning pins servers to CPU 0 and the load generator to CPU 1 when
// taskset exists and both CPUs are usable by this process.
func detectPinning(ctx context.Context) pinning {
	path, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{why: "taskset not found"}
	}
	for _, cpu := range []string{"0", "1"} {
		c := exec.CommandContext(ctx, path, "-c", cpu, "true")
		if out, err := c.CombinedOutput(); err != nil {
			return pinning{why: fmt.Sprintf("taskset -c %s failed: %v %s", cpu, err, strings.TrimSpace(string(out)))}
		}
	}
	return pinning{enabled: true, server: "0", loadgen: "1"}
}

func (p pinning) describe() string {
	if !p.enabled {
		return "not pinned (" + p.why + "): servers and load generator share all CPUs"
	}
	self := ""
	if os.Getenv(pinnedEnv) != "" {
		self = fmt.Sprintf("; the admin clients of the churn and creation cases (bench/run itself) on CPU %s with the servers", p.server)
	}
	return fmt.Sprintf("servers pinned to CPU %s, load generator to CPU %s (taskset; Go sets GOMAXPROCS=1 in each)%s", p.server, p.loadgen, self)
}

// pinnedEnv is set in bench/run's environment once pinSelf has re-executed
// it under taskset, to the number of CPUs it could use before (for the
// report: runtime.NumCPU counts the affinity mask, one after pinSelf).
const pinnedEnv = "GATEHOUSE_BENCH_RUN_PINNED"

// pinSelf re-executes bench/run under taskset on CPU 0, the servers' CPU,
// where taskset works. The admin clients of the churn and creation cases
// run in this process: unpinned, they took CPU from the load generator, and
// the churn case measured the load generator (0.80 of the quiet throughput
// with the client on CPU 1, 0.96 with it on CPU 0, same gatehouse). On CPU
// 0 their cost counts against gatehouse's side, the stricter choice. If
// anything fails it goes on unpinned, and the report says so.
func pinSelf() {
	if os.Getenv(pinnedEnv) != "" {
		return
	}
	path, err := exec.LookPath("taskset")
	if err != nil || exec.Command(path, "-c", "0", "true").Run() != nil {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	// Exec returns only if it failed.
	env := append(os.Environ(), pinnedEnv+"="+strconv.Itoa(runtime.NumCPU()))
	_ = syscall.Exec(path, append([]string{"taskset", "-c", "0", self}, os.Args[1:]...), env)
}

// machineCPUs is the number of CPUs bench/run could use before it pinned
// itself.
func machineCPUs() int {
	if n, err := strconv.Atoi(os.Getenv(pinnedEnv)); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// command returns an exec.Cmd for bin args, run under taskset on cpus when
// pinning is on. The child is killed if this process dies.
func (p pinning) command(ctx context.Context, cpus, bin string, args ...string) *exec.Cmd {
	var c *exec.Cmd
	if p.enabled && cpus != "" {
		c = exec.CommandContext(ctx, "taskset", append([]string{"-c", cpus, bin}, args...)...)
	} else {
		c = exec.CommandContext(ctx, bin, args...)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.WaitDelay = 5 * time.Second
	return c
}

// child is a started server process. taskset execs the server, so the pid
// is the server's own.
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	logPath string
}

func start(name string, c *exec.Cmd, logPath string) (*child, error) {
	// O_APPEND so the log can be truncated while the server writes to it.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	c.Stdout, c.Stderr = f, f
	if err := c.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &child{name: name, cmd: c, done: make(chan struct{}), logPath: logPath}
	go func() {
		p.err = c.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *child) pid() int { return p.cmd.Process.Pid }

func (p *child) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills.
func (p *child) stop(grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) && !ee.Exited() {
			return nil // ended by our signal
		}
		return p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGTERM; killed", p.name, grace)
	}
}

// trimLog empties the log when it grew past max (denies are logged, and a
// deny run writes tens of megabytes).
func (p *child) trimLog(max int64) {
	if fi, err := os.Stat(p.logPath); err == nil && fi.Size() > max {
		_ = os.Truncate(p.logPath, 0)
	}
}

// logTail returns the last n bytes of the log, for error messages.
func (p *child) logTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// waitHTTP200 polls url every 5 ms until it answers 200, the process exits
// or timeout passes. It returns when it first saw 200.
func waitHTTP200(ctx context.Context, p *child, url string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if p.exited() {
			return time.Time{}, fmt.Errorf("%s exited before %s was ready: %v\n%s", p.name, url, p.err, p.logTail(2000))
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s: %s not 200 within %v\n%s", p.name, url, timeout, p.logTail(2000))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitGRPCHealth polls the gRPC health service at addr until SERVING.
func waitGRPCHealth(ctx context.Context, p *child, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(2000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s at %s not serving within %v (last: %v)", p.name, addr, timeout, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freeAddrs returns n distinct loopback addresses with free ports.
func freeAddrs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
