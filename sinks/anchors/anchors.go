package anchors

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Kinds of anchored chains.
const (
	// KindDataset anchors a dataset window's manifest; Window names it.
	KindDataset = "dataset"
	// KindChain anchors an exclusion-log segment (of a partition's chain
	// or the publish chain); Seq names it.
	KindChain = "chain"
)

// Events of a line.
const (
	// EventCommit: the file named by Window or Seq was committed with
	// SHA256, and is the chain's head.
	EventCommit = "commit"
	// EventRollback: a restart rolled the exclusion chain back to segment
	// Seq (whose SHA-256 is SHA256): the segments after it that were
	// anchored before this line are withdrawn, and will be written again.
	EventRollback = "rollback"
)

// Line is one anchor: what was committed, where, and its hash.
type Line struct {
	// Kind is KindDataset or KindChain.
	Kind string `json:"kind"`
	// Name is the dataset's name, or the exclusion chain's ("publish",
	// "events-00.ndjson[0]").
	Name string `json:"name"`
	// Window is a dataset window's directory under its dataset:
	// "dt=2026-11-03", "dt=2026-11-03/hour=05".
	Window string `json:"window,omitempty"`
	// Seq is an exclusion segment's sequence number (from 1).
	Seq int `json:"seq,omitempty"`
	// Event is EventCommit or EventRollback.
	Event string `json:"event"`
	// SHA256 is the hex SHA-256 of the committed file: the chain's head
	// after the commit.
	SHA256 string `json:"sha256"`
	// Prev is the head before it: the SHA-256 of the previous manifest of
	// the dataset or the previous segment of the chain, "" for the first.
	Prev string `json:"prev_sha256"`
	// Time is when the line was appended (UTC).
	Time time.Time `json:"time"`
}

// Key names what a line anchors: "dataset campaign_metrics dt=2026-11-03",
// "chain publish segment 4".
func (l *Line) Key() string {
	if l.Kind == KindDataset {
		return fmt.Sprintf("window %s %s", l.Name, l.Window)
	}
	return fmt.Sprintf("exclusion chain %s segment %d", l.Name, l.Seq)
}

// Anchorer appends anchor lines. Anchor blocks until the line is durable
// (fsynced, or acknowledged by every in-sync replica); ctx cancels the
// wait. Implementations are safe for concurrent use.
type Anchorer interface {
	Anchor(ctx context.Context, l Line) error
}

// Config says where anchors go. Both may be set; neither means no anchors.
type Config struct {
	// File is the anchor log file, appended to (flag --anchors). It must
	// not be inside the output directory.
	File string `yaml:"file"`
	// Topic is a Kafka topic with infinite retention (retention.ms=-1),
	// produced to through the kafka section's connection settings (its
	// brokers are then required, in file mode too). Another trust domain
	// than the output's storage.
	Topic string `yaml:"topic"`
}

// Enabled tells whether any anchor log is configured.
func (c Config) Enabled() bool { return c.File != "" || c.Topic != "" }

// Validate reports every problem, each prefixed with its YAML path. out is
// the output directory the anchors are for: an anchor file inside it would
// be deleted with what it anchors.
func (c Config) Validate(out string) error {
	var errs []error
	if c.File != "" && out != "" && !strings.Contains(out, "://") {
		inside, err := Within(c.File, out)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("anchors.file: %w", err))
		case inside:
			errs = append(errs, fmt.Errorf("anchors.file: %s is inside the output directory %s: whoever can truncate the output could truncate the anchors with it; put the anchor log on another disk or host (or use anchors.topic)", c.File, out))
		}
	}
	if u, o := strings.TrimSuffix(c.File, "/"), strings.TrimSuffix(out, "/"); strings.Contains(c.File, "://") && o != "" && (u == o || strings.HasPrefix(u, o+"/")) {
		errs = append(errs, fmt.Errorf("anchors.file: %s is inside the output %s: whoever can truncate the output could truncate the anchors with it; put the anchor log in another bucket or store (or use anchors.topic)", c.File, out))
	}
	if c.Topic != "" && !validTopic(c.Topic) {
		errs = append(errs, fmt.Errorf("anchors.topic: %q is not a Kafka topic name (ASCII letters, digits, '.', '_', '-'; at most 249)", c.Topic))
	}
	if c.File != "" && strings.HasSuffix(c.File, string(filepath.Separator)) {
		errs = append(errs, fmt.Errorf("anchors.file: %s names a directory; name a file, e.g. /var/lib/deid-anchors/anchors.ndjson", c.File))
	}
	return errors.Join(errs...)
}

// Within tells whether path is dir or lies under it, following the
// symbolic links of the parts that exist.
func Within(path, dir string) (bool, error) {
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))), nil
}

// resolve returns path absolute, with the symbolic links of its longest
// existing prefix resolved.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// File appends anchor lines to a file: opened O_APPEND, each line written
// whole in one write and fsynced. It implements Anchorer; safe for
// concurrent use.
type File struct {
	mu  sync.Mutex
	f   *os.File
	now func() time.Time
}

var _ Anchorer = (*File)(nil)

// OpenFile opens (creating it, and fsyncing its directory) the anchor file
// at path for appending.
func OpenFile(path string) (*File, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("anchors: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("anchors: %w", err)
		}
	}
	return &File{f: f, now: time.Now}, nil
}

// Anchor appends l as one JSON line, its Time set to now when zero, and
// fsyncs the file.
func (a *File) Anchor(ctx context.Context, l Line) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.Time.IsZero() {
		l.Time = a.now()
	}
	l.Time = l.Time.UTC()
	b, err := json.Marshal(&l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("anchors: the anchor file is closed")
	}
	if _, err := a.f.Write(b); err != nil {
		return fmt.Errorf("anchors: appending to %s: %w", a.f.Name(), err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("anchors: fsyncing %s: %w", a.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Multi appends every line to each of its anchorers, in order; it fails on
// the first that fails.
type Multi []Anchorer

// Anchor appends l to each.
func (m Multi) Anchor(ctx context.Context, l Line) error {
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	for _, a := range m {
		if err := a.Anchor(ctx, l); err != nil {
			return err
		}
	}
	return nil
}

// Read parses an anchor log. A last line without its newline that does not
// parse was torn by a crash while it was appended, and is returned as torn
// rather than failing; any other line that does not parse is an error
// naming it.
func Read(r io.Reader) (lines []Line, torn bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		b, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var l Line
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			perr := dec.Decode(&l)
			if perr == nil {
				perr = l.check()
			}
			switch {
			case perr != nil && rerr == io.EOF && !bytes.HasSuffix(b, []byte("\n")):
				return lines, true, nil
			case perr != nil:
				return lines, false, fmt.Errorf("line %d: %w", n, perr)
			}
			lines = append(lines, l)
		}
		if rerr == io.EOF {
			return lines, false, nil
		}
		if rerr != nil {
			return lines, false, rerr
		}
	}
}

// ReadFile reads the anchor log at path (see Read).
func ReadFile(path string) ([]Line, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	lines, torn, err := Read(f)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return lines, torn, nil
}

// check tells what is wrong with a decoded line, if anything.
func (l *Line) check() error {
	rollbackToEmpty := l.Kind == KindChain && l.Event == EventRollback && l.Seq == 0 && l.SHA256 == ""
	switch {
	case l.Name == "":
		return errors.New("no name")
	case len(l.SHA256) != 64 && !rollbackToEmpty:
		return fmt.Errorf("sha256 %q is not a hex SHA-256", l.SHA256)
	}
	switch l.Kind {
	case KindDataset:
		if l.Window == "" || l.Event != EventCommit {
			return errors.New("a dataset anchor needs a window and the event commit")
		}
	case KindChain:
		if l.Seq < 0 || (l.Seq == 0 && !rollbackToEmpty) || (l.Event != EventCommit && l.Event != EventRollback) {
			return errors.New("a chain anchor needs a segment number and the event commit or rollback")
		}
	default:
		return fmt.Errorf("kind %q is neither %q nor %q", l.Kind, KindDataset, KindChain)
	}
	return nil
}
