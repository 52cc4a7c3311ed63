package parquet

import (
	"context"
	"fmt"
	"testing"

	"github.com/mya/deid/pipeline"
)

// benchSpec has 19 columns: two window bounds, four dimensions, the level,
// four dimension levels, six counters and two ratios.
func benchSpec() *pipeline.DatasetSpec {
	s := &pipeline.DatasetSpec{Name: "bench", SchemaVersion: 1,
		Ladder:  []string{"region", "industry", "content_type", "region", "industry", "platform", "region", "industry"},
		Privacy: pipeline.Privacy{K: 10, DominanceN: 2, DominanceK: 85, PPercent: 10}}
	for _, d := range []string{"platform", "content_type", "industry", "region"} {
		s.Dimensions = append(s.Dimensions, pipeline.Dimension{Name: d})
	}
	for _, m := range []string{"events", "workspaces", "creators", "impressions", "clicks", "spend_cents"} {
		s.Measures = append(s.Measures, pipeline.Measure{Name: m, Kind: pipeline.MeasureSum})
	}
	s.Measures = append(s.Measures, pipeline.Measure{Name: "ctr", Kind: pipeline.MeasureRatio},
		pipeline.Measure{Name: "cpm_cents", Kind: pipeline.MeasureRatio})
	return s
}

func benchRows(n int) []pipeline.Row {
	platforms := []string{"instagram", "linkedin", "tiktok", "x", "youtube", "other"}
	types := []string{"post", "reel", "story", "video", "short", "live", "article", "other"}
	regions := []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA", "ZZ", "*"}
	rows := make([]pipeline.Row, n)
	for i := range rows {
		v := make([]pipeline.Value, 8)
		for j := range 6 {
			v[j] = pipeline.Value{Int: int64(i*(j+1)) % 1_000_003}
		}
		v[6] = pipeline.Value{Float: float64(i%1000) / 1000}
		if i%7 == 0 {
			v[7] = pipeline.Value{Null: true}
		} else {
			v[7] = pipeline.Value{Float: float64(i%12345) * 1.5}
		}
		rows[i] = pipeline.Row{
			Dims:   []string{platforms[i%6], types[(i/6)%8], fmt.Sprintf("family%d.leaf%d", i%40, i%400), regions[(i/48)%9]},
			Level:  i % 9,
			Values: v,
		}
	}
	return rows
}

func BenchmarkCommit(b *testing.B) {
	const n = 100_000
	s, _ := newSink(b)
	rows := benchRows(n)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out := &pipeline.WindowOutput{Spec: benchSpec(), Rows: rows,
			Window: pipeline.Window{Start: day.Start + int64(i)*86400e6, End: day.End + int64(i)*86400e6}}
		if err := s.Commit(context.Background(), out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
