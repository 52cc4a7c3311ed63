package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mya/deid/internal/parquettest"
	"github.com/mya/deid/internal/s3test"
	"github.com/mya/deid/pipeline"
	"github.com/mya/deid/sinks/parquet"
	"github.com/mya/deid/sinks/signing"
)

// python returns the interpreter of the read-back venv: $DEID_PYTHON, else
// .cache/venv/bin/python (scripts/pyenv.sh makes it). Without it the test
// skips, unless DEID_REQUIRE_PYTHON is set (make test sets it after running
// scripts/pyenv.sh), so CI never skips silently.
func python(t *testing.T) string {
	t.Helper()
	p := os.Getenv("DEID_PYTHON")
	if p == "" {
		p, _ = filepath.Abs("../../.cache/venv/bin/python")
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("DEID_REQUIRE_PYTHON") != "" {
		t.Fatalf("DEID_REQUIRE_PYTHON is set but %s does not exist: run scripts/pyenv.sh, or set DEID_PYTHON", p)
	}
	t.Skipf("%s missing and DEID_REQUIRE_PYTHON unset: run scripts/pyenv.sh to make it", p)
	return ""
}

// readback is what scripts/readback.py prints.
type readback struct {
	Tools    map[string]string                       `json:"tools"`
	Datasets map[string]map[string]readbackOfOneTool `json:"datasets"`
	// Recipes holds, per dataset, the rows each of the README's reading
	// recipes read (or "error").
	Recipes map[string]map[string]any `json:"recipes"`
}

// readmeRecipes are the variables the README's reading recipes assign, one
// per tool.
var readmeRecipes = []string{"table", "frame", "plf", "rel"}

type readbackOfOneTool struct {
	Error   string `json:"error"`
	Rows    int64  `json:"rows"`
	Columns map[string]struct {
		Type string `json:"type"`
		Kind string `json:"kind"`
	} `json:"columns"`
	PartitionColumns []string `json:"partition_columns"`
	Digest           string   `json:"digest"`
}

// TestMLToolsReadTheDatasets reads every dataset of a signed copy of the
// sample run with pyarrow, pandas, polars and DuckDB (Hive partitioning on
// the dataset directory, as their users do) and checks, per tool: the row
// count equals the manifests', each column has the contract §6.3 type, and the
// values are those deid's own reader sees.
func TestMLToolsReadTheDatasets(t *testing.T) {
	if testing.Short() {
		t.Skip("reads every dataset with the Python ML tools; not with -short")
	}
	py := python(t)
	s := generatedSample(t)
	out := copyTree(t, s.out)
	// Signature files beside the manifests must not disturb any reader.
	_, priv, _ := ed25519Key()
	signAll(t, out, signing.NewEd25519(priv))

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, "../../scripts/readback.py", out, "--readme", "../../README.md")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("readback.py: %v\n%s", err, stderr.String())
	}
	var rb readback
	if err := json.Unmarshal(stdout.Bytes(), &rb); err != nil {
		t.Fatalf("readback.py printed no JSON: %v\n%s", err, stdout.String())
	}
	t.Logf("readers: %v", rb.Tools)

	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, ds := range []string{"campaign_metrics", "usage_patterns"} {
		spec := specs[slices.IndexFunc(specs, func(s *pipeline.DatasetSpec) bool { return s.Name == ds })]
		rows, digest := goDigest(t, out, ds)
		for _, c := range parquet.Columns(spec) {
			want[c.Name] = map[string]string{parquet.TypeTimestamp: "timestamp_us_utc", parquet.TypeDictStr: "string",
				parquet.TypeInt32: "int32", parquet.TypeInt64: "int64", parquet.TypeDouble: "double"}[c.Type]
		}
		recipes := rb.Recipes[ds]
		if e, ok := recipes["error"]; ok {
			t.Errorf("%s: the README's reading recipes fail: %v", ds, e)
		}
		for _, v := range readmeRecipes {
			if n, ok := recipes[v].(float64); !ok || int64(n) != rows {
				t.Errorf("%s: the README's recipe for %s reads %v rows, the manifests say %d", ds, v, recipes[v], rows)
			}
		}
		per := rb.Datasets[ds]
		for _, tool := range []string{"pyarrow", "pandas", "polars", "duckdb"} {
			r, ok := per[tool]
			switch {
			case !ok:
				t.Errorf("%s: %s did not read it", ds, tool)
				continue
			case r.Error != "":
				t.Errorf("%s: %s failed: %s", ds, tool, r.Error)
				continue
			}
			if r.Rows != rows {
				t.Errorf("%s: %s reads %d rows, the manifests say %d", ds, tool, r.Rows, rows)
			}
			if !slices.Equal(r.PartitionColumns, []string{"dt"}) {
				t.Errorf("%s: %s sees partition columns %v, want [dt]", ds, tool, r.PartitionColumns)
			}
			got := map[string]string{}
			for name, c := range r.Columns {
				got[name] = c.Kind
			}
			wantCols := map[string]string{}
			for _, c := range parquet.Columns(spec) {
				wantCols[c.Name] = want[c.Name]
			}
			if diff := cmp.Diff(wantCols, got); diff != "" {
				t.Errorf("%s: column types as %s reads them (-contract §6.3 +%s):\n%s", ds, tool, tool, diff)
			}
			if r.Digest != digest {
				t.Errorf("%s: %s reads different values than deid's reader (digest %s, deid %s)", ds, tool, short(r.Digest), short(digest))
			}
		}
	}
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// goDigest reads a dataset with deid's reader (parquet.ReadRows) and
// returns its rows per the manifests and the digest readback.py computes.
func goDigest(t *testing.T, out, dataset string) (int64, string) {
	t.Helper()
	manifests, err := parquet.ListManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	var lines []string
	for _, mp := range manifests {
		m, err := parquet.ReadManifest(mp)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dataset != dataset {
			continue
		}
		rows += m.Rows
		for _, f := range m.Files {
			rs, err := parquet.ReadRows(filepath.Join(filepath.Dir(mp), f.Path))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				names := make([]string, 0, len(r))
				for n := range r {
					names = append(names, n)
				}
				sort.Strings(names)
				parts := make([]string, len(names))
				for i, n := range names {
					parts[i] = n + "=" + canonValue(r[n])
				}
				lines = append(lines, strings.Join(parts, "\x1f"))
			}
		}
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte("\n"))
	}
	return rows, hex.EncodeToString(h.Sum(nil))
}

// canonValue renders a value as readback.py's canon does.
func canonValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case time.Time:
		return fmt.Sprintf("t:%d", x.UnixMicro())
	case int32:
		return fmt.Sprintf("i:%d", x)
	case int64:
		return fmt.Sprintf("i:%d", x)
	case float64:
		if math.IsNaN(x) {
			return "null"
		}
		return fmt.Sprintf("f:%016x", math.Float64bits(x))
	case string:
		return "s:" + x
	}
	return fmt.Sprintf("other:%v", v)
}

// TestIndependentReaderReadsEveryFile reads every Parquet file deid wrote
// — dataset files and exclusion-log segments — with xitongsys/parquet-go,
// an independent implementation, and compares each column with what deid's
// reader (Arrow) sees.
func TestIndependentReaderReadsEveryFile(t *testing.T) {
	s := generatedSample(t)
	files := 0
	err := filepath.WalkDir(s.out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		files++
		rel, _ := filepath.Rel(s.out, path)
		arrowRows, err := parquet.ReadRows(path)
		if err != nil {
			t.Errorf("%s: deid's reader: %v", rel, err)
			return nil
		}
		cols, n := readWithParquetGo(t, path)
		if n != int64(len(arrowRows)) {
			t.Errorf("%s: parquet-go reads %d rows, Arrow %d", rel, n, len(arrowRows))
			return nil
		}
		for name, vals := range cols {
			for i, v := range vals {
				want := arrowValue(arrowRows[i][name])
				if !equalValue(v, want) {
					t.Errorf("%s: row %d column %s: parquet-go reads %#v, Arrow %#v", rel, i+1, name, v, want)
					return nil
				}
			}
		}
		if len(arrowRows) > 0 && len(cols) != len(arrowRows[0]) {
			t.Errorf("%s: parquet-go sees %d columns, Arrow %d", rel, len(cols), len(arrowRows[0]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Errorf("only %d Parquet files: the sample is too small for this test", files)
	}
}

// readWithParquetGo reads every column of a file with parquet-go, by the
// file's column names; timestamps come back as int64 microseconds.
func readWithParquetGo(t *testing.T, path string) (map[string][]any, int64) {
	t.Helper()
	cols, n, err := parquettest.ReadColumns(path)
	if err != nil {
		t.Fatal(err)
	}
	return cols, n
}

// arrowValue turns a ReadRows value into parquet-go's representation.
func arrowValue(v any) any {
	if tm, ok := v.(time.Time); ok {
		return tm.UnixMicro()
	}
	return v
}

func equalValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && math.Float64bits(fa) == math.Float64bits(fb)
	}
	return a == b
}

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) { return ed25519.GenerateKey(nil) }

// TestAModelTrainsOnMixedLevels is the dataset card's training check: a
// ridge-regression baseline (scripts/train_check.py, numpy) learns the
// click-through rate of campaign_metrics from two windows and is scored on
// the third, with every dimension's value and every <dimension>_level as
// features — rows of every generalization level together, as the card says
// to use them. It documents the recipe; no score is asserted beyond being a
// number.
func TestAModelTrainsOnMixedLevels(t *testing.T) {
	py := python(t)
	s := generatedSample(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, "../../scripts/train_check.py", s.out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("train_check.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		TrainRows     int      `json:"train_rows"`
		TestRows      int      `json:"test_rows"`
		Features      []string `json:"features"`
		LevelFeatures []string `json:"level_features"`
		WMAEModel     float64  `json:"wmae_model"`
		WMAEMean      float64  `json:"wmae_mean"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("train_check.py printed no JSON: %v\n%s", err, stdout.String())
	}
	t.Logf("trained on %d rows, scored on %d: weighted MAE of the CTR %.5f (the training mean: %.5f)", got.TrainRows, got.TestRows, got.WMAEModel, got.WMAEMean)
	specs, err := readSpecs("")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range specs[slices.IndexFunc(specs, func(s *pipeline.DatasetSpec) bool { return s.Name == "campaign_metrics" })].Dimensions {
		want = append(want, d.Name+"_level")
	}
	if diff := cmp.Diff(want, got.LevelFeatures); diff != "" {
		t.Errorf("level features (-every dimension's level +used):\n%s", diff)
	}
	generalized := 0
	for _, f := range got.Features {
		if strings.HasSuffix(f, "=*") {
			generalized++
		}
	}
	if got.TrainRows == 0 || got.TestRows == 0 || generalized == 0 {
		t.Errorf("trained on %d rows and scored on %d, with %d generalized values: want rows of several levels on both sides", got.TrainRows, got.TestRows, generalized)
	}
	if math.IsNaN(got.WMAEModel) || math.IsInf(got.WMAEModel, 0) {
		t.Errorf("the model's error is %v", got.WMAEModel)
	}
}

// TestMLToolsReadTheDatasetsFromS3 runs a small input to an s3:// output
// and reads every dataset back from the S3 server with pyarrow's own S3
// filesystem, and with DuckDB over that pyarrow dataset (DuckDB's S3 reader,
// the httpfs extension, is downloaded on first use, which an offline machine
// cannot do): the rows, partition column and values are those deid's reader
// sees in a run of the same input to a directory (the same bytes,
// TestS3OutputIsTheLocalOutputByteForByte).
func TestMLToolsReadTheDatasetsFromS3(t *testing.T) {
	py := python(t)
	srv := s3test.Require(t)
	cfg := s3Config(t, srv)
	in, settings := s3Sample(t)
	fixedRun(t)
	local := filepath.Join(t.TempDir(), "out")
	deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", local)
	out := "s3://" + srv.Bucket(t) + "/deid/out"
	deid(t, "run", "--config", cfg, "--input", in, "--settings", settings, "--out", out)

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(py, "../../scripts/readback.py", out, "--endpoint", srv.Endpoint)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("readback.py: %v\n%s", err, stderr.String())
	}
	var rb readback
	if err := json.Unmarshal(stdout.Bytes(), &rb); err != nil {
		t.Fatalf("readback.py printed no JSON: %v\n%s", err, stdout.String())
	}
	for _, ds := range []string{"campaign_metrics", "usage_patterns"} {
		rows, digest := goDigest(t, local, ds)
		if rows == 0 {
			t.Fatalf("%s: no rows published: the read-back would prove nothing", ds)
		}
		for _, tool := range []string{"pyarrow", "duckdb"} {
			r, ok := rb.Datasets[ds][tool]
			switch {
			case !ok:
				t.Errorf("%s: %s did not read it from %s", ds, tool, out)
			case r.Error != "":
				t.Errorf("%s: %s failed on %s: %s", ds, tool, out, r.Error)
			case r.Rows != rows || r.Digest != digest || !slices.Equal(r.PartitionColumns, []string{"dt"}):
				t.Errorf("%s: %s reads %d rows (digest %s, partitions %v) from %s; deid's reader %d rows (digest %s) in the directory",
					ds, tool, r.Rows, short(r.Digest), r.PartitionColumns, out, rows, short(digest))
			}
		}
	}
}
