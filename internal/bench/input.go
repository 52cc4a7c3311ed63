package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mya/deid/internal/gen"
)

// Input is a generated benchmark input: one NDJSON file per partition and
// the settings file, in one directory.
type Input struct {
	// Dir holds the files.
	Dir string `json:"dir"`
	// Events are the event files, one per partition.
	Events []string `json:"events"`
	// Settings is the settings file.
	Settings string `json:"settings"`
	// Lines is the number of event lines; Bytes their size on disk.
	Lines int64 `json:"lines"`
	Bytes int64 `json:"bytes"`
	// Workspaces and Days are the generator's.
	Workspaces int   `json:"workspaces"`
	Days       int   `json:"days"`
	Seed       int64 `json:"seed"`
	Partitions int   `json:"partitions"`
	// Fingerprint identifies the generator's output; the cache is
	// rebuilt when it changes.
	Fingerprint string `json:"fingerprint"`
}

// MeanEventBytes is the mean size of an event line, newline included.
func (in *Input) MeanEventBytes() float64 {
	if in.Lines == 0 {
		return 0
	}
	return float64(in.Bytes) / float64(in.Lines)
}

// stampName is the file, beside the input, that records it once complete.
const stampName = "input.json"

// Prepare returns the input cfg describes, generating it under cacheDir
// unless a complete copy from the same generator is already there. The
// directory is named after cfg, so inputs of several sizes coexist; a
// generator change (a different fingerprint) regenerates it.
func Prepare(cacheDir string, cfg gen.Config, logf func(string, ...any)) (*Input, error) {
	fp, err := Fingerprint(cfg)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, fmt.Sprintf("seed%d-events%d-p%d-ws%d-days%d", cfg.Seed, cfg.Events,
		cfg.Partitions, cfg.Workspaces, cfg.Days))
	switch in, stale, err := cached(dir, fp); {
	case err != nil:
		return nil, err
	case in != nil:
		return in, nil
	case stale:
		logf("bench: the cached input in %s is from another generator; regenerating", dir)
	}
	logf("bench: generating %d events in %d partitions into %s (once; cached)", cfg.Events, cfg.Partitions, dir)
	os.Remove(filepath.Join(dir, stampName))
	st, err := WriteInput(dir, cfg)
	if err != nil {
		return nil, err
	}
	in := &Input{Dir: dir, Settings: filepath.Join(dir, gen.SettingsFileName), Lines: st.Events,
		Workspaces: cfg.Workspaces, Days: cfg.Days, Seed: cfg.Seed, Partitions: cfg.Partitions, Fingerprint: fp}
	for p := range cfg.Partitions {
		f := filepath.Join(dir, gen.EventsFileName(p, cfg.Gzip))
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		in.Events = append(in.Events, f)
		in.Bytes += fi.Size()
	}
	return in, in.record()
}

// cached returns the input whose stamp in dir has fingerprint fp, when the
// input is complete; stale tells that a stamp is there but names another
// input or an incomplete one.
func cached(dir, fp string) (in *Input, stale bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stampName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	var c Input
	if json.Unmarshal(b, &c) == nil && c.Fingerprint == fp && c.complete() {
		return &c, false, nil
	}
	return nil, true, nil
}

// record writes the input's stamp, which makes it a cached input.
func (in *Input) record() error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(in.Dir, stampName), b, 0o644)
}

// WriteInput generates the input files; Prepare calls it. deid-bench sets it
// to a child process (WriteInputCommand): on Linux a child's peak RSS starts
// from its parent's at the fork, so a generator run in the benchmark's own
// process would show in the peak RSS of every contender that follows.
var WriteInput = gen.WriteFiles

// WriteInputCommand is the deid-bench subcommand that generates an input:
// write-input DIR CONFIG-JSON, printing the generator's stats as JSON.
const WriteInputCommand = "write-input"

// WriteInputChild returns a WriteInput that runs exe's WriteInputCommand.
func WriteInputChild(exe string) func(string, gen.Config) (gen.Stats, error) {
	return func(dir string, cfg gen.Config) (gen.Stats, error) {
		var st gen.Stats
		c, err := json.Marshal(cfg)
		if err != nil {
			return st, err
		}
		cmd := exec.Command(exe, WriteInputCommand, dir, string(c))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return st, fmt.Errorf("generating the input in a child process: %w", err)
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return st, fmt.Errorf("generating the input: reading the child's stats: %w", err)
		}
		return st, nil
	}
}

// complete tells whether every file of the input is there with its size.
func (in *Input) complete() bool {
	var size int64
	for _, f := range append([]string{in.Settings}, in.Events...) {
		fi, err := os.Stat(f)
		if err != nil {
			return false
		}
		if f != in.Settings {
			size += fi.Size()
		}
	}
	return size == in.Bytes && len(in.Events) == in.Partitions
}

// Fingerprint hashes a small sample of cfg's generator, so that a change
// to the generator (its vocabulary, sizes or hazards) is noticed and the
// cached input rebuilt.
func Fingerprint(cfg gen.Config) (string, error) {
	small := cfg
	small.Events, small.Gzip = 4000, false
	h := &hashWriter{h: sha256.New()}
	if _, err := gen.Generate(small, h); err != nil {
		return "", err
	}
	fmt.Fprintf(h.h, "%d/%d/%d/%d/%d", cfg.Seed, cfg.Events, cfg.Partitions, cfg.Workspaces, cfg.Days)
	return hex.EncodeToString(h.h.Sum(nil)[:8]), nil
}

type hashWriter struct {
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func (w *hashWriter) Event(p int, key, line []byte) error {
	fmt.Fprintf(w.h, "%d:", p)
	w.h.Write(line)
	return nil
}

func (w *hashWriter) Setting(key, line []byte) error {
	w.h.Write(line)
	return nil
}
