package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/parquet/compress"
	pqfile "github.com/apache/arrow/go/v17/parquet/file"
)

// TestConfigs loads every testdata/config/*.yaml: the good ones validate, the
// bad ones fail with messages that name the key and the fix.
func TestConfigs(t *testing.T) {
	bad := map[string][]string{
		// Every unknown key and every wrongly typed value at once, by YAML
		// path and line, with the nearest known key.
		"misspelled.bad.yaml": {
			"4 problems:",
			"pipeline.windw (line 2): unknown key; did you mean window?",
			"pipeline.alowed_lateness (line 3): unknown key; did you mean allowed_lateness?",
			`pipeline.max_out_of_orderness (line 4): expected a duration such as 30s, 10m or 24h, got "ten"`,
			"window (line 5): unknown key; it belongs under another section: pipeline.window",
		},
		"types.bad.yaml": {
			"6 problems:",
			`pipeline.window (line 3): expected a duration such as 30s, 10m or 24h, got "3600"`,
			`pipeline.segment_entries (line 4): expected a whole number, got "many"`,
			`kafka.brokers (line 6): expected a list, e.g. [a, b], got "127.0.0.1:9092"`,
			`kafka.tls.enabled (line 8): expected true or false, got "maybe"`,
			`datasets[0].privacy.k (line 12): expected a whole number, got "ten"`,
			"datasets[0].privacy.dominanc_n (line 13): unknown key; did you mean dominance_n?",
		},
		"shape.bad.yaml": {
			"4 problems:",
			"pipeline.window (line 4): given twice (first at line 3); keep one",
			"pipeline.allowed_lateness (line 5): has no value; give one, or remove the key to keep the default",
			`input (line 6): expected a mapping of keys to values, got "events.ndjson"`,
			`line 7: a second YAML document starts here; deid reads one — merge them or remove the "---"`,
		},
		"empty.bad.yaml":    {"empty.bad.yaml is empty: write the settings to change", "or run without --config to use the defaults"},
		"comments.bad.yaml": {"comments.bad.yaml is empty:"},
		// 90s divides 24h, but a window must start on a whole minute.
		"window.bad.yaml":     {"pipeline.window: must be at least 1m, whole minutes, and divide 24h evenly, e.g. 15m, 1h, 6h or 24h (got 1m30s)"},
		"aliases.bad.yaml":    {"the document expands its YAML aliases (*name) too far; write the values out"},
		"exclusions.bad.yaml": {`exclusions.compression: must be "snappy" or "zstd" (got "lz4")`},
		"values.bad.yaml": {
			`mode: must be "file" or "kafka" (got "stream")`,
			"pipeline.window: must be at least 1m, whole minutes, and divide 24h evenly",
			"pipeline.allowed_lateness: must not be negative",
			`consent.unknown_workspaces: must be "exclude" or "include"`,
			"parquet.compression:",
			"shutdown_timeout: must be positive",
			"memory_limit: 1MiB is below the 64MiB",
		},
		"memory.bad.yaml": {`"lots" is not a size; write bytes or a number with a unit, e.g. 512MiB`},
		"kafka.bad.yaml":  {"kafka.brokers:", "settings_topic:", "state_dir:"},
		// The connection's keys sit directly under kafka (inline).
		"kafkakeys.bad.yaml": {
			"3 problems:",
			"kafka.broker (line 3): unknown key; did you mean brokers?",
			"kafka.retry_budgett (line 4): unknown key; did you mean retry_budget?",
			"kafka.tls.enabeld (line 6): unknown key; did you mean enabled?",
		},
		"url.bad.yaml": {`out: "gs://training/deid": only s3://bucket/prefix URLs (or a local path) are supported`,
			`state_dir: "gs://training/state": only s3://bucket/prefix URLs (or a local path) are supported`,
			"storage.s3.endpoint: must not carry credentials; they come from the AWS credential chain"},
		"consent.bad.yaml": {`consent.unattributable: must be "fail" or "skip" (got "ignore")`},
		"anchors.bad.yaml": {"anchors.file: out/anchors.ndjson is inside the output directory out",
			"anchors.topic: produced through the kafka section's connection settings, which are incomplete"},
		// An anchor log inside the s3:// output it anchors.
		"s3anchors.bad.yaml": {"anchors.file: s3://training/deid/anchors is inside the output s3://training/deid"},
	}
	files, _ := filepath.Glob("../../testdata/config/*.yaml")
	if len(files) < 12 {
		t.Fatalf("found %d config fixtures", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(f)
			if err == nil {
				err = cfg.Validate()
			}
			if strings.HasSuffix(name, ".good.yaml") {
				if err != nil {
					t.Fatalf("a good config fails: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a bad config validates")
			}
			want, ok := bad[name]
			if !ok {
				t.Fatalf("no expected messages for %s", name)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			// The operator reads YAML, not Go: no Go type or yaml.v3
			// internals, and a problem is said once.
			for _, leak := range []string{"pipeline.Config", "main.Config", " in type ", "!!", "unmarshal", "EOF"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error says %q:\n%v", leak, err)
				}
			}
			lines := strings.Split(err.Error(), "\n")
			if len(slices.Compact(slices.Sorted(slices.Values(lines)))) != len(lines) {
				t.Errorf("a problem is reported twice:\n%v", err)
			}
		})
	}
}

func TestByteSizes(t *testing.T) {
	for in, want := range map[string]byteSize{
		"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "2GiB": 2 << 30, "1.5 GiB": 3 << 29,
		"10MB": 10_000_000, "3KiB": 3 << 10, "7B": 7,
	} {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1GiB", "1XB", "9e30"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
}

// exclusions.compression reaches the exclusion log: its segments are
// written with the configured codec, and deid verify reads them.
func TestExclusionsCompressionReachesTheLog(t *testing.T) {
	for _, codec := range []string{"snappy", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "deid.yaml")
			writeFile(t, conf, "exclusions:\n  compression: "+codec+"\n")
			out := filepath.Join(dir, "out")
			deid(t, "run", "--config", conf, "--input", "../../testdata/golden/campaigns/events.ndjson",
				"--settings", "../../testdata/golden/campaigns/settings.ndjson", "--out", out)
			segs, _ := filepath.Glob(filepath.Join(out, "exclusions", "*", "segment-*.parquet"))
			if len(segs) == 0 {
				t.Fatal("no exclusion-log segment written")
			}
			want := map[string]compress.Compression{"snappy": compress.Codecs.Snappy, "zstd": compress.Codecs.Zstd}[codec]
			for _, seg := range segs {
				rdr, err := pqfile.OpenParquetFile(seg, false)
				if err != nil {
					t.Fatal(err)
				}
				cc, err := rdr.MetaData().RowGroup(0).ColumnChunk(0)
				if err != nil {
					t.Fatal(err)
				}
				if got := cc.Compression(); got != want {
					t.Errorf("%s: codec %s, want %s", seg, got, want)
				}
				rdr.Close()
			}
			// deid verify reads the segments whatever their codec.
			deid(t, "verify", out, "--config", conf)
		})
	}
}
