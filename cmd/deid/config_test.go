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
		},
		"kafka.bad.yaml": {"kafka.brokers:", "settings_topic:", "state_dir:"},
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
