package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBucketRange checks that every value lands in a bucket whose range
// holds it, that buckets are contiguous and ordered, and that a bucket's
// width stays within 1/64 of its lower bound above the exact range.
func TestBucketRange(t *testing.T) {
	prevHi := uint64(0)
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/64 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/64 of its lower bound", i, lo, hi)
		}
		for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d (range [%d,%d])", v, got, i, lo, hi)
			}
		}
		prevHi = hi
	}
	if prevHi != maxTracked {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, maxTracked)
	}
	if got := bucketOf(maxTracked + 12345); got != numBuckets-1 {
		t.Fatalf("value above maxTracked: bucket %d, want the last (%d)", got, numBuckets-1)
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration // exact answer (nearest-rank)
	}{
		{"single", []time.Duration{5 * time.Millisecond}, 0.5, 5 * time.Millisecond},
		{"single p99", []time.Duration{5 * time.Millisecond}, 0.99, 5 * time.Millisecond},
		{"small exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"small exact p90", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"max", []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, time.Second}, 1, time.Second},
		{"two values p50", []time.Duration{100 * time.Microsecond, 900 * time.Microsecond}, 0.5, 100 * time.Microsecond},
		{"two values p51", []time.Duration{100 * time.Microsecond, 900 * time.Microsecond}, 0.51, 900 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHist()
			for _, v := range tt.values {
				h.record(v)
			}
			got := h.quantile(tt.q)
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/64 {
				t.Fatalf("quantile(%v) = %v, want %v (at most 1/64 above)", tt.q, got, tt.want)
			}
		})
	}
}

// TestQuantileMatchesSorted compares against the exact nearest-rank
// quantile of a sorted copy, over a skewed (log-normal-ish) distribution
// and split across merged per-worker histograms, as the load generator uses
// them.
func TestQuantileMatchesSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	parts := []*hist{newHist(), newHist(), newHist()}
	for i := range 30000 {
		v := time.Duration(50e3 * (1 + r.ExpFloat64()*r.ExpFloat64()*3)) // ~50µs .. tens of ms
		all = append(all, v)
		parts[i%len(parts)].record(v)
	}
	h := newHist()
	for _, p := range parts {
		h.merge(p)
	}
	slices.Sort(all)
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(q*float64(len(all)) + 0.999999999)
		want := all[max(rank, 1)-1]
		got := h.quantile(q)
		if got < want || float64(got-want) > float64(want)/64 {
			t.Errorf("q=%v: got %v, exact %v", q, got, want)
		}
	}
	if h.total != uint64(len(all)) || time.Duration(h.max) != all[len(all)-1] || time.Duration(h.min) != all[0] {
		t.Errorf("merged total/min/max = %d/%v/%v, want %d/%v/%v", h.total, time.Duration(h.min), time.Duration(h.max), len(all), all[0], all[len(all)-1])
	}
	var sum time.Duration
	for _, v := range all {
		sum += v
	}
	if h.mean() != sum/time.Duration(len(all)) {
		t.Errorf("mean %v, want %v", h.mean(), sum/time.Duration(len(all)))
	}
}

func TestEmpty(t *testing.T) {
	h := newHist()
	if h.quantile(0.5) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.merge(newHist())
	if h.total != 0 || h.min != noMinRecord {
		t.Fatal("merging an empty histogram changed it")
	}
}

func TestRecordAllocs(t *testing.T) {
	h := newHist()
	if n := testing.AllocsPerRun(1000, func() { h.record(123456 * time.Nanosecond) }); n != 0 {
		t.Fatalf("record allocates %v times", n)
	}
}
