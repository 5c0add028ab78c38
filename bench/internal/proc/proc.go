// Package proc reads a process's CPU time and memory from Linux /proc, for
// the load benchmark's CPU-per-check and RSS figures.
package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. USER_HZ is 100 on
// every Linux architecture Go supports (the kernel converts to it for
// userspace whatever its internal HZ), so sysconf(_SC_CLK_TCK) is not
// needed.
const userHZ = 100

// ErrFormat means a /proc file did not have the expected shape.
var ErrFormat = errors.New("unexpected /proc format")

// CPUTime returns the user+system CPU time the process (all its threads)
// has used so far. Resolution is 10 ms.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

// parseStat extracts utime+stime (fields 14 and 15) from a stat line. The
// command name (field 2) is in parentheses and may contain spaces, so
// fields are counted after the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat has no command name", ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after the name", ErrFormat, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: utime/stime: %w", ErrFormat, err)
	}
	return time.Duration(ut+st) * (time.Second / userHZ), nil
}

// Memory is a process's resident memory, in bytes.
type Memory struct {
	RSS  int64 `json:"rss"`  // VmRSS: resident now
	Peak int64 `json:"peak"` // VmHWM: the highest RSS so far
	Anon int64 `json:"anon"` // RssAnon: heap, stacks (what the program allocated)
	File int64 `json:"file"` // RssFile: mapped file pages (e.g. an mmap'd database), reclaimable
}

// Mem reads VmRSS, VmHWM, RssAnon and RssFile from /proc/<pid>/status.
func Mem(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("%w: %s: %w", ErrFormat, key, err)
		}
		*dst = kb << 10
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if found != 4 {
		return Memory{}, fmt.Errorf("%w: VmRSS, VmHWM, RssAnon or RssFile missing in /proc/%d/status", ErrFormat, pid)
	}
	return m, nil
}
