package verify

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mya/deid/sinks/parquet"
)

// datasetWindows returns the readable windows of each dataset, by window
// start.
func (v *verifier) datasetWindows() map[string][]*Window {
	by := map[string][]*Window{}
	for _, w := range v.windows() {
		by[w.Manifest.Dataset] = append(by[w.Manifest.Dataset], w)
	}
	for _, ws := range by {
		slices.SortFunc(ws, func(a, b *Window) int { return a.Manifest.Window.Start.Compare(b.Manifest.Window.Start) })
	}
	return by
}

// windowDir returns a window's directory under its dataset, as manifests
// and anchors name it ("dt=2026-11-03").
func (v *verifier) windowDir(w *Window) string {
	rel, err := filepath.Rel(filepath.Join(v.out.Dir, "datasets", w.Manifest.Dataset), w.Dir())
	if err != nil {
		return w.Dir()
	}
	return filepath.ToSlash(rel)
}

// checkManifestChains checks that each dataset's manifests form one chain:
// each names the SHA-256 of the manifest committed before it, the first
// none. A window deleted or replaced inside the chain breaks it; the
// newest window is checked against the anchor log (checkAnchors).
func (v *verifier) checkManifestChains() error {
	const sec = SectionFiles
	by := v.datasetWindows()
	if len(by) == 0 {
		return nil
	}
	var problems []string
	counts := map[string]int{}
	for _, ds := range sortedKeys(by) {
		ws := by[ds]
		counts[ds] = len(ws)
		present := map[string]bool{}
		for _, w := range ws {
			present[v.windowDir(w)] = true
		}
		var want parquet.Previous
		for _, w := range ws {
			m, dir := w.Manifest, v.windowDir(w)
			got := m.Previous
			switch {
			case got == want:
			case got.SHA256 == "" && want.SHA256 != "":
				problems = append(problems, fmt.Sprintf("window %s %s names no previous manifest, but %s was committed before it: it was replaced",
					ds, dir, want.Window))
			case got.Window != want.Window && !present[got.Window]:
				problems = append(problems, fmt.Sprintf("window %s %s is missing: the manifest of %s chains to it (SHA-256 %s…); it was deleted",
					ds, got.Window, dir, short(got.SHA256)))
			case got.Window != want.Window:
				problems = append(problems, fmt.Sprintf("window %s %s chains to %s, but %s lies between them: the chain was rewritten",
					ds, dir, got.Window, want.Window))
			default:
				problems = append(problems, fmt.Sprintf("window %s %s was replaced or edited: its manifest's SHA-256 is %s…, but %s chained to %s…",
					ds, want.Window, short(want.SHA256), dir, short(got.SHA256)))
			}
			sum, _, err := hashFile(w.Path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", v.out.rel(w.Path), err))
			}
			want = parquet.Previous{Window: dir, SHA256: sum}
		}
	}
	v.r.add(sec, problems,
		fmt.Sprintf("the manifests of each dataset form one unbroken chain (%s): no window between a dataset's first and newest was deleted or replaced", countsBy(counts)),
		fmt.Sprintf("the manifest chains are broken: %s", many(len(problems), "problem")))
	return nil
}

// heads returns the newest link of every chain of the output: each
// dataset's newest manifest and each exclusion chain's newest segment.
func (v *verifier) heads() []Head {
	var hs []Head
	by := v.datasetWindows()
	for _, ds := range sortedKeys(by) {
		ws := by[ds]
		w := ws[len(ws)-1]
		sum, _, err := hashFile(w.Path)
		if err != nil {
			continue
		}
		hs = append(hs, Head{Kind: "dataset", Name: ds, Window: v.windowDir(w), SHA256: sum})
	}
	for _, c := range v.out.Chains {
		if c.Report == nil || len(c.Report.Segments) == 0 {
			continue
		}
		s := c.Report.Segments[len(c.Report.Segments)-1]
		hs = append(hs, Head{Kind: "chain", Name: c.Name, Seq: s.Seq, SHA256: s.SHA256})
	}
	return hs
}

// Head is the newest link of one chain of the output.
type Head struct {
	// Kind is "dataset" or "chain" (an exclusion-log chain).
	Kind string
	// Name is the dataset's or the chain's.
	Name string
	// Window is a dataset's newest window directory ("dt=2026-11-03").
	Window string
	// Seq is a chain's newest segment number.
	Seq int
	// SHA256 is the hex SHA-256 of the manifest or segment.
	SHA256 string
}

// String renders the head in one line: "dataset campaign_metrics
// dt=2026-11-03 <sha256>".
func (h Head) String() string {
	if h.Kind == "dataset" {
		return fmt.Sprintf("dataset %s %s %s", h.Name, h.Window, h.SHA256)
	}
	return fmt.Sprintf("chain %s segment %d %s", h.Name, h.Seq, h.SHA256)
}

// HeadsText renders heads one per line, indented.
func HeadsText(hs []Head) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "  %s\n", h)
	}
	return b.String()
}
