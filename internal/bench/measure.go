package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is one measured run of a child process.
type Sample struct {
	// Wall is the elapsed time from start to exit.
	Wall time.Duration `json:"wall_ns"`
	// User and Sys are the child's CPU times (rusage).
	User time.Duration `json:"user_ns"`
	Sys  time.Duration `json:"sys_ns"`
	// MaxRSS is the child's peak resident set size in bytes (rusage
	// ru_maxrss).
	MaxRSS int64 `json:"max_rss_bytes"`
	// VolSwitches counts the child's voluntary context switches (it
	// blocked: I/O, locks, sleeping), InvolSwitches the involuntary ones
	// (the kernel took the CPU away: contention).
	VolSwitches   int64 `json:"voluntary_switches"`
	InvolSwitches int64 `json:"involuntary_switches"`
	// Contention is the share of the run's wall time during which some
	// runnable task of the machine waited for a CPU (/proc/pressure/cpu
	// "some"), from 0 to 1; -1 when the kernel does not report it. A high
	// value means the machine was busy with other work, not that the child
	// was slow.
	Contention float64 `json:"cpu_contention"`
	// Stdout is what the child printed (trimmed), for the caller to parse.
	Stdout string `json:"-"`
}

// CPU returns user + system time.
func (s Sample) CPU() time.Duration { return s.User + s.Sys }

// Measure runs name with args as a child process, waits for it and returns
// its measurements. A non-zero exit is an error that carries the child's
// stderr.
func Measure(ctx context.Context, dir string, env []string, name string, args ...string) (Sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p0 := cpuPressure()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	p1 := cpuPressure()
	if err != nil {
		return Sample{}, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Sample{}, fmt.Errorf("%s: no rusage on this platform", name)
	}
	// Rusage's fields are int32 on 32-bit platforms.
	s := Sample{Wall: wall, User: tv(ru.Utime), Sys: tv(ru.Stime), MaxRSS: int64(ru.Maxrss) * 1024,
		VolSwitches: int64(ru.Nvcsw), InvolSwitches: int64(ru.Nivcsw), Contention: -1, Stdout: strings.TrimSpace(stdout.String())}
	if p0 >= 0 && p1 >= p0 && wall > 0 {
		s.Contention = min(1, float64(p1-p0)/float64(wall.Microseconds()))
	}
	return s, nil
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// cpuPressure returns the "some" total of /proc/pressure/cpu in
// microseconds, or -1.
func cpuPressure() int64 {
	f, err := os.Open("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "total="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// LoadAvg returns the 1-minute load average, or -1.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
