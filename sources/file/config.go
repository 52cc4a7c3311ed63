package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config configures the file source. Its YAML home is the "input" section.
type Config struct {
	// Paths are input files, directories (every *.ndjson, *.ndjson.gz,
	// *.jsonl and *.jsonl.gz file directly inside) or glob patterns.
	Paths []string `yaml:"paths"`
	// Exclude holds base-name patterns (path.Match syntax) of files that
	// directories and globs must not yield; a file named explicitly in
	// Paths is always read.
	Exclude []string `yaml:"exclude"`
	// BatchSize is the most records Next returns at once.
	BatchSize int `yaml:"batch_size"`
	// MaxLineBytes is the longest line kept whole; a longer one becomes a
	// "too_long" malformed record holding its first MaxLineBytes bytes.
	MaxLineBytes int `yaml:"max_line_bytes"`
}

// Limits of the configuration.
const (
	// DefaultBatchSize is the default of Config.BatchSize.
	DefaultBatchSize = 1024
	// DefaultMaxLineBytes is the default of Config.MaxLineBytes (1 MiB).
	DefaultMaxLineBytes = 1 << 20
	maxBatchSize        = 1 << 20
	maxMaxLineBytes     = 256 << 20
)

// DefaultConfig returns the defaults. Exclude leaves out the settings file
// (settings.*) so that the layout "deid gen" writes, events and settings
// side by side in one directory, reads as is.
func DefaultConfig() Config {
	return Config{
		Exclude:      []string{"settings.*"},
		BatchSize:    DefaultBatchSize,
		MaxLineBytes: DefaultMaxLineBytes,
	}
}

// Validate reports every problem, each prefixed with its YAML path. It
// resolves Paths against the file system, so a missing input is reported
// before anything is read.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// inputSuffixes are the names a directory's input files end with.
var inputSuffixes = []string{".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"}

// resolve checks the settings and expands Paths to the input files, sorted
// by base name (the partition name). It reports every problem.
func (c Config) resolve() ([]string, error) {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("input.batch_size: must be between 1 and %d (got %d)", maxBatchSize, c.BatchSize))
	}
	if c.MaxLineBytes < 1 || c.MaxLineBytes > maxMaxLineBytes {
		errs = append(errs, fmt.Errorf("input.max_line_bytes: must be between 1 and %d (got %d)", maxMaxLineBytes, c.MaxLineBytes))
	}
	for _, p := range c.Exclude {
		if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("input.exclude: bad pattern %q: %v", p, err))
		}
	}
	if len(c.Paths) == 0 {
		errs = append(errs, errors.New("input.paths: no input given; set input.paths or pass --input"))
	}
	var files []string
	for _, p := range c.Paths {
		found, err := c.expand(p)
		if err != nil {
			errs = append(errs, err)
		}
		files = append(files, found...)
	}
	files, err := uniqueNames(files)
	if err != nil {
		errs = append(errs, err)
	}
	return files, errors.Join(errs...)
}

// expand returns the input files one entry of Paths stands for.
func (c Config) expand(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New(`input.paths: an empty path; remove it or name a file, directory or glob`)
	}
	if strings.ContainsAny(p, "*?[") {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("input.paths: bad glob %q: %v", p, err)
		}
		var files []string
		for _, m := range matches {
			if hidden(m) {
				continue
			}
			fi, err := os.Stat(m)
			if err != nil {
				return nil, fmt.Errorf("input.paths: %q: %v", m, err)
			}
			if fi.IsDir() {
				found, err := c.dir(m)
				if err != nil {
					return nil, err
				}
				files = append(files, found...)
			} else if !c.excluded(m) {
				files = append(files, m)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("input.paths: no input files matched %q; check the path", p)
		}
		return files, nil
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("input.paths: %q does not exist; check the path", p)
	}
	if err != nil {
		return nil, fmt.Errorf("input.paths: %q: %v", p, err)
	}
	if fi.IsDir() {
		files, err := c.dir(p)
		if err == nil && len(files) == 0 {
			err = fmt.Errorf("input.paths: directory %q holds no %s files; check the path", p, strings.Join(patterns(), ", "))
		}
		return files, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("input.paths: %q is not a regular file; name a file, a directory or a glob", p)
	}
	return []string{p}, nil
}

// dir lists the input files directly inside a directory, sorted.
func (c Config) dir(d string) ([]string, error) {
	entries, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("input.paths: reading directory %q: %v", d, err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if hidden(name) || !hasInputSuffix(name) || c.excluded(name) {
			continue
		}
		full := filepath.Join(d, name)
		if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		files = append(files, full)
	}
	return files, nil
}

func (c Config) excluded(p string) bool {
	base := filepath.Base(p)
	for _, pat := range c.Exclude {
		if ok, _ := filepath.Match(pat, base); ok {
			return true
		}
	}
	return false
}

func hidden(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }

func hasInputSuffix(name string) bool {
	for _, s := range inputSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func patterns() []string {
	out := make([]string, len(inputSuffixes))
	for i, s := range inputSuffixes {
		out[i] = "*" + s
	}
	return out
}

// uniqueNames drops repeated mentions of one file and sorts the files by
// base name; two different files with one base name are an error, since the
// base name names the partition (and its checkpoint).
func uniqueNames(files []string) ([]string, error) {
	byName := map[string]string{}
	seen := map[string]bool{}
	var out []string
	var errs []error
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			abs = filepath.Clean(f)
		}
		if seen[abs] {
			continue
		}
		seen[abs] = true
		name := filepath.Base(f)
		if other, ok := byName[name]; ok {
			errs = append(errs, fmt.Errorf("input.paths: %q and %q share the name %q, which names the partition; rename one of them", other, f, name))
			continue
		}
		byName[name] = f
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	return out, errors.Join(errs...)
}
