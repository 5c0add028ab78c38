package main

import (
	"math/bits"
	"time"
)

// hist is a fixed-bucket latency histogram in the manner of HdrHistogram
// with two significant digits: values below 128 ns have a bucket each;
// above, every power-of-two range [2^k, 2^(k+1)) is split into 64 equal
// buckets, so a bucket's width is at most 1/64 (≈1.6 %) of its values.
// Recording is an index computation and an increment: no allocation, no
// lock (each worker has its own hist; they are merged at the end).
//
// Values at or above maxTracked (≈18 min) land in the last bucket; max and
// sum stay exact.
type hist struct {
	counts [numBuckets]uint64
	total  uint64
	sum    uint64 // ns
	min    uint64
	max    uint64
}

const (
	subBits     = 7
	subCount    = 1 << subBits // 128 exact buckets, then 64 per power of two
	halfCount   = subCount / 2
	maxBits     = 40 // values up to 2^40 ns
	numBuckets  = subCount + (maxBits-subBits)*halfCount
	maxTracked  = uint64(1)<<maxBits - 1
	noMinRecord = ^uint64(0)
)

func newHist() *hist { return &hist{min: noMinRecord} }

// bucketOf returns the bucket index of v (ns).
func bucketOf(v uint64) int {
	if v > maxTracked {
		v = maxTracked
	}
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // ≥ 1
	return subCount + (shift-1)*halfCount + int(v>>shift) - halfCount
}

// bucketRange returns the smallest and largest value that land in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := (i-subCount)/halfCount + 1
	m := uint64((i-subCount)%halfCount + halfCount)
	return m << shift, (m+1)<<shift - 1
}

func (h *hist) record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += v
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0 < q ≤ 1): the upper bound of
// the bucket holding the ceil(q·total)-th smallest value, clamped to the
// exact recorded min and max. So the true value is never above the result
// and at most one bucket width (≤1/64 of it) below. Zero when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	if float64(rank) < q*float64(h.total) {
		rank++ // ceil
	}
	rank = max(rank, 1)
	rank = min(rank, h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			hi = min(hi, h.max)
			hi = max(hi, h.min)
			return time.Duration(hi)
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}
