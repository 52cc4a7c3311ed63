package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/claim"
	"github.com/mya/deid/internal/gen"
	"github.com/mya/deid/internal/kafkatest"
)

// TestAKafkaRunIsLockedAndBound: in Kafka mode too, the state directory and
// the output are locked and bound to the key, the policy and each other, so
// that a run under another key, another window, or with a new state
// directory on the same output is refused (exit 2) before it reads
// anything; and events of a window an earlier run published, on a topic it
// did not read, are late.
func TestAKafkaRunIsLockedAndBound(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, c *kafkatest.Cluster) {
		t.Setenv("DEID_PSEUDONYM_KEY", "kafka-bind-key-a-0123456789")
		cfg := gen.DefaultConfig()
		cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces = 21, 3000, 2, 100
		s := produceSample(t, c, cfg)
		out, state := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "state")
		deid(t, s.args(c, out, state)...)
		before := tree(t, out)

		conf, err := os.ReadFile(s.conf)
		if err != nil {
			t.Fatal(err)
		}
		halfDays := filepath.Join(t.TempDir(), "12h.yaml")
		writeFile(t, halfDays, strings.Replace(string(conf), "pipeline:\n", "pipeline:\n  window: 12h\n", 1))
		withConf := func(args []string, conf string) []string {
			args = append([]string(nil), args...)
			for i := range args {
				if args[i] == "--config" {
					args[i+1] = conf
				}
			}
			return args
		}
		refused := []struct {
			name string
			key  string
			args []string
			want []string
		}{
			{"another key", "kafka-bind-key-b-0123456789", s.args(c, out, state),
				[]string{"state_dir: ", "bound to another pseudonym key", "a new state_dir and a new out"}},
			{"another window", "", withConf(s.args(c, out, state), halfDays),
				[]string{"state_dir: ", "pipeline.window: 24h0m0s → 12h0m0s", "a new state_dir and a new out"}},
			{"a new state directory on the output", "", s.args(c, out, filepath.Join(t.TempDir(), "new-state")),
				[]string{"out: ", "was written with another state directory", "a new state_dir and a new out"}},
			{"a new state directory and another key on the output", "kafka-bind-key-b-0123456789",
				s.args(c, out, filepath.Join(t.TempDir(), "new-state")),
				[]string{"out: ", "bound to another pseudonym key"}},
		}
		for _, tt := range refused {
			t.Run(tt.name+" is refused", func(t *testing.T) {
				if tt.key != "" {
					t.Setenv("DEID_PSEUDONYM_KEY", tt.key)
				}
				code, _, stderr := deidExit(tt.args...)
				if code != 2 {
					t.Fatalf("exit %d, want 2\n%s", code, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("the message does not say %q:\n%s", w, stderr)
					}
				}
			})
		}
		t.Run("a held lock is refused", func(t *testing.T) {
			// flock locks belong to an open file: this one conflicts with
			// the run's as another process's would.
			l, err := claim.Acquire(state, stateLockName, "state_dir", 0o750)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			code, _, stderr := deidExit(s.args(c, out, state)...)
			want := "state_dir: " + mustAbs(t, state) + " is locked by pid " + strconv.Itoa(os.Getpid())
			if code != 2 || !strings.Contains(stderr, want) {
				t.Fatalf("exit %d, want 2 saying %q:\n%s", code, want, stderr)
			}
		})
		if diff := cmp.Diff(before, tree(t, out)); diff != "" {
			t.Fatalf("a refused run changed the output:\n%s", diff)
		}

		t.Run("events of a published window on a new topic are late", func(t *testing.T) {
			// The first campaign events of the sample again, under new ids,
			// on a topic the first run did not read.
			data, err := os.ReadFile(filepath.Join(s.files, "events-00.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			var msgs []kafkatest.Message
			for _, line := range bytes.Split(data, []byte("\n")) {
				if len(msgs) < 30 && bytes.Contains(line, []byte(`"campaign.metrics"`)) && bytes.HasPrefix(line, []byte(`{"event_id":"`)) {
					msgs = append(msgs, kafkatest.Message{Value: bytes.Replace(line, []byte(`{"event_id":"`), []byte(`{"event_id":"again-`), 1)})
				}
			}
			more := kafkatest.Name(t, "more")
			kafkatest.CreateTopic(t, c.Brokers, more, 1, false)
			kafkatest.Produce(t, c.Brokers, more, msgs)
			args := s.args(c, out, state)
			for i := range args {
				if args[i] == "--topics" {
					args[i+1] += "," + more
				}
			}
			deid(t, args...)
			excluded, _ := dispositions(t, out)
			late := 0
			for pos, reason := range excluded {
				if strings.HasPrefix(pos, more+"[") && reason == "late_event" {
					late++
				}
			}
			if late != len(msgs) {
				t.Errorf("%d of the %d events of published windows are late_event", late, len(msgs))
			}
			if diff := cmp.Diff(datasetFilesOf(before), datasetFiles(t, out)); diff != "" {
				t.Errorf("the published windows changed:\n%s", diff)
			}
		})
	})
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
