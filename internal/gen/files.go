package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/gzip"
)

// SettingsFileName is the name of the settings file WriteFiles writes.
const SettingsFileName = "settings.ndjson"

// EventsFileName returns the name of partition p's events file:
// events-00.ndjson, or events-00.ndjson.gz when compressed.
func EventsFileName(p int, gz bool) string {
	name := fmt.Sprintf("events-%02d.ndjson", p)
	if gz {
		name += ".gz"
	}
	return name
}

// WriteFiles generates cfg's sample into dir: one events file per
// partition (EventsFileName) and the settings file (SettingsFileName,
// never compressed, as the consent store reads it). Files are written under
// temporary names and renamed into place once complete; events files of an
// earlier run that this one does not write (another partition count or
// compression) are removed, so dir holds exactly this sample's input.
func WriteFiles(dir string, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("gen: %w", err)
	}
	fw := &fileWriter{}
	defer fw.abort()
	var err error
	if fw.settings, err = newOutFile(filepath.Join(dir, SettingsFileName), false); err != nil {
		return Stats{}, err
	}
	for p := range cfg.Partitions {
		f, err := newOutFile(filepath.Join(dir, EventsFileName(p, cfg.Gzip)), cfg.Gzip)
		if err != nil {
			return Stats{}, err
		}
		fw.events = append(fw.events, f)
	}
	stats, err := Generate(cfg, fw)
	if err != nil {
		return Stats{}, err
	}
	if err := fw.commit(); err != nil {
		return Stats{}, err
	}
	if err := removeStale(dir, cfg); err != nil {
		return Stats{}, err
	}
	return stats, nil
}

// removeStale removes events files of other partition counts or
// compression than cfg's.
func removeStale(dir string, cfg Config) error {
	keep := map[string]bool{}
	for p := range cfg.Partitions {
		keep[EventsFileName(p, cfg.Gzip)] = true
	}
	for _, pat := range []string{"events-[0-9][0-9]*.ndjson", "events-[0-9][0-9]*.ndjson.gz"} {
		old, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range old {
			if !keep[filepath.Base(f)] {
				if err := os.Remove(f); err != nil {
					return fmt.Errorf("gen: removing a stale events file: %w", err)
				}
			}
		}
	}
	return nil
}

// fileWriter is the Writer of WriteFiles.
type fileWriter struct {
	settings *outFile
	events   []*outFile
}

func (w *fileWriter) Event(p int, _, line []byte) error { return w.events[p].writeLine(line) }

func (w *fileWriter) Setting(_, line []byte) error { return w.settings.writeLine(line) }

func (w *fileWriter) commit() error {
	for _, f := range append([]*outFile{w.settings}, w.events...) {
		if err := f.commit(); err != nil {
			return err
		}
	}
	return nil
}

// abort removes every temporary file not committed.
func (w *fileWriter) abort() {
	for _, f := range append([]*outFile{w.settings}, w.events...) {
		if f != nil {
			f.abort()
		}
	}
}

// outFile is a file written under a temporary name, optionally gzipped.
type outFile struct {
	path, tmp string
	f         *os.File
	zw        *gzip.Writer
	bw        *bufio.Writer
	done      bool
}

func newOutFile(path string, gz bool) (*outFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	o := &outFile{path: path, tmp: f.Name(), f: f}
	var dst io.Writer = f
	if gz {
		o.zw, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
		dst = o.zw
	}
	o.bw = bufio.NewWriterSize(dst, 256<<10)
	return o, nil
}

func (o *outFile) writeLine(line []byte) error {
	o.bw.Write(line)
	if err := o.bw.WriteByte('\n'); err != nil {
		return fmt.Errorf("gen: writing %s: %w", o.path, err)
	}
	return nil
}

// commit flushes, syncs and renames the file into place.
func (o *outFile) commit() error {
	err := o.bw.Flush()
	if o.zw != nil {
		err = errors.Join(err, o.zw.Close())
	}
	err = errors.Join(err, o.f.Sync(), o.f.Chmod(0o644), o.f.Close())
	if err == nil {
		err = os.Rename(o.tmp, o.path)
	}
	if err != nil {
		return fmt.Errorf("gen: writing %s: %w", o.path, err)
	}
	o.done = true
	return nil
}

func (o *outFile) abort() {
	if !o.done {
		o.f.Close()
		os.Remove(o.tmp)
	}
}
