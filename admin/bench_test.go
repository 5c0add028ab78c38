package admin_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// BenchmarkCreateServiceTokenParallel creates tokens from 32 concurrent
// clients (one connection each) over bufconn, with fsync on, through the
// auth interceptor and the audit log: what a bulk provisioning script sees.
// tokens/s is the figure; Batch makes concurrent creates share commits.
func BenchmarkCreateServiceTokenParallel(b *testing.B) {
	const clients = 32
	e := newEnvSync(b, false)
	conns := make([]adminv1.AdminServiceClient, clients)
	for i := range conns {
		conns[i] = adminv1.NewAdminServiceClient(e.dial())
	}
	ctx := e.ctx()
	var (
		next   atomic.Int64
		failed atomic.Value
		wg     sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := c.CreateServiceToken(ctx, &adminv1.CreateServiceTokenRequest{Name: "bench-" + strconv.FormatInt(i, 10)}); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tokens/s")
}
