package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"github.com/mya/deid/internal/verify"
)

// exclusionChart draws the record-level exclusions per window as stacked
// bars, one colour per reason, with the total above each bar.
func exclusionChart(s *verify.Summary, reasons []string) template.HTML {
	type bar struct {
		label  string
		counts []int64
		total  int64
	}
	var bars []bar
	for _, per := range s.Periods {
		b := bar{label: windowText(per.Start, per.End)}
		for _, r := range reasons {
			b.counts = append(b.counts, per.Excluded[r])
			b.total += per.Excluded[r]
		}
		bars = append(bars, b)
	}
	var undated bar
	undated.label = "no window"
	for _, r := range reasons {
		undated.counts = append(undated.counts, s.Undated[r])
		undated.total += s.Undated[r]
	}
	if undated.total > 0 {
		bars = append(bars, undated)
	}
	if len(bars) == 0 {
		return template.HTML(`<p class="empty">No window was published, so there is nothing to chart.</p>`)
	}
	const (
		width, height            = 1116, 320
		left, right, top, bottom = 64, 16, 24, 44
	)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	var maxTotal int64
	for _, b := range bars {
		maxTotal = max(maxTotal, b.total)
	}
	yMax, step := niceScale(float64(maxTotal))
	y := func(v float64) float64 { return top + plotH - v/yMax*plotH }
	var w strings.Builder
	fmt.Fprintf(&w, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="exc-title">`, width, height, width, height)
	w.WriteString(`<title id="exc-title">Records excluded per window, by reason</title>`)
	for v := 0.0; v <= yMax+step/2; v += step {
		fmt.Fprintf(&w, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, width-right, y(v), y(v))
		fmt.Fprintf(&w, `<text class="tick" x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-8, y(v), num(int64(v)))
	}
	slot := plotW / float64(len(bars))
	bw := math.Min(110, slot*0.5)
	for i, b := range bars {
		x := float64(left) + slot*float64(i) + (slot-bw)/2
		acc := 0.0
		for j, n := range b.counts {
			if n == 0 {
				continue
			}
			y0, y1 := y(acc), y(acc+float64(n))
			acc += float64(n)
			st := reasonStyle[reasons[j]]
			fmt.Fprintf(&w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s · %s: %s</title></rect>`,
				x, y1, bw, math.Max(y0-y1, 0.5), st.color, esc(b.label), esc(labelOf(reasons[j])), num(n))
		}
		fmt.Fprintf(&w, `<text class="total" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+bw/2, y(acc)-6, num(b.total))
		fmt.Fprintf(&w, `<text class="xlabel" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+bw/2, height-bottom+20, esc(b.label))
	}
	fmt.Fprintf(&w, `<line class="axis" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, width-right, y(0), y(0))
	w.WriteString(`</svg>`)
	return template.HTML(w.String())
}

// levelChart draws, per window, a bar of the events contributed split
// into those published at each generalization level, withdrawn and
// suppressed, with the share of each.
func levelChart(ws []verify.WindowSummary, levels []int) template.HTML {
	if len(ws) == 0 {
		return ""
	}
	const (
		width, barH, gap   = 1116, 30, 12
		left, right, top   = 96, 16, 8
		minLabelW, bottomM = 38.0, 8
	)
	height := top + len(ws)*(barH+gap) + bottomM
	plotW := float64(width - left - right)
	var w strings.Builder
	fmt.Fprintf(&w, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, width, height, width, height)
	w.WriteString(`<title>Share of contributed events published at each generalization level</title>`)
	for i, win := range ws {
		a := win.Accounting
		yTop := float64(top + i*(barH+gap))
		label := windowText(win.Start, win.End)
		fmt.Fprintf(&w, `<text class="ylabel" x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-10, yTop+barH/2, esc(label))
		if a.Contributed == 0 {
			fmt.Fprintf(&w, `<text class="tick" x="%d" y="%.1f" dominant-baseline="middle">no contributed events</text>`, left, yTop+barH/2)
			continue
		}
		type seg struct {
			name  string
			n     int64
			color string
		}
		var segs []seg
		for _, l := range levels {
			segs = append(segs, seg{fmt.Sprintf("level %d", l), a.EventsByLevel[l], levelColor(l)})
		}
		segs = append(segs, seg{"withdrawn", a.Withdrawn, colorWithdrawn}, seg{"suppressed", a.Suppressed, colorSuppressed})
		x := float64(left)
		for _, sg := range segs {
			if sg.n == 0 {
				continue
			}
			sw := plotW * float64(sg.n) / float64(a.Contributed)
			share := pct(sg.n, a.Contributed)
			fmt.Fprintf(&w, `<rect x="%.2f" y="%.1f" width="%.2f" height="%d" fill="%s"><title>%s · %s: %s events (%s)</title></rect>`,
				x, yTop, math.Max(sw, 0.8), barH, sg.color, esc(label), esc(sg.name), num(sg.n), share)
			if sw >= minLabelW {
				class := "seg"
				if darkText(sg.color) {
					class = "seg dark"
				}
				fmt.Fprintf(&w, `<text class="%s" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle">%s</text>`, class, x+sw/2, yTop+barH/2, share)
			}
			x += sw
		}
	}
	w.WriteString(`</svg>`)
	return template.HTML(w.String())
}

// niceScale returns an axis maximum at or above v and a tick step, both
// round numbers.
func niceScale(v float64) (top, step float64) {
	if v <= 0 {
		return 1, 1
	}
	raw := v / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	step = math.Max(step, 1)
	return math.Ceil(v/step) * step, step
}

// darkText tells whether text on colour c should be dark.
func darkText(c string) bool {
	var r, g, b int
	fmt.Sscanf(c, "#%02x%02x%02x", &r, &g, &b)
	return 0.299*float64(r)+0.587*float64(g)+0.114*float64(b) > 150
}

func labelOf(reason string) string {
	if st, ok := reasonStyle[reason]; ok {
		return st.label
	}
	return reason
}

func esc(s string) string { return html.EscapeString(s) }
