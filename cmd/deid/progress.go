package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mya/deid/pipeline"
)

// inputProgress is implemented by sources that know how much of their input
// they have read (the file source: bytes of all files).
type inputProgress interface {
	Progress() (done, total int64)
}

// isTerminal tells whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress prints records/s and the percent of input read to f once a
// second until ctx is done; it prints nothing when f is not a terminal.
func showProgress(ctx context.Context, f *os.File, stats *pipeline.Stats, src any) {
	if !isTerminal(f) {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(f, "\r\033[K")
			return
		case now := <-tick.C:
			n := stats.Records.Load()
			rate := float64(n) / now.Sub(start).Seconds()
			line := fmt.Sprintf("\r\033[K%d records, %.0f records/s", n, rate)
			if p, ok := src.(inputProgress); ok {
				if done, total := p.Progress(); total > 0 {
					line += fmt.Sprintf(", %.1f%% of input", 100*float64(done)/float64(total))
				}
			}
			fmt.Fprint(f, line)
		}
	}
}
