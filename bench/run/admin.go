package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/gatehouse-dev/gatehouse/bench/internal/checkreq"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// adminConn is an authenticated admin API client.
type adminConn struct {
	cc     *grpc.ClientConn
	client adminv1.AdminServiceClient
	key    string
}

func dialAdmin(addr, key string) (*adminConn, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &adminConn{cc: cc, client: adminv1.NewAdminServiceClient(cc), key: strings.TrimSpace(key)}, nil
}

func (a *adminConn) close() { a.cc.Close() }

func (a *adminConn) ctx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.key)
}

// churnCase alternates token-case runs against gatehouse without and with
// an admin client writing (quiet, churn, quiet, churn, ...).
func (r *runner) churnCase(ctx context.Context, g *gatehouse, admin *adminConn, creds, dsName string) (*ChurnResult, error) {
	cfg := r.cfg
	res := &ChurnResult{Concurrency: cfg.churnConc, Rate: cfg.churnRate}
	for round := range cfg.rounds {
		var qprof <-chan error
		if g.debug != "" {
			qprof = r.profile(ctx, g.debug, fmt.Sprintf("gatehouse-%s-quiet-c%d-r%d", dsName, cfg.churnConc, round+1))
		}
		quiet, err := r.loadgen(ctx, "gatehouse", g.authz, g.pid(), checkreq.Token, creds, cfg.churnConc)
		if qprof != nil {
			if perr := <-qprof; perr != nil {
				r.log("profile: %v", perr)
			}
		}
		if err != nil {
			return res, fmt.Errorf("churn round %d (quiet): %w", round+1, err)
		}
		res.Quiet = append(res.Quiet, quiet)

		cctx, stop := context.WithCancel(ctx)
		var st churnStats
		done := make(chan struct{})
		go func() {
			defer close(done)
			st = churn(cctx, admin, cfg.churnRate, fmt.Sprintf("churn-%s-%d", dsName, round))
		}()
		var prof <-chan error
		if g.debug != "" {
			prof = r.profile(ctx, g.debug, fmt.Sprintf("gatehouse-%s-churn-c%d-r%d", dsName, cfg.churnConc, round+1))
		}
		busy, err := r.loadgen(ctx, "gatehouse+churn", g.authz, g.pid(), checkreq.Token, creds, cfg.churnConc)
		if prof != nil {
			if perr := <-prof; perr != nil {
				r.log("profile: %v", perr)
			}
		}
		stop()
		<-done
		if err != nil {
			return res, fmt.Errorf("churn round %d (churn): %w", round+1, err)
		}
		res.Churn = append(res.Churn, busy)
		res.Creates += st.creates
		res.Deletes += st.deletes
		res.Errors += st.errors
		res.Seconds += st.seconds
		if res.FirstError == "" {
			res.FirstError = st.firstErr
		}
		g.trimLog(maxLog)
	}
	res.summarise()
	return res, nil
}

type churnStats struct {
	creates, deletes, errors int64
	seconds                  float64
	firstErr                 string
}

// churn creates rate tokens per second and deletes each about a second
// after its creation, until ctx ends; then it deletes what is left (for at
// most 30 s). Creation and deletion run in their own goroutines so a slow
// fsync in one does not stall the other. Ticks missed because a call was
// slow are skipped, not made up: the achieved rate is reported.
func churn(ctx context.Context, admin *adminConn, rate int, prefix string) churnStats {
	var st churnStats
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		st.errors++
		if st.firstErr == "" {
			st.firstErr = err.Error()
		}
		mu.Unlock()
	}
	type created struct {
		id string
		at time.Time
	}
	queue := make(chan created, 100*rate+100)
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(queue)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cctx, cancel := context.WithTimeout(admin.ctx(ctx), 10*time.Second)
			tok, err := admin.client.CreateServiceToken(cctx, &adminv1.CreateServiceTokenRequest{Name: fmt.Sprintf("%s-%06d", prefix, i)})
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("create: %w", err))
				}
				continue
			}
			mu.Lock()
			st.creates++
			mu.Unlock()
			select {
			case queue <- created{tok.GetId(), time.Now()}:
			default:
				fail(fmt.Errorf("delete queue full: deletions fall behind"))
			}
		}
	})
	wg.Go(func() {
		// Deletions outlive ctx so no churn token is left behind.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for c := range queue {
			if wait := time.Until(c.at.Add(time.Second)); wait > 0 && ctx.Err() == nil {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
			cctx, ccancel := context.WithTimeout(admin.ctx(bg), 10*time.Second)
			_, err := admin.client.DeleteServiceToken(cctx, &adminv1.DeleteServiceTokenRequest{Id: c.id})
			ccancel()
			if err != nil {
				fail(fmt.Errorf("delete: %w", err))
				continue
			}
			mu.Lock()
			st.deletes++
			mu.Unlock()
		}
	})
	<-ctx.Done()
	st.seconds = time.Since(t0).Seconds()
	wg.Wait()
	return st
}

// createCase creates tokens through the admin API from clients concurrent
// callers for d and reports tokens/s (the server syncs every commit).
func createCase(ctx context.Context, admin *adminConn, clients int, d time.Duration, dsName string) *CreateResult {
	res := &CreateResult{Clients: clients, DurationS: d.Seconds()}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var created, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range clients {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for i := 0; ctx.Err() == nil; i++ {
				s := time.Now()
				_, err := admin.client.CreateServiceToken(admin.ctx(ctx), &adminv1.CreateServiceTokenRequest{
					Name: fmt.Sprintf("create-%s-%02d-%07d", dsName, w, i),
				})
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the case, not a failure
					}
					failed.Add(1)
					mu.Lock()
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				created.Add(1)
				mine = append(mine, time.Since(s))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	res.Created, res.Errors = created.Load(), failed.Load()
	res.PerS = float64(res.Created) / elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 {
			return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / 1e6
		}
		res.P50Ms, res.P99Ms = q(0.5), q(0.99)
	}
	return res
}
