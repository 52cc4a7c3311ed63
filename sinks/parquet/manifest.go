package parquet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mya/deid/pipeline"
)

// ManifestVersion is the version of the manifest format written.
const ManifestVersion = 1

// Manifest is the content of a window's _manifest.json: what was published,
// under which parameters, and the accounting that ties it to the input. Its
// fields are written in this order.
type Manifest struct {
	ManifestVersion int    `json:"manifest_version"`
	Dataset         string `json:"dataset"`
	SchemaVersion   int    `json:"schema_version"`
	PipelineVersion string `json:"pipeline_version"`
	PolicyVersion   string `json:"policy_version"`
	Window          Window `json:"window"`
	// Rows is the total of the files' rows.
	Rows  int64  `json:"rows"`
	Files []File `json:"files"`
	// Privacy is the dataset's privacy parameters (SPEC §7).
	Privacy Privacy  `json:"privacy"`
	Columns []Column `json:"columns"`
	// Accounting is the window's events: contributed = published +
	// withdrawn + suppressed.
	Accounting pipeline.WindowAccounting `json:"accounting"`
	// Partitions is each input partition's accounting up to the position
	// at which it closed this window: the input covered.
	Partitions []pipeline.PartitionAccounting `json:"partitions"`
	// ExclusionChainHeads maps each exclusion-log chain to the hex SHA-256
	// of its newest segment at publication.
	ExclusionChainHeads map[string]string `json:"exclusion_chain_heads"`
}

// Window is a manifest's window, in RFC 3339 UTC.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// File is one data file of a window.
type File struct {
	// Path is relative to the manifest's directory.
	Path      string `json:"path"`
	Rows      int64  `json:"rows"`
	RowGroups int    `json:"row_groups"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
}

// Privacy is a dataset's privacy parameters as the manifest records them.
type Privacy struct {
	K                 int      `json:"k"`
	DominanceN        int      `json:"dominance_n"`
	DominanceK        int      `json:"dominance_k"`
	PPercent          int      `json:"p_percent"`
	DominanceMeasures []string `json:"dominance_measures"`
	ProtectedEntities []string `json:"protected_entities"`
}

func newManifest(out *pipeline.WindowOutput, files []File) *Manifest {
	spec := out.Spec
	m := &Manifest{
		ManifestVersion: ManifestVersion,
		Dataset:         spec.Name,
		SchemaVersion:   spec.SchemaVersion,
		PipelineVersion: out.PipelineVersion,
		PolicyVersion:   out.PolicyVersion,
		Window: Window{Start: time.UnixMicro(out.Window.Start).UTC(),
			End: time.UnixMicro(out.Window.End).UTC()},
		Files: files,
		Privacy: Privacy{K: spec.Privacy.K, DominanceN: spec.Privacy.DominanceN, DominanceK: spec.Privacy.DominanceK,
			PPercent: spec.Privacy.PPercent, DominanceMeasures: nonNil(slices.Clone(spec.Privacy.DominanceMeasures)),
			ProtectedEntities: []string{}},
		Columns:             Columns(spec),
		Accounting:          out.Acct,
		Partitions:          nonNil(out.Partitions),
		ExclusionChainHeads: out.ChainHeads,
	}
	for _, f := range files {
		m.Rows += f.Rows
	}
	for _, e := range spec.Entities {
		if e.Protected {
			m.Privacy.ProtectedEntities = append(m.Privacy.ProtectedEntities, e.Name)
		}
	}
	if m.ExclusionChainHeads == nil {
		m.ExclusionChainHeads = map[string]string{}
	}
	return m
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// marshal renders the manifest as indented JSON, ending in a newline. Map
// keys come out sorted, so the same manifest gives the same bytes.
func (m *Manifest) marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadManifest reads and decodes a _manifest.json, rejecting unknown
// fields and manifest versions.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if m.ManifestVersion != ManifestVersion {
		return nil, fmt.Errorf("manifest %s: manifest_version %d, want %d", path, m.ManifestVersion, ManifestVersion)
	}
	return &m, nil
}

// ListManifests returns the paths of every committed window's manifest
// under <outDir>/datasets, sorted. A directory without a manifest is not
// committed and is not listed.
func ListManifests(outDir string) ([]string, error) {
	root := filepath.Join(outDir, "datasets")
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && d.Name() == ManifestName {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	return paths, nil
}
