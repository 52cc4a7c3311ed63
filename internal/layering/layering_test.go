package layering

import (
	"bufio"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rule forbids the packages under from to depend on any under one of to.
type rule struct {
	from string
	to   []string
}

// rules are the directions data does not flow in, as module-relative
// package paths.
var rules = []rule{
	{"sinks", []string{"sources"}},
	{"transforms", []string{"sources"}},
	{"pipeline", []string{"sources", "transforms", "sinks"}},
}

// pkg is one of the module's packages: its imports from its code, and
// those its tests add.
type pkg struct {
	imports, testImports []string
}

// TestImportsFollowTheData reads every package of the module and reports
// each import that runs against the flow of data.
func TestImportsFollowTheData(t *testing.T) {
	root, module, err := findModule()
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := readPackages(root, module)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pipeline", "sinks/kafkadlq", "sources/kafka"} {
		if _, ok := pkgs[want]; !ok {
			t.Fatalf("package %s not found under %s: the walk is broken", want, root)
		}
	}
	for _, v := range violations(pkgs, module) {
		t.Error(v)
	}
}

// TestViolationsNamesEveryImportAgainstTheFlow checks the check on small
// module graphs, direct and indirect, in code and in tests.
func TestViolationsNamesEveryImportAgainstTheFlow(t *testing.T) {
	const m = "example.com/m"
	tests := []struct {
		name string
		pkgs map[string]pkg
		want []string
	}{
		{"imports along the flow are fine", map[string]pkg{
			"pipeline":       {},
			"sources/kafka":  {imports: []string{m + "/pipeline", m + "/internal/conn"}},
			"sinks/dlq":      {imports: []string{m + "/pipeline", m + "/internal/conn"}},
			"transforms/agg": {imports: []string{m + "/pipeline"}},
			"internal/conn":  {imports: []string{"fmt"}},
			"cmd/m":          {imports: []string{m + "/sources/kafka", m + "/sinks/dlq", m + "/transforms/agg"}},
		}, nil},
		{"a sink importing a source is reported", map[string]pkg{
			"sinks/dlq":     {imports: []string{m + "/sources/kafka"}},
			"sources/kafka": {},
		}, []string{"sinks/dlq imports sources/kafka (via sinks/dlq → sources/kafka): sinks must not depend on sources"}},
		{"an import through an internal package is reported", map[string]pkg{
			"transforms/agg": {imports: []string{m + "/internal/x"}},
			"internal/x":     {imports: []string{m + "/sources/file"}},
			"sources/file":   {},
		}, []string{"transforms/agg imports sources/file (via transforms/agg → internal/x → sources/file): transforms must not depend on sources"}},
		{"a test importing a source is reported", map[string]pkg{
			"sinks/dlq":     {testImports: []string{m + "/sources/kafka"}},
			"sources/kafka": {},
		}, []string{"sinks/dlq (tests) imports sources/kafka (via sinks/dlq → sources/kafka): sinks must not depend on sources"}},
		{"the pipeline imports no source, transform or sink", map[string]pkg{
			"pipeline":       {imports: []string{m + "/sinks/dlq", m + "/transforms/agg"}},
			"sinks/dlq":      {},
			"transforms/agg": {},
		}, []string{
			"pipeline imports sinks/dlq (via pipeline → sinks/dlq): pipeline must not depend on sinks",
			"pipeline imports transforms/agg (via pipeline → transforms/agg): pipeline must not depend on transforms",
		}},
		{"a package merely named like a source is not one", map[string]pkg{
			"sinks/dlq":   {imports: []string{m + "/sourcesx"}},
			"sourcesx":    {},
			"pipelinexyz": {imports: []string{m + "/sinks/dlq"}},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, violations(tt.pkgs, m)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

// violations lists, sorted, every package of pkgs (keyed by
// module-relative path) whose code or tests depend on a package a rule
// forbids it, with the chain of imports that leads there.
func violations(pkgs map[string]pkg, module string) []string {
	var out []string
	for name, p := range pkgs {
		for _, r := range rules {
			if !under(name, r.from) {
				continue
			}
			report := func(label string, roots []string) {
				for _, path := range reach(pkgs, module, name, roots) {
					dep := path[len(path)-1]
					for _, to := range r.to {
						if under(dep, to) {
							out = append(out, fmt.Sprintf("%s imports %s (via %s): %s must not depend on %s",
								label, dep, strings.Join(path, " → "), r.from, to))
						}
					}
				}
			}
			report(name, p.imports)
			report(name+" (tests)", p.testImports)
		}
	}
	sort.Strings(out)
	return out
}

// reach returns, for every module package reachable from the imports roots
// of from through the code imports of module packages, the shortest chain
// from from to it.
func reach(pkgs map[string]pkg, module, from string, roots []string) [][]string {
	rel := func(imp string) (string, bool) {
		r, ok := strings.CutPrefix(imp, module+"/")
		return r, ok
	}
	var out [][]string
	seen := map[string]bool{from: true}
	var queue [][]string
	for _, imp := range roots {
		if r, ok := rel(imp); ok && !seen[r] {
			seen[r] = true
			queue = append(queue, []string{from, r})
		}
	}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		out = append(out, path)
		for _, imp := range pkgs[path[len(path)-1]].imports {
			if r, ok := rel(imp); ok && !seen[r] {
				seen[r] = true
				queue = append(queue, append(slices.Clone(path), r))
			}
		}
	}
	return out
}

// under tells whether the module-relative package path p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// findModule walks up from the working directory to go.mod and returns
// its directory and module path.
func findModule() (root, module string, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(m), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// readPackages reads the imports of every package under root, keyed by
// module-relative path, skipping testdata and hidden directories (and
// anything else the go tool ignores).
func readPackages(root, module string) (map[string]pkg, error) {
	pkgs := map[string]pkg{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if n := d.Name(); path != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		bp, err := build.Default.ImportDir(path, 0)
		if err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil
			}
			return fmt.Errorf("reading the package in %s: %w", path, err)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		tests := append(slices.Clone(bp.TestImports), bp.XTestImports...)
		pkgs[filepath.ToSlash(rel)] = pkg{imports: bp.Imports, testImports: tests}
		return nil
	})
	return pkgs, err
}
