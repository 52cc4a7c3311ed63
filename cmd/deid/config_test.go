package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigs loads every testdata/config/*.yaml: the good ones validate, the
// bad ones fail with messages that name the key and the fix.
func TestConfigs(t *testing.T) {
	bad := map[string][]string{
		"misspelled.bad.yaml": {"field windw not found"},
		"values.bad.yaml": {
			`mode: must be "file" or "kafka" (got "stream")`,
			"pipeline.window: must be at least 1m and divide 24h evenly",
			"pipeline.allowed_lateness: must not be negative",
			`consent.unknown_workspaces: must be "exclude" or "include"`,
			"parquet.compression:",
			"shutdown_timeout: must be positive",
			"memory_limit: 1MiB is below the 64MiB",
		},
		"memory.bad.yaml":  {`"lots" is not a size; write bytes or a number with a unit, e.g. 512MiB`},
		"kafka.bad.yaml":   {"kafka.brokers:", "settings_topic:", "state_dir:"},
		"consent.bad.yaml": {`consent.unattributable: must be "fail" or "skip" (got "ignore")`},
		"anchors.bad.yaml": {"anchors.file: out/anchors.ndjson is inside the output directory out",
			"anchors.topic: produced through the kafka section's connection settings, which are incomplete"},
	}
	files, _ := filepath.Glob("../../testdata/config/*.yaml")
	if len(files) < 5 {
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
