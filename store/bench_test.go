package store

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBatchCreateTokens: 32 concurrent creators through Batch with
// fsync on, as `gatehouse token create` in a loop from many clients would
// do. tokens/s is the figure that matters: one batch = one fsync.
func BenchmarkBatchCreateTokens(b *testing.B) {
	db := openTest(b, Options{})
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok := newToken(int(next.Add(1)))
			if err := db.Batch(func(tx *Tx) error { return tx.PutToken(tok) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkUpdateSingle: one token per Update, one caller, fsync on: the
// floor Batch is measured against.
func BenchmarkUpdateSingle(b *testing.B) {
	db := openTest(b, Options{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tok := newToken(i)
		if err := db.Update(func(tx *Tx) error { return tx.PutToken(tok) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// seed writes n tokens in chunks (fsync off: this is setup, not measured).
func seed(b *testing.B, n int) *DB {
	b.Helper()
	db := openTest(b, fast)
	const chunk = 10_000
	for lo := 0; lo < n; lo += chunk {
		err := db.Update(func(tx *Tx) error {
			for i := lo; i < min(lo+chunk, n); i++ {
				if err := tx.PutToken(newToken(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkLoad100k: the startup cost of reading 100k tokens into memory.
func BenchmarkLoad100k(b *testing.B) {
	const n = 100_000
	db := seed(b, n)
	b.ReportAllocs()
	for b.Loop() {
		st, err := db.Load()
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Tokens) != n {
			b.Fatalf("loaded %d tokens", len(st.Tokens))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkTouchLastSeen1k: one last-seen flush of 1,000 tokens in a
// 10k-token store, fsync on.
func BenchmarkTouchLastSeen1k(b *testing.B) {
	db := seed(b, 10_000)
	db.bolt.NoSync = false
	seen := make(map[string]time.Time, 1000)
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		for i := range 1000 {
			seen[newToken(i*10).ID] = at
		}
		if err := db.TouchLastSeen(seen); err != nil {
			b.Fatal(err)
		}
	}
}
