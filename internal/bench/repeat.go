package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mya/deid/internal/gen"
)

// Repeat returns an input of times times base's events in which every
// event is followed in its partition by times-1 copies of itself, the k-th
// with "~k" appended to its event_id; the settings are base's. The copies
// fall in the same windows and cells, come from the same workspaces and
// name the same creators, campaigns and users, so deid's partials are those
// of base while its events, dedup keys included, are times as many: the
// input that shows what memory grows with events alone. (A record without
// an event_id, malformed anyway, is repeated as it is.) It is cached beside
// base, like Prepare's inputs.
func Repeat(base *Input, times int, logf func(string, ...any)) (*Input, error) {
	dir := fmt.Sprintf("%s-repeat%d", base.Dir, times)
	fp := fmt.Sprintf("%s-repeat%d", base.Fingerprint, times)
	if in, _, err := cached(dir, fp); err == nil && in != nil {
		return in, nil
	}
	logf("bench: writing %d× the events of %s, each event repeated in place, into %s (once; cached)", times, base.Dir, dir)
	os.Remove(filepath.Join(dir, stampName))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	in := &Input{Dir: dir, Settings: filepath.Join(dir, gen.SettingsFileName), Workspaces: base.Workspaces,
		Days: base.Days, Seed: base.Seed, Partitions: base.Partitions, Fingerprint: fp}
	settings, err := os.ReadFile(base.Settings)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(in.Settings, settings, 0o644); err != nil {
		return nil, err
	}
	for _, src := range base.Events {
		dst := filepath.Join(dir, filepath.Base(src))
		lines, size, err := repeatFile(src, dst, times)
		if err != nil {
			return nil, err
		}
		in.Events = append(in.Events, dst)
		in.Lines += lines
		in.Bytes += size
	}
	return in, in.record()
}

// repeatFile writes each line of src times times to dst (see Repeat), and
// returns the lines and bytes written.
func repeatFile(src, dst string, times int) (lines, size int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	br, bw := bufio.NewReaderSize(in, 1<<20), bufio.NewWriterSize(out, 1<<20)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) > 0 {
			end := idEnd(line)
			for k := range times {
				var n int
				if k == 0 || end < 0 {
					n, _ = bw.Write(line)
				} else {
					n, _ = bw.Write(line[:end])
					m, _ := bw.WriteString("~" + strconv.Itoa(k))
					o, _ := bw.Write(line[end:])
					n += m + o
				}
				lines++
				size += int64(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, err
	}
	return lines, size, out.Close()
}

// idEnd returns the offset of the quote that closes the line's event_id
// string, or -1 when it has none.
func idEnd(line []byte) int {
	const key = `"event_id":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return -1
	}
	for j := i + len(key); j < len(line); j++ {
		switch line[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}
