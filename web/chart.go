package web

import (
	"strconv"

	"github.com/bildrum/bildrum"
)

// barChart is a horizontal grouped bar chart, laid out in Go and drawn by
// the template as SVG.
type barChart struct {
	Width, Height int
	Rows          []barRow
	Ticks         []barTick
	Series        []string // legend, one per bar of a row
}

type barRow struct {
	Label string
	Y     int
	Bars  []bar
	Note  string // shown instead of bars when the region did not answer
}

type bar struct {
	Class       string
	Y, W, H     int
	Value, Text string
}

type barTick struct {
	X     int
	Label string
}

const (
	chartLabelW = 150
	chartPlotW  = 520
	chartRowH   = 44
	chartBarH   = 16
)

// federationChart draws women and examinations per region; a region that
// did not answer is drawn without bars and says so.
func federationChart(ov bildrum.FederationOverview) barChart {
	maxV := 1
	for _, n := range ov.Nodes {
		maxV = max(maxV, n.Node.Women, n.Node.Exams)
	}
	step := niceStep(maxV)
	top := ((maxV + step - 1) / step) * step
	c := barChart{Width: chartLabelW + chartPlotW + 70, Series: []string{"women", "examinations"}}
	for i, n := range ov.Nodes {
		y := 10 + i*chartRowH
		row := barRow{Label: n.Region + " " + n.Name, Y: y}
		if n.Status != bildrum.AnswerOK {
			row.Note = "no answer now (" + n.Status + ")"
		} else {
			for j, v := range []int{n.Node.Women, n.Node.Exams} {
				row.Bars = append(row.Bars, bar{
					Class: []string{"women", "exams"}[j],
					Y:     y + j*(chartBarH+2), W: v * chartPlotW / top, H: chartBarH,
					Value: strconv.Itoa(v), Text: thousands(v),
				})
			}
		}
		c.Rows = append(c.Rows, row)
	}
	c.Height = 10 + len(ov.Nodes)*chartRowH + 24
	for v := 0; v <= top; v += step {
		c.Ticks = append(c.Ticks, barTick{X: chartLabelW + v*chartPlotW/top, Label: thousands(v)})
	}
	return c
}

// niceStep picks a tick step of 1, 2 or 5 times a power of ten giving at
// most six ticks.
func niceStep(maxV int) int {
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if maxV/(m*p) <= 5 {
				return m * p
			}
		}
	}
}
