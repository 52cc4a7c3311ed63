package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sinks/signing"
)

// checkFiles checks every manifest and every file it lists.
func (v *verifier) checkFiles() error {
	const sec = SectionFiles
	var bad []string
	byDataset := map[string]int{}
	for _, w := range v.out.Manifests {
		rel := v.out.rel(w.Path)
		if w.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: unreadable: %v", rel, w.Err))
			continue
		}
		m := w.Manifest
		byDataset[m.Dataset]++
		want, err := parquet.PartitionPath(w.Window())
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: window %s–%s: %v", rel, day(m.Window.Start), day(m.Window.End), err))
		case filepath.Join(v.out.Dir, "datasets", m.Dataset, want) != w.Dir():
			bad = append(bad, fmt.Sprintf("%s: records dataset %s window %s, which belongs in datasets/%s/%s: it was moved",
				rel, m.Dataset, day(m.Window.Start), m.Dataset, filepath.ToSlash(want)))
		}
	}
	switch n := len(v.out.Manifests); {
	case n == 0:
		v.r.note(sec, "no window has been published yet: there is no manifest under datasets/")
	default:
		v.r.add(sec, bad, fmt.Sprintf("%d window manifests read (%s)", n, countsBy(byDataset)),
			fmt.Sprintf("%d of %d manifests are unreadable or misplaced", len(bad), n))
	}

	// The files each manifest lists, and nothing else beside them.
	var problems []string
	files, rows := 0, int64(0)
	var bytes int64
	for _, w := range v.windows() {
		m := w.Manifest
		rel := v.out.rel(w.Dir())
		listed := map[string]bool{parquet.ManifestName: true, parquet.ManifestName + signing.Suffix: true}
		var total int64
		for _, f := range m.Files {
			listed[f.Path] = true
			files++
			bytes += f.Bytes
			total += f.Rows
			path := filepath.Join(w.Dir(), f.Path)
			if strings.Contains(f.Path, "/") || strings.Contains(f.Path, `\`) || f.Path == ".." {
				problems = append(problems, fmt.Sprintf("%s: lists %q, which is not a file beside the manifest", rel, f.Path))
				continue
			}
			sum, size, err := hashFile(path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: listed by the manifest but %v", rel, f.Path, errText(err)))
				continue
			}
			if size != f.Bytes {
				problems = append(problems, fmt.Sprintf("%s/%s: %d bytes, the manifest says %d", rel, f.Path, size, f.Bytes))
			}
			if sum != f.SHA256 {
				problems = append(problems, fmt.Sprintf("%s/%s: SHA-256 %s…, the manifest says %s…: the file was changed after it was committed",
					rel, f.Path, sum[:12], short(f.SHA256)))
				continue
			}
			n, groups, meta, err := parquetFacts(path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: not a readable Parquet file: %v", rel, f.Path, err))
				continue
			}
			rows += n
			if n != f.Rows || groups != f.RowGroups {
				problems = append(problems, fmt.Sprintf("%s/%s: %d rows in %d row groups, the manifest says %d in %d",
					rel, f.Path, n, groups, f.Rows, f.RowGroups))
			}
			for _, p := range metaMismatches(meta, w) {
				problems = append(problems, fmt.Sprintf("%s/%s: %s", rel, f.Path, p))
			}
		}
		if total != m.Rows {
			problems = append(problems, fmt.Sprintf("%s: the files hold %d rows, the manifest's total says %d", rel, total, m.Rows))
		}
		ents, err := os.ReadDir(w.Dir())
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, err))
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if listed[n] || e.IsDir() || (strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp")) {
				continue
			}
			if strings.HasSuffix(n, ".parquet") {
				problems = append(problems, fmt.Sprintf("%s/%s: a data file the manifest does not list: readers of the dataset would read it", rel, n))
			} else {
				problems = append(problems, fmt.Sprintf("%s/%s: an unexpected file in a window directory", rel, n))
			}
		}
	}
	for _, d := range v.out.Uncommitted {
		problems = append(problems, fmt.Sprintf("%s: data files without a manifest: an uncommitted window that readers of the dataset would read",
			v.out.rel(d)))
	}
	if len(v.out.Manifests) > 0 || len(v.out.Uncommitted) > 0 {
		v.r.add(sec, problems,
			fmt.Sprintf("%d data files match their manifests' SHA-256, sizes and row counts (%d rows, %s); no unlisted file", files, rows, sizeText(bytes)),
			fmt.Sprintf("%s with the data files", many(len(problems), "problem")))
	}
	return nil
}

// parquetFacts returns a Parquet file's rows, row groups and key-value
// metadata.
func parquetFacts(path string) (int64, int, map[string]string, error) {
	rdr, err := parquet.OpenFile(path)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rdr.Close()
	kv := rdr.MetaData().KeyValueMetadata()
	meta := map[string]string{}
	for i, k := range kv.Keys() {
		meta[k] = kv.Values()[i]
	}
	return rdr.NumRows(), rdr.NumRowGroups(), meta, nil
}

// metaMismatches compares a data file's key-value metadata with its
// manifest.
func metaMismatches(meta map[string]string, w *Window) []string {
	m := w.Manifest
	want := map[string]string{
		parquet.MetaDataset:       m.Dataset,
		parquet.MetaSchemaVersion: strconv.Itoa(m.SchemaVersion),
		parquet.MetaK:             strconv.Itoa(m.Privacy.K),
		parquet.MetaWindowStart:   m.Window.Start.UTC().Format(time.RFC3339),
		parquet.MetaWindowEnd:     m.Window.End.UTC().Format(time.RFC3339),
		parquet.MetaPolicyVersion: m.PolicyVersion,
	}
	var out []string
	for _, k := range sortedKeys(want) {
		if got, ok := meta[k]; !ok || got != want[k] {
			out = append(out, fmt.Sprintf("metadata %s is %q, the manifest says %q", k, got, want[k]))
		}
	}
	return out
}

// hashFile returns a file's hex SHA-256 and size.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// errText says what an error means for a file that should be there.
func errText(err error) string {
	if os.IsNotExist(err) {
		return "missing"
	}
	return err.Error()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return `""`
	}
	return h
}

func sizeText(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
