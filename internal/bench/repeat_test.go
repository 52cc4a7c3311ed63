package bench

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/mya/deid/internal/gen"
)

// A repeated input holds every event of its base times times, in place, the
// copies with their own event ids and otherwise byte for byte the same.
func TestRepeatCopiesEveryEventInPlaceWithItsOwnID(t *testing.T) {
	cfg := gen.DefaultConfig()
	cfg.Events, cfg.Partitions = 300, 2
	base, err := Prepare(t.TempDir(), cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Repeat(base, 3, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 3*base.Lines || len(rep.Events) != len(base.Events) {
		t.Fatalf("repeated input: %d lines in %d files; want %d in %d", rep.Lines, len(rep.Events), 3*base.Lines, len(base.Events))
	}
	for p := range base.Events {
		orig, copies := readLines(t, base.Events[p]), readLines(t, rep.Events[p])
		for i, line := range orig {
			id := eventID.FindStringSubmatchIndex(line) // the first, as written
			for k := range 3 {
				got, want := copies[3*i+k], line
				if k > 0 && id != nil {
					want = line[:id[3]] + "~" + strconv.Itoa(k) + line[id[3]:]
				}
				if got != want {
					t.Fatalf("partition %d, line %d, copy %d:\n got %s\nwant %s", p, i+1, k, got, want)
				}
			}
		}
	}
	again, err := Repeat(base, 3, t.Logf)
	if err != nil || again.Bytes != rep.Bytes {
		t.Fatalf("second Repeat: %v, %d bytes; want the cached %d", err, again.Bytes, rep.Bytes)
	}
}

// eventID matches an event_id member and captures its string's contents.
var eventID = regexp.MustCompile(`"event_id":"((?:[^"\\]|\\.)*)"`)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
