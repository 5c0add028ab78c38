package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/bench/internal/proc"
	"github.com/gatehouse-dev/gatehouse/bench/internal/result"
)

// Conditions is what the figures were measured on.
type Conditions struct {
	Date         string  `json:"date"`
	CPUModel     string  `json:"cpu_model"`
	NumCPU       int     `json:"num_cpu"`
	Kernel       string  `json:"kernel"`
	GoVersion    string  `json:"go_version"`
	Pinning      string  `json:"pinning"`
	GoMemLimit   string  `json:"gomemlimit,omitempty"` // of gatehouse
	Rounds       int     `json:"rounds"`
	DurationS    float64 `json:"duration_s"`
	WarmupS      float64 `json:"warmup_s"`
	Conns        int     `json:"conns"`
	Short        bool    `json:"short"`
	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
	WallS        float64 `json:"wall_s"`
}

// CaseResult is one case at one concurrency on one data set: every round's
// run against both servers and the summary. Ratios are gatehouse ÷ floor,
// computed per round (the two runs of a round are back to back) and then
// the median over rounds, so slow drift of a shared machine cancels out.
type CaseResult struct {
	Dataset     string         `json:"dataset"`
	Tokens      int            `json:"tokens"`
	Concurrency int            `json:"concurrency"`
	Case        string         `json:"case"`
	Floor       []*result.Load `json:"floor"`
	Gatehouse   []*result.Load `json:"gatehouse"`
	// SizedFloor is the floor answering with a response as long as
	// gatehouse's for this case (SizedBytes): cases whose response is over
	// grpc-go's write-batching threshold only.
	SizedFloor []*result.Load `json:"sized_floor,omitempty"`
	SizedBytes int            `json:"sized_response_bytes,omitempty"`

	FloorThroughput     float64 `json:"floor_checks_per_s"` // medians over rounds
	GatehouseThroughput float64 `json:"gatehouse_checks_per_s"`
	ThroughputRatio     float64 `json:"throughput_ratio"` // median of per-round ratios
	ThroughputRatioMin  float64 `json:"throughput_ratio_min"`
	ThroughputRatioMax  float64 `json:"throughput_ratio_max"`
	FloorP50Us          float64 `json:"floor_p50_us"`
	GatehouseP50Us      float64 `json:"gatehouse_p50_us"`
	P50Ratio            float64 `json:"p50_ratio"`
	FloorP99Us          float64 `json:"floor_p99_us"`
	GatehouseP99Us      float64 `json:"gatehouse_p99_us"`
	P99Ratio            float64 `json:"p99_ratio"`
	FloorCPUUs          float64 `json:"floor_cpu_per_check_us"`
	GatehouseCPUUs      float64 `json:"gatehouse_cpu_per_check_us"`
	CPURatio            float64 `json:"cpu_per_check_ratio"`
	// Gatehouse ÷ sized floor, like the ratios above.
	SizedFloorThroughput float64 `json:"sized_floor_checks_per_s,omitempty"`
	SizedThroughputRatio float64 `json:"sized_throughput_ratio,omitempty"`
	SizedP99Ratio        float64 `json:"sized_p99_ratio,omitempty"`
	SizedFloorCPUUs      float64 `json:"sized_floor_cpu_per_check_us,omitempty"`
	// Errors are RPC errors against either server; Unexpected are
	// gatehouse decisions other than the case's expectation (the floor
	// allows everything, so its decisions are not counted).
	Errors     int64 `json:"errors"`
	Unexpected int64 `json:"unexpected"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairRatio returns per-round b/a of field f.
func pairRatio(a, b []*result.Load, f func(*result.Load) float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if d := f(a[i]); d > 0 {
			out = append(out, f(b[i])/d)
		}
	}
	return out
}

func field(ls []*result.Load, f func(*result.Load) float64) []float64 {
	out := make([]float64, len(ls))
	for i, l := range ls {
		out[i] = f(l)
	}
	return out
}

var (
	thr = func(l *result.Load) float64 { return l.Throughput }
	p50 = func(l *result.Load) float64 { return l.P50Us }
	p99 = func(l *result.Load) float64 { return l.P99Us }
	cpu = func(l *result.Load) float64 { return l.ServerCPUPerCheckUs }
)

func (c *CaseResult) summarise() {
	c.FloorThroughput, c.GatehouseThroughput = median(field(c.Floor, thr)), median(field(c.Gatehouse, thr))
	r := pairRatio(c.Floor, c.Gatehouse, thr)
	c.ThroughputRatio = median(r)
	if len(r) > 0 {
		c.ThroughputRatioMin, c.ThroughputRatioMax = slices.Min(r), slices.Max(r)
	}
	c.FloorP50Us, c.GatehouseP50Us = median(field(c.Floor, p50)), median(field(c.Gatehouse, p50))
	c.P50Ratio = median(pairRatio(c.Floor, c.Gatehouse, p50))
	c.FloorP99Us, c.GatehouseP99Us = median(field(c.Floor, p99)), median(field(c.Gatehouse, p99))
	c.P99Ratio = median(pairRatio(c.Floor, c.Gatehouse, p99))
	c.FloorCPUUs, c.GatehouseCPUUs = median(field(c.Floor, cpu)), median(field(c.Gatehouse, cpu))
	c.CPURatio = median(pairRatio(c.Floor, c.Gatehouse, cpu))
	if len(c.SizedFloor) > 0 {
		c.SizedFloorThroughput = median(field(c.SizedFloor, thr))
		c.SizedThroughputRatio = median(pairRatio(c.SizedFloor, c.Gatehouse, thr))
		c.SizedP99Ratio = median(pairRatio(c.SizedFloor, c.Gatehouse, p99))
		c.SizedFloorCPUUs = median(field(c.SizedFloor, cpu))
	}
	c.Errors, c.Unexpected = 0, 0
	for _, l := range c.SizedFloor {
		c.Errors += l.Errors
	}
	for _, l := range c.Floor {
		c.Errors += l.Errors
	}
	for _, l := range c.Gatehouse {
		c.Errors += l.Errors
		c.Unexpected += l.Unexpected
	}
}

// ChurnResult compares gatehouse's token-case throughput without and with
// an admin client creating and deleting tokens, round by round.
type ChurnResult struct {
	Concurrency     int            `json:"concurrency"`
	Rate            int            `json:"creations_per_s"`
	Quiet           []*result.Load `json:"quiet"`
	Churn           []*result.Load `json:"churn"`
	QuietThroughput float64        `json:"quiet_checks_per_s"`
	ChurnThroughput float64        `json:"churn_checks_per_s"`
	ThroughputRatio float64        `json:"throughput_ratio"` // median of per-round churn/quiet
	P99Ratio        float64        `json:"p99_ratio"`
	Creates         int64          `json:"creates"`
	Deletes         int64          `json:"deletes"`
	Errors          int64          `json:"admin_errors"`
	FirstError      string         `json:"first_admin_error,omitempty"`
	Seconds         float64        `json:"seconds"`
	WritesPerS      float64        `json:"writes_per_s"` // achieved creates+deletes per second
	CheckErrors     int64          `json:"check_errors"`
	Unexpected      int64          `json:"unexpected"`
}

func (c *ChurnResult) summarise() {
	c.QuietThroughput, c.ChurnThroughput = median(field(c.Quiet, thr)), median(field(c.Churn, thr))
	c.ThroughputRatio = median(pairRatio(c.Quiet, c.Churn, thr))
	c.P99Ratio = median(pairRatio(c.Quiet, c.Churn, p99))
	if c.Seconds > 0 {
		c.WritesPerS = float64(c.Creates+c.Deletes) / c.Seconds
	}
	for _, l := range append(slices.Clone(c.Quiet), c.Churn...) {
		c.CheckErrors += l.Errors
		c.Unexpected += l.Unexpected
	}
}

// CreateResult is token creation through the admin API.
type CreateResult struct {
	Clients    int     `json:"clients"`
	DurationS  float64 `json:"duration_s"`
	Created    int64   `json:"created"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	PerS       float64 `json:"tokens_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
}

// DatasetResult is everything measured on one data set.
type DatasetResult struct {
	Name            string        `json:"name"`
	Tokens          int           `json:"tokens"`
	Apps            int           `json:"apps"`
	SeedS           float64       `json:"seed_s"`
	DBFileMiB       float64       `json:"db_file_mib"`
	ColdStartS      float64       `json:"cold_start_s"`
	FirstChecksPerS float64       `json:"first_checks_per_s"` // first Check per token: mints a JWT
	MemReady        proc.Memory   `json:"mem_ready"`
	MemAfterLoad    proc.Memory   `json:"mem_after_load"`
	MemEnd          proc.Memory   `json:"mem_end"` // after churn and creation (more tokens)
	Cases           []*CaseResult `json:"cases"`
	Churn           *ChurnResult  `json:"churn,omitempty"`
	Create          *CreateResult `json:"create,omitempty"`
}

func (d *DatasetResult) find(k string, conc int) *CaseResult {
	for _, c := range d.Cases {
		if c.Case == k && c.Concurrency == conc {
			return c
		}
	}
	return nil
}

// Target is one of issue #6's targets and how this run did.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

type report struct {
	Conditions Conditions       `json:"conditions"`
	Datasets   []*DatasetResult `json:"datasets"`
	Targets    []Target         `json:"targets"`
}

// finish evaluates the targets that the measured data sets allow.
func (r *report) finish(cfg *config) {
	r.Targets = nil
	add := func(name, want, measured string, met bool) {
		r.Targets = append(r.Targets, Target{name, want, measured, met})
	}
	for _, d := range r.Datasets {
		for _, conc := range cfg.conc {
			if c := d.find("token", conc); c != nil && len(c.Gatehouse) > 0 {
				add(fmt.Sprintf("service-token allow throughput, %s tokens, C=%d", d.Name, conc),
					"≥ 0.85 × floor", fmt.Sprintf("%.2f × (%.2f–%.2f)", c.ThroughputRatio, c.ThroughputRatioMin, c.ThroughputRatioMax), c.ThroughputRatio >= 0.85)
				add(fmt.Sprintf("service-token allow p99, %s tokens, C=%d", d.Name, conc),
					"≤ 1.3 × floor", fmt.Sprintf("%.2f × (%.0f vs %.0f µs)", c.P99Ratio, c.GatehouseP99Us, c.FloorP99Us), c.P99Ratio <= 1.3)
			}
			if c := d.find("jwt", conc); c != nil && len(c.Gatehouse) > 0 {
				add(fmt.Sprintf("session-JWT allow throughput, %s tokens, C=%d", d.Name, conc),
					"≥ 0.8 × floor", fmt.Sprintf("%.2f × (%.2f–%.2f)", c.ThroughputRatio, c.ThroughputRatioMin, c.ThroughputRatioMax), c.ThroughputRatio >= 0.8)
			}
		}
		var errs, unexpected int64
		for _, c := range d.Cases {
			errs += c.Errors
			unexpected += c.Unexpected
		}
		add(fmt.Sprintf("every Check answered as expected, %s tokens", d.Name), "0 RPC errors, 0 unexpected decisions",
			fmt.Sprintf("%d errors, %d unexpected", errs, unexpected), errs == 0 && unexpected == 0)
		if d.Churn != nil && len(d.Churn.Churn) > 0 {
			add(fmt.Sprintf("Check throughput under admin churn, %s tokens, C=%d", d.Name, d.Churn.Concurrency),
				"≥ 0.90 × quiet (≤ 10 % lower)",
				fmt.Sprintf("%.2f × at %.0f writes/s (%d admin errors)", d.Churn.ThroughputRatio, d.Churn.WritesPerS, d.Churn.Errors),
				d.Churn.ThroughputRatio >= 0.9 && d.Churn.Errors == 0)
		}
		if d.Create != nil {
			add(fmt.Sprintf("token creation via admin API, %d clients, %s tokens", d.Create.Clients, d.Name), "≥ 2,000 tokens/s (fsync on)",
				fmt.Sprintf("%.0f tokens/s (%d errors)", d.Create.PerS, d.Create.Errors), d.Create.PerS >= 2000 && d.Create.Errors == 0)
		}
	}
	if len(r.Datasets) >= 2 {
		small, big := r.Datasets[0], r.Datasets[len(r.Datasets)-1]
		for _, conc := range cfg.conc {
			s, b := small.find("token", conc), big.find("token", conc)
			if s == nil || b == nil || s.ThroughputRatio == 0 || len(b.Gatehouse) == 0 {
				continue
			}
			rel := b.ThroughputRatio / s.ThroughputRatio
			add(fmt.Sprintf("%s vs %s tokens, service-token throughput, C=%d", big.Name, small.Name, conc),
				"within 10 % (ratio vs floor)",
				fmt.Sprintf("%.2f × (%.2f vs %.2f of floor; CPU/check %.1f vs %.1f µs)", rel, b.ThroughputRatio, s.ThroughputRatio, b.GatehouseCPUUs, s.GatehouseCPUUs),
				rel >= 0.9)
		}
	}
	if n := len(r.Datasets); n > 0 {
		big := r.Datasets[n-1]
		if big.MemAfterLoad.Peak > 0 {
			m := big.MemAfterLoad
			add(fmt.Sprintf("server RSS, %s tokens", big.Name), "≤ 800 MiB",
				fmt.Sprintf("peak %.0f MiB (now %.0f: %.0f heap/anon + %.0f mapped file)", mib(m.Peak), mib(m.RSS), mib(m.Anon), mib(m.File)),
				mib(m.Peak) <= 800)
		}
		if big.ColdStartS > 0 {
			add(fmt.Sprintf("cold start (open store, load view, ready), %s tokens", big.Name), "≤ 5 s",
				fmt.Sprintf("%.2f s", big.ColdStartS), big.ColdStartS <= 5)
		}
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	c := r.Conditions
	p("\n## gatehouse vs floor: load benchmark\n\n")
	p("- Date: %s; wall time %.0f s%s\n", c.Date, c.WallS, map[bool]string{true: " (short version)", false: ""}[c.Short])
	p("- CPU: %s, %d CPUs; Linux %s; %s\n", c.CPUModel, c.NumCPU, c.Kernel, c.GoVersion)
	p("- Placement: %s\n", c.Pinning)
	if c.GoMemLimit != "" {
		p("- gatehouse ran with GOMEMLIMIT=%s (Go's soft memory limit; the floor servers without)\n", c.GoMemLimit)
	}
	p("- Runs: %d round(s) of floor, gatehouse (and the sized floor, where there is one) per row, %.0f s warmup + %.0f s measured each, %d gRPC connections\n", c.Rounds, c.WarmupS, c.DurationS, c.Conns)
	p("- Load average at start / end: %s / %s\n\n", c.LoadAvgStart, c.LoadAvgEnd)

	p("### Checks: gatehouse vs floor\n\n")
	p("Ratios are gatehouse ÷ floor per round, median over rounds (throughput: min–max in brackets). CPU/check is server process CPU time ÷ checks.\n\n")
	p("| tokens | C | case | floor checks/s | gatehouse checks/s | throughput ratio | p50 µs floor → gatehouse | p50 ratio | p99 µs floor → gatehouse | p99 ratio | CPU/check µs floor → gatehouse | errors / unexpected |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range r.Datasets {
		for _, cr := range d.Cases {
			p("| %s | %d | %s | %.0f | %.0f | %.2f (%.2f–%.2f) | %.0f → %.0f | %.2f | %.0f → %.0f | %.2f | %.1f → %.1f | %d / %d |\n",
				d.Name, cr.Concurrency, cr.Case, cr.FloorThroughput, cr.GatehouseThroughput,
				cr.ThroughputRatio, cr.ThroughputRatioMin, cr.ThroughputRatioMax,
				cr.FloorP50Us, cr.GatehouseP50Us, cr.P50Ratio, cr.FloorP99Us, cr.GatehouseP99Us, cr.P99Ratio,
				cr.FloorCPUUs, cr.GatehouseCPUUs, cr.Errors, cr.Unexpected)
		}
	}

	sized := false
	for _, d := range r.Datasets {
		for _, cr := range d.Cases {
			sized = sized || len(cr.SizedFloor) > 0
		}
	}
	if sized {
		p("\n### Against a floor that answers with gatehouse's response size\n\n")
		p("grpc-go's writer batches several responses into one write(2) only while fewer than 1,000 bytes are buffered (minBatchSize in internal/transport/controlbuf.go). The floor's 23-byte OK is always batched; an allow carrying the session JWT (upstream header and Set-Cookie) is over the threshold and gets a write of its own. The sized floor is the floor with its one header padded (--pad-bytes) to gatehouse's response size, so this ratio is gatehouse's own cost.\n\n")
		p("| tokens | C | case | response bytes | sized floor checks/s | gatehouse checks/s | throughput ratio | p99 ratio | CPU/check µs sized floor → gatehouse |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, d := range r.Datasets {
			for _, cr := range d.Cases {
				if len(cr.SizedFloor) == 0 {
					continue
				}
				p("| %s | %d | %s | %d | %.0f | %.0f | %.2f | %.2f | %.1f → %.1f |\n", d.Name, cr.Concurrency, cr.Case, cr.SizedBytes,
					cr.SizedFloorThroughput, cr.GatehouseThroughput, cr.SizedThroughputRatio, cr.SizedP99Ratio, cr.SizedFloorCPUUs, cr.GatehouseCPUUs)
			}
		}
	}

	p("\n### Store, start and memory\n\n")
	p("| tokens | apps | seed s | db file MiB | cold start s | first check per token/s | RSS ready MiB | RSS after load MiB (heap + file) | peak RSS after load MiB | peak RSS at end MiB |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range r.Datasets {
		p("| %s | %d+1 | %.1f | %.0f | %.2f | %.0f | %.0f | %.0f (%.0f + %.0f) | %.0f | %.0f |\n",
			d.Name, d.Apps, d.SeedS, d.DBFileMiB, d.ColdStartS, d.FirstChecksPerS, mib(d.MemReady.RSS),
			mib(d.MemAfterLoad.RSS), mib(d.MemAfterLoad.Anon), mib(d.MemAfterLoad.File), mib(d.MemAfterLoad.Peak), mib(d.MemEnd.Peak))
	}

	p("\n### Admin writes\n\n")
	p("| tokens | Checks at C | quiet checks/s | with churn checks/s | throughput ratio | p99 ratio | admin writes/s achieved | admin errors | check errors / unexpected |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range r.Datasets {
		if ch := d.Churn; ch != nil {
			p("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.0f (%d creates, %d deletes) | %d | %d / %d |\n",
				d.Name, ch.Concurrency, ch.QuietThroughput, ch.ChurnThroughput, ch.ThroughputRatio, ch.P99Ratio,
				ch.WritesPerS, ch.Creates, ch.Deletes, ch.Errors, ch.CheckErrors, ch.Unexpected)
		}
	}
	p("\n| tokens | admin clients | tokens created/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n")
	for _, d := range r.Datasets {
		if cr := d.Create; cr != nil {
			p("| %s | %d | %.0f | %.1f | %.1f | %d |\n", d.Name, cr.Clients, cr.PerS, cr.P50Ms, cr.P99Ms, cr.Errors)
		}
	}
	for _, d := range r.Datasets {
		if d.Churn != nil && d.Churn.FirstError != "" {
			p("\nFirst churn error (%s): %s\n", d.Name, d.Churn.FirstError)
		}
		if d.Create != nil && d.Create.FirstError != "" {
			p("\nFirst creation error (%s): %s\n", d.Name, d.Create.FirstError)
		}
	}

	p("\n### Targets (issue #6)\n\n| target | want | measured | met |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		p("| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, map[bool]string{true: "yes", false: "**no**"}[t.Met])
	}
	return b.String()
}
