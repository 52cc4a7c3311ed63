package parquet

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/mya/deid/pipeline"
)

// Fixed column names of every dataset.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	ColLevel       = "generalization_level"
)

// Column types as the manifest names them.
const (
	TypeTimestamp = "timestamp[us, UTC]"
	TypeDictStr   = "dictionary<int32, string>"
	TypeInt32     = "int32"
	TypeInt64     = "int64"
	TypeDouble    = "double"
)

// Column roles as the manifest names them.
const (
	RoleWindow    = "window"
	RoleDimension = "dimension"
	RoleLevel     = "level"
	RoleMeasure   = "measure"
)

// Key-value metadata keys written into every data file.
const (
	MetaDataset           = "dataset"
	MetaSchemaVersion     = "schema_version"
	MetaK                 = "k"
	MetaDominance         = "dominance"
	MetaPPercent          = "p_percent"
	MetaDominanceMeasures = "dominance_measures"
	MetaPipelineVersion   = "pipeline_version"
	MetaPolicyVersion     = "policy_version"
	MetaWindowStart       = "window_start"
	MetaWindowEnd         = "window_end"
)

// reserved names cannot be dimensions or measures: the fixed columns, and
// the Hive partition keys readers add from the directory names.
var reserved = map[string]bool{ColWindowStart: true, ColWindowEnd: true, ColLevel: true,
	"dt": true, "hour": true, "minute": true}

var (
	tsType   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
)

// Column describes one column of a dataset's data files.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	Role     string `json:"role"`
}

// Columns returns the columns of spec's data files, in file order:
// window_start, window_end, the dimensions, generalization_level, one
// <dimension>_level per dimension (the hierarchy level of the row's value),
// the measures.
func Columns(spec *pipeline.DatasetSpec) []Column {
	cols := []Column{
		{Name: ColWindowStart, Type: TypeTimestamp, Role: RoleWindow},
		{Name: ColWindowEnd, Type: TypeTimestamp, Role: RoleWindow},
	}
	// Dimensions are never null, but are declared optional: arrow-go v17
	// writes a negative null count into the statistics of a required
	// dictionary column, which would mislead readers that prune on them.
	for _, d := range spec.Dimensions {
		cols = append(cols, Column{Name: d.Name, Type: TypeDictStr, Nullable: true, Role: RoleDimension})
	}
	cols = append(cols, Column{Name: ColLevel, Type: TypeInt32, Role: RoleLevel})
	for _, d := range spec.Dimensions {
		cols = append(cols, Column{Name: LevelColumn(d.Name), Type: TypeInt32, Role: RoleLevel})
	}
	for _, m := range spec.Measures {
		if m.IsInt() {
			cols = append(cols, Column{Name: m.Name, Type: TypeInt64, Role: RoleMeasure})
		} else {
			cols = append(cols, Column{Name: m.Name, Type: TypeDouble, Nullable: true, Role: RoleMeasure})
		}
	}
	return cols
}

// LevelColumn names the column that holds the hierarchy level of a
// dimension's values: "<dimension>_level".
func LevelColumn(dimension string) string { return dimension + pipeline.LevelSuffix }

// checkSpec rejects a spec whose columns would collide or whose name is not
// a safe directory name.
func checkSpec(spec *pipeline.DatasetSpec) error {
	if spec == nil {
		return fmt.Errorf("no dataset spec")
	}
	if !validName(spec.Name) {
		return fmt.Errorf("dataset name %q: must be letters, digits, '_', '-' or '.', not starting with '_' or '.'", spec.Name)
	}
	seen := map[string]bool{}
	for _, c := range Columns(spec)[2:] {
		if c.Name == ColLevel {
			continue
		}
		if c.Name == "" || reserved[c.Name] || seen[c.Name] {
			return fmt.Errorf("dataset %s: column name %q is empty, reserved or repeated", spec.Name, c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func validName(s string) bool {
	if s == "" || s[0] == '_' || s[0] == '.' || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// arrowSchema builds the Arrow schema of one window's data file, with the
// key-value metadata that describes it. Nothing in it depends on the time of
// writing.
func arrowSchema(out *pipeline.WindowOutput) *arrow.Schema {
	spec := out.Spec
	cols := Columns(spec)
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		var t arrow.DataType
		switch c.Type {
		case TypeTimestamp:
			t = tsType
		case TypeDictStr:
			t = dictType
		case TypeInt32:
			t = arrow.PrimitiveTypes.Int32
		case TypeInt64:
			t = arrow.PrimitiveTypes.Int64
		case TypeDouble:
			t = arrow.PrimitiveTypes.Float64
		}
		fields[i] = arrow.Field{Name: c.Name, Type: t, Nullable: c.Nullable}
	}
	p := spec.Privacy
	keys := []string{MetaDataset, MetaSchemaVersion, MetaK, MetaDominance, MetaPPercent, MetaDominanceMeasures,
		MetaPipelineVersion, MetaPolicyVersion, MetaWindowStart, MetaWindowEnd}
	vals := []string{spec.Name, strconv.Itoa(spec.SchemaVersion), strconv.Itoa(p.K),
		strconv.Itoa(p.DominanceN) + "," + strconv.Itoa(p.DominanceK), strconv.Itoa(p.PPercent),
		strings.Join(p.DominanceMeasures, ","), out.PipelineVersion, out.PolicyVersion,
		rfc3339(out.Window.Start), rfc3339(out.Window.End)}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

func rfc3339(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339) }

// rowWidth estimates the uncompressed bytes of one row, to size row groups.
func rowWidth(spec *pipeline.DatasetSpec) int64 {
	return 8*2 + 8*int64(len(spec.Dimensions)) + 4 + 9*int64(len(spec.Measures))
}
