// Package result is the JSON record of one load-generator run, written by
// bench/loadgen (--json) and read by the bench/run orchestrator.
package result

import (
	"encoding/json"
	"os"
	"time"
)

// Load is one run of the load generator against one server.
type Load struct {
	Label       string  `json:"label,omitempty"` // free text from --label (e.g. "floor", "gatehouse")
	Case        string  `json:"case"`
	Addr        string  `json:"addr"`
	Conns       int     `json:"conns"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"distinct_requests"` // pre-built requests cycled through
	WarmupS     float64 `json:"warmup_s"`
	DurationS   float64 `json:"duration_s"` // measured window

	// Checks completed OK at the RPC level inside the measured window (a
	// deny is a completed check); Errors are RPC errors there; Unexpected
	// are completed checks whose decision was not the case's expectation.
	Checks     int64  `json:"checks"`
	Errors     int64  `json:"errors"`
	Unexpected int64  `json:"unexpected"`
	FirstError string `json:"first_error,omitempty"`

	Throughput float64 `json:"checks_per_s"`
	// Latencies in microseconds (histogram buckets: within ~1.6 %).
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	MaxUs  float64 `json:"max_us"`

	// ServerCPUPerCheckUs is the server process's CPU time (user+system,
	// from /proc/<pid>/stat) during the measured window divided by Checks;
	// zero when no --server-pid was given. ServerCPUUtil is that CPU time
	// divided by the window (1.0 = one core busy).
	ServerPID           int     `json:"server_pid,omitempty"`
	ServerCPUPerCheckUs float64 `json:"server_cpu_per_check_us,omitempty"`
	ServerCPUUtil       float64 `json:"server_cpu_util,omitempty"`
	// LoadgenCPUPerCheckUs is the load generator's own CPU per check.
	LoadgenCPUPerCheckUs float64 `json:"loadgen_cpu_per_check_us"`

	Start time.Time `json:"start"`
}

// Write stores l as indented JSON at path.
func (l *Load) Write(path string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read loads a Load written by Write.
func Read(path string) (*Load, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l := &Load{}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, err
	}
	return l, nil
}
