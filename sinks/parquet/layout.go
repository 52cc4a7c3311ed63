package parquet

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/mya/deid/pipeline"
)

// ManifestName is the file whose presence commits a window's directory.
const ManifestName = "_manifest.json"

// PartitionPath returns a window's directory relative to its dataset
// directory: "dt=YYYY-MM-DD" for a 24h window, "dt=YYYY-MM-DD/hour=HH" for
// a shorter one, and "dt=YYYY-MM-DD/hour=HH/minute=MM" for a window shorter
// than an hour (an extension of contract §6.3: two 30-minute windows would share
// an hour). Every window of one size lands in its own directory, because
// windows of a size are that far apart; all directories of a dataset have
// the same depth, as Hive-partitioned readers require.
func PartitionPath(w pipeline.Window) (string, error) {
	size := time.Duration(w.End-w.Start) * time.Microsecond
	if size <= 0 || size > 24*time.Hour {
		return "", fmt.Errorf("window %s: must be longer than 0 and at most 24h", formatWindow(w))
	}
	start := time.UnixMicro(w.Start).UTC()
	if w.Start%time.Minute.Microseconds() != 0 {
		return "", fmt.Errorf("window %s: must start on a whole minute", formatWindow(w))
	}
	dt := "dt=" + start.Format("2006-01-02")
	switch {
	case size == 24*time.Hour:
		if start.Hour() != 0 || start.Minute() != 0 {
			return "", fmt.Errorf("window %s: a 24h window must start at midnight UTC", formatWindow(w))
		}
		return dt, nil
	case size >= time.Hour:
		return filepath.Join(dt, fmt.Sprintf("hour=%02d", start.Hour())), nil
	default:
		return filepath.Join(dt, fmt.Sprintf("hour=%02d", start.Hour()), fmt.Sprintf("minute=%02d", start.Minute())), nil
	}
}

func formatWindow(w pipeline.Window) string { return rfc3339(w.Start) + "/" + rfc3339(w.End) }
