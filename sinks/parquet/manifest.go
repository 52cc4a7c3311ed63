package parquet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/objstore"
)

// ManifestVersion is the version of the manifest format written. Version
// 2 moved the window's accounting (withdrawn and suppressed counts, input
// positions) to the accounting record and chained the manifests.
const ManifestVersion = 2

// Manifest is the content of a window's _manifest.json: what was published
// and under which parameters. The ML team reads it, so it carries nothing
// finer than k: no withdrawn or suppressed counts and no input positions
// (those are in the window's accounting record, for compliance, which the
// manifest names by its SHA-256). Its fields are written in this order.
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
	// Privacy is the dataset's privacy parameters (contract §7).
	Privacy Privacy  `json:"privacy"`
	Columns []Column `json:"columns"`
	// Published is the rows and events published, per generalization
	// level: sums of published rows, which hold at least k of every
	// protected entity each.
	Published Published `json:"published"`
	// AccountingSHA256 is the hex SHA-256 of the window's accounting
	// record (AccountingPath), written before the manifest.
	AccountingSHA256 string `json:"accounting_sha256"`
	// ExclusionChainHeads maps each exclusion-log chain to the hex SHA-256
	// of its newest segment at publication.
	ExclusionChainHeads map[string]string `json:"exclusion_chain_heads"`
	// Previous is the manifest this output committed for the dataset just
	// before this one, so that the manifests of a dataset form a chain.
	Previous Previous `json:"previous_manifest"`
}

// Published is what a window published, per generalization level.
type Published struct {
	// RowsByLevel counts published rows per level.
	RowsByLevel map[int]int64 `json:"rows_by_level"`
	// EventsByLevel counts published events per level.
	EventsByLevel map[int]int64 `json:"events_by_level"`
}

// Previous names the previous manifest of a dataset's chain: the manifest
// this output committed for the same dataset just before (manifests of a
// dataset are committed in window order), both fields empty for the
// dataset's first window.
type Previous struct {
	// Window is its directory under the dataset: "dt=2026-11-02".
	Window string `json:"window"`
	// SHA256 is the hex SHA-256 of its _manifest.json.
	SHA256 string `json:"sha256"`
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
	// Generalization is the strategy that placed the cells that failed at
	// level 0 (contract §7); absent in manifests written before it was
	// recorded, which used the ladder.
	Generalization string `json:"generalization,omitempty"`
}

func newManifest(out *pipeline.WindowOutput, files []File, acctSHA256 string, prev Previous) *Manifest {
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
			ProtectedEntities: []string{}, Generalization: spec.Privacy.Strategy()},
		Columns: Columns(spec),
		Published: Published{RowsByLevel: nonNilMap(out.Acct.RowsByLevel),
			EventsByLevel: nonNilMap(out.Acct.EventsByLevel)},
		AccountingSHA256:    acctSHA256,
		ExclusionChainHeads: out.ChainHeads,
		Previous:            prev,
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

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
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
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeManifest(path, b)
}

// decodeManifest decodes the manifest b read from path.
func decodeManifest(path string, b []byte) (*Manifest, error) {
	// The version first, so that an older manifest is named as such
	// rather than by its first field this version does not know.
	var v struct {
		ManifestVersion int `json:"manifest_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if v.ManifestVersion != ManifestVersion {
		return nil, fmt.Errorf("manifest %s: manifest_version %d, want %d (version 1 carried the window's accounting itself and no chain: read it with the deid that wrote it, and write new runs to a new output directory)",
			path, v.ManifestVersion, ManifestVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return &m, nil
}

// ListManifests returns the paths of every committed window's manifest
// under <outDir>/datasets, sorted. A directory without a manifest is not
// committed and is not listed.
func ListManifests(outDir string) ([]string, error) {
	return listManifests(filepath.Join(outDir, "datasets"))
}

// listManifests returns the paths of the manifests under root, sorted.
func listManifests(root string) ([]string, error) {
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

// readManifestObject reads and decodes the manifest under key in st, and
// returns it with the hex SHA-256 of its bytes.
func readManifestObject(ctx context.Context, st objstore.Store, key string) (*Manifest, string, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", key, err)
	}
	m, err := decodeManifest(key, b)
	if err != nil {
		return nil, "", err
	}
	return m, sha256Hex(b), nil
}

// ReadManifestObject reads and decodes the manifest under key in the
// output st.
func ReadManifestObject(ctx context.Context, st objstore.Store, key string) (*Manifest, error) {
	m, _, err := readManifestObject(ctx, st, key)
	return m, err
}

// ListManifestKeys returns the keys of every committed window's manifest
// under prefix ("datasets/", "datasets/<dataset>/") of the output st,
// sorted.
func ListManifestKeys(ctx context.Context, st objstore.Store, prefix string) ([]string, error) {
	infos, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, in := range infos {
		if path.Base(in.Key) == ManifestName {
			keys = append(keys, in.Key)
		}
	}
	return keys, nil
}

// datasetNames lists the datasets that hold objects in the output st.
func datasetNames(ctx context.Context, st objstore.Store) ([]string, error) {
	infos, err := st.List(ctx, "datasets/")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range infos {
		name, _, ok := strings.Cut(strings.TrimPrefix(in.Key, "datasets/"), "/")
		if ok && validName(name) && (len(names) == 0 || names[len(names)-1] != name) {
			names = append(names, name)
		}
	}
	return names, nil
}
