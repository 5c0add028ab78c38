package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
	"github.com/gatehouse-dev/gatehouse/bench/internal/proc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/result"
)

const (
	targetHost = "app.example.com"
	targetPath = "/api/v1/items"
	bypassHost = "public.example.com"
	jwtHeader  = "cf-access-jwt-assertion"
	maxLog     = 64 << 20
)

// gatehouse is one running gatehouse server and its addresses.
type gatehouse struct {
	*child
	dir                  string
	authz, admin, httpAd string
	debug                string // --debug-addr, with --profile
}

func (r *runner) startGatehouse(ctx context.Context, dir, cpus, logName string) (*gatehouse, time.Duration, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, 0, err
	}
	g := &gatehouse{dir: dir, authz: addrs[0], admin: addrs[1], httpAd: addrs[2]}
	args := []string{"serve",
		"--data-dir", dir, "--authz-addr", g.authz, "--admin-addr", g.admin, "--http-addr", g.httpAd,
		"--log-allowed=false"}
	if r.cfg.profile {
		g.debug = addrs[3]
		args = append(args, "--debug-addr", g.debug)
	}
	cmd := r.pin.command(ctx, cpus, filepath.Join(r.bin, "gatehouse"), args...)
	if r.cfg.memLimit != "" {
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+r.cfg.memLimit)
	}
	t0 := time.Now()
	if g.child, err = start("gatehouse", cmd, filepath.Join(r.work, logName)); err != nil {
		return nil, 0, err
	}
	ready, err := waitHTTP200(ctx, g.child, "http://"+g.httpAd+"/readyz", 3*time.Minute)
	if err != nil {
		g.stop(5 * time.Second)
		return nil, 0, err
	}
	return g, ready.Sub(t0), nil
}

// dataset runs every step for one data set. It returns what it measured
// even when a later step fails.
func (r *runner) dataset(ctx context.Context, ds dataset) (*DatasetResult, error) {
	cfg := r.cfg
	res := &DatasetResult{Name: ds.name, Tokens: ds.tokens, Apps: cfg.apps}
	dir := filepath.Join(r.work, "data-"+ds.name)

	// A first start creates the master key, the signing key and the admin
	// key; the store must then be closed for seeding.
	r.log("%s: initialising %s", ds.name, dir)
	g, _, err := r.startGatehouse(ctx, dir, "", "gatehouse-"+ds.name+"-init.log")
	if err != nil {
		return nil, err
	}
	if err := g.stop(30 * time.Second); err != nil {
		return nil, err
	}

	r.log("%s: seeding %d tokens, %d applications", ds.name, ds.tokens, cfg.apps)
	creds := filepath.Join(r.work, "creds-"+ds.name+".json")
	t0 := time.Now()
	seed := exec.CommandContext(ctx, filepath.Join(r.bin, "seed"), "--data-dir", dir,
		"--tokens", strconv.Itoa(ds.tokens), "--apps", strconv.Itoa(cfg.apps),
		"--sample", strconv.Itoa(cfg.sample), "--creds", creds,
		"--host", targetHost, "--bypass-host", bypassHost)
	if out, err := seed.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("seed: %v\n%s", err, out)
	}
	res.SeedS = time.Since(t0).Seconds()
	if fi, err := os.Stat(filepath.Join(dir, "gatehouse.db")); err == nil {
		res.DBFileMiB = float64(fi.Size()) / (1 << 20)
	}

	r.log("%s: starting gatehouse (cold start)", ds.name)
	g, cold, err := r.startGatehouse(ctx, dir, r.pin.server, "gatehouse-"+ds.name+".log")
	if err != nil {
		return nil, err
	}
	defer g.stop(30 * time.Second)
	res.ColdStartS = cold.Seconds()
	if m, err := proc.Mem(g.pid()); err == nil {
		res.MemReady = m
	}
	r.log("%s: ready after %.2fs, RSS %.0f MiB", ds.name, cold.Seconds(), mib(res.MemReady.RSS))

	r.log("%s: first Check for each of the sampled tokens (mints and caches their session JWTs)", ds.name)
	jwtCreds := filepath.Join(r.work, "creds-jwt-"+ds.name+".json")
	n, rate, err := captureJWTs(ctx, g.authz, creds, jwtCreds)
	if err != nil {
		return res, err
	}
	res.FirstChecksPerS = rate
	r.log("%s: %d JWTs captured at %.0f first checks/s", ds.name, n, rate)

	sized, err := r.startSizedFloors(ctx, ds.name, g, map[checkreq.Case]string{checkreq.Token: creds, checkreq.JWT: jwtCreds})
	for _, f := range sized {
		defer f.stop(5 * time.Second)
	}
	if err != nil {
		return res, err
	}

	for _, conc := range cfg.conc {
		for _, k := range cfg.cases {
			cr := &CaseResult{Dataset: ds.name, Tokens: ds.tokens, Concurrency: conc, Case: string(k)}
			res.Cases = append(res.Cases, cr)
			credFile := creds
			if k == checkreq.JWT {
				credFile = jwtCreds
			}
			type side struct {
				label, addr, debug string
				pid                int
			}
			sides := []side{{"floor", r.fAddr, r.fDebug, r.floor.pid()}, {"gatehouse", g.authz, g.debug, g.pid()}}
			if f := sized[k]; f != nil {
				cr.SizedBytes = f.bytes
				sides = append(sides, side{"sized-floor", f.addr, f.debug, f.pid()})
			}
			for round := range cfg.rounds {
				for _, side := range sides {
					var prof <-chan error
					if side.debug != "" {
						prof = r.profile(ctx, side.debug, fmt.Sprintf("%s-%s-%s-c%d-r%d", side.label, ds.name, k, conc, round+1))
					}
					l, err := r.loadgen(ctx, side.label, side.addr, side.pid, k, credFile, conc)
					if prof != nil {
						if perr := <-prof; perr != nil {
							r.log("profile: %v", perr)
						}
					}
					if err != nil {
						return res, fmt.Errorf("%s %s C=%d round %d: %w", side.label, k, conc, round+1, err)
					}
					switch side.label {
					case "floor":
						cr.Floor = append(cr.Floor, l)
					case "sized-floor":
						cr.SizedFloor = append(cr.SizedFloor, l)
					default:
						cr.Gatehouse = append(cr.Gatehouse, l)
					}
					g.trimLog(maxLog)
				}
			}
			cr.summarise()
			r.log("%s: %-6s C=%-3d gatehouse/floor throughput %.2f, p99 %.2f, CPU/check %.1f vs %.1f µs",
				ds.name, k, conc, cr.ThroughputRatio, cr.P99Ratio, cr.GatehouseCPUUs, cr.FloorCPUUs)
		}
	}
	if m, err := proc.Mem(g.pid()); err == nil {
		res.MemAfterLoad = m
	}

	key, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		return res, fmt.Errorf("admin key: %w", err)
	}
	admin, err := dialAdmin(g.admin, string(key))
	if err != nil {
		return res, err
	}
	defer admin.close()

	if cfg.churnRate > 0 {
		r.log("%s: churn: Checks at C=%d with and without %d token creations+deletions/s", ds.name, cfg.churnConc, cfg.churnRate)
		res.Churn, err = r.churnCase(ctx, g, admin, creds, ds.name)
		if err != nil {
			return res, err
		}
		r.log("%s: churn/quiet throughput %.2f", ds.name, res.Churn.ThroughputRatio)
	}
	if cfg.createClients > 0 {
		r.log("%s: token creation with %d admin clients for %v", ds.name, cfg.createClients, cfg.createDur)
		var prof <-chan error
		if g.debug != "" {
			prof = r.profile(ctx, g.debug, fmt.Sprintf("gatehouse-%s-create", ds.name))
		}
		res.Create = createCase(ctx, admin, cfg.createClients, cfg.createDur, ds.name)
		if prof != nil {
			if perr := <-prof; perr != nil {
				r.log("profile: %v", perr)
			}
		}
		r.log("%s: %.0f tokens/s created", ds.name, res.Create.PerS)
	}
	if m, err := proc.Mem(g.pid()); err == nil {
		res.MemEnd = m
	}
	if err := g.stop(30 * time.Second); err != nil {
		return res, err
	}
	return res, nil
}

// grpcMinBatch is grpc-go's minBatchSize (internal/transport/controlbuf.go):
// its writer lets more responses join a write only while fewer bytes than
// this are buffered.
const grpcMinBatch = 1000

// floorBaseBytes is the floor's OK response without padding, and
// floorPadSlack what a padded header adds beyond the padding (the longer
// length varints).
const floorBaseBytes, floorPadSlack = 23, 4

// sizedFloor is a floor padded to gatehouse's response size for one case.
type sizedFloor struct {
	*child
	addr, debug string
	bytes       int
}

// startSizedFloors measures gatehouse's allow response for each case in
// creds (case → credentials file) and, for each one over grpcMinBatch,
// starts a floor whose OK response has that size.
func (r *runner) startSizedFloors(ctx context.Context, name string, g *gatehouse, creds map[checkreq.Case]string) (map[checkreq.Case]*sizedFloor, error) {
	out := map[checkreq.Case]*sizedFloor{}
	for _, k := range r.cfg.cases {
		file, ok := creds[k]
		if !ok {
			continue
		}
		n, err := responseBytes(ctx, g.authz, k, file)
		if err != nil {
			return out, fmt.Errorf("%s response size: %w", k, err)
		}
		if n < grpcMinBatch {
			continue
		}
		addrs, err := freeAddrs(2)
		if err != nil {
			return out, err
		}
		f := &sizedFloor{addr: addrs[0], bytes: n}
		args := []string{"--addr", f.addr, "--pad-bytes", strconv.Itoa(max(0, n-floorBaseBytes-floorPadSlack))}
		if r.cfg.profile {
			f.debug = addrs[1]
			args = append(args, "--debug-addr", f.debug)
		}
		if f.child, err = start("sized floor", r.pin.command(ctx, r.pin.server, filepath.Join(r.bin, "floor"), args...),
			filepath.Join(r.work, fmt.Sprintf("floor-sized-%s.log", k))); err != nil {
			return out, err
		}
		out[k] = f
		if err := waitGRPCHealth(ctx, f.child, f.addr, 30*time.Second); err != nil {
			return out, err
		}
		r.log("%s: gatehouse's %s allow is %d bytes (over grpc-go's %d-byte batching threshold): sized floor on %s", name, k, n, grpcMinBatch, f.addr)
	}
	return out, nil
}

// responseBytes is the encoded size of gatehouse's answer to the first
// request of case k.
func responseBytes(ctx context.Context, addr string, k checkreq.Case, credFile string) (int, error) {
	creds, err := checkreq.ReadCreds(credFile)
	if err != nil {
		return 0, err
	}
	reqs, err := checkreq.Build(k, creds, checkreq.Target{Host: targetHost, Path: targetPath}, 1)
	if err != nil {
		return 0, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(cc).Check(ctx, reqs[0])
	if err != nil {
		return 0, err
	}
	if resp.GetStatus().GetCode() != 0 {
		return 0, fmt.Errorf("denied: %s", resp.GetDeniedResponse().GetBody())
	}
	return proto.Size(resp), nil
}

// profile fetches a CPU profile of the server whose pprof listener is at
// debug, covering the measured window of the
// loadgen run about to start (after its warmup) into
// <work>/profiles/NAME.pprof. The channel yields once the profile is
// written.
func (r *runner) profile(ctx context.Context, debug, name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			select {
			case <-time.After(r.cfg.warmup):
			case <-ctx.Done():
				return ctx.Err()
			}
			secs := max(1, int(r.cfg.duration.Seconds())-1)
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debug, secs)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", url, resp.Status)
			}
			dir := filepath.Join(r.work, "profiles")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			f, err := os.Create(filepath.Join(dir, name+".pprof"))
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return done
}

// loadgen runs one load-generator process pinned to the load CPU.
func (r *runner) loadgen(ctx context.Context, label, addr string, pid int, k checkreq.Case, creds string, conc int) (*result.Load, error) {
	cfg := r.cfg
	r.seq++
	out := filepath.Join(r.work, fmt.Sprintf("run-%04d-%s-%s-c%d.json", r.seq, label, k, conc))
	host := targetHost
	if k == checkreq.Bypass {
		host = bypassHost
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.warmup+cfg.duration+time.Minute)
	defer cancel()
	cmd := r.pin.command(ctx, r.pin.loadgen, filepath.Join(r.bin, "loadgen"),
		"--addr", addr, "--case", string(k), "--creds", creds, "--host", host, "--path", targetPath,
		"--conns", strconv.Itoa(cfg.conns), "--concurrency", strconv.Itoa(conc),
		"--duration", cfg.duration.String(), "--warmup", cfg.warmup.String(),
		"--server-pid", strconv.Itoa(pid), "--label", label, "--json", out, "--quiet")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("loadgen: %v\n%s", err, b)
	}
	return result.Read(out)
}

// captureJWTs sends one token-case Check per credential in credsIn and
// writes the credentials with the session JWT gatehouse returned to
// credsOut. This is each token's first Check, so gatehouse signs a JWT for
// it; the later runs measure the steady state in which minted JWTs are
// reused. It returns how many JWTs it got and the rate of these first
// checks.
func captureJWTs(ctx context.Context, addr, credsIn, credsOut string) (int, float64, error) {
	creds, err := checkreq.ReadCreds(credsIn)
	if err != nil {
		return 0, 0, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, 0, err
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(creds) || ctx.Err() != nil {
					return
				}
				req, err := checkreq.ServiceTokenRequest(creds[i], checkreq.Target{Host: targetHost, Path: targetPath})
				var resp *authv3.CheckResponse
				if err == nil {
					resp, err = client.Check(ctx, req)
				}
				if err == nil && resp.GetStatus().GetCode() != 0 {
					err = fmt.Errorf("token %s denied: %s", creds[i].ClientID, resp.GetDeniedResponse().GetBody())
				}
				if err == nil {
					for _, h := range resp.GetOkResponse().GetHeaders() {
						if h.GetHeader().GetKey() == jwtHeader {
							creds[i].JWT = h.GetHeader().GetValue()
						}
					}
					if creds[i].JWT == "" {
						err = fmt.Errorf("token %s: allowed without a %s header", creds[i].ClientID, jwtHeader)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("capturing JWTs: %w", err)
	}
	if len(creds) == 0 {
		return 0, 0, errors.New("no credentials to capture JWTs for")
	}
	if err := checkreq.WriteCreds(credsOut, creds); err != nil {
		return 0, 0, err
	}
	return len(creds), float64(len(creds)) / elapsed.Seconds(), nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
