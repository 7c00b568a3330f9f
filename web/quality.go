package web

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/auth"
	"github.com/bildrum/bildrum/problem"
	"github.com/bildrum/bildrum/quality"
)

// PeriodAll asks a node for its indicators over the whole register at once.
const PeriodAll = quality.PeriodAll

// RegionIndicators is one region's answer to the hub's request for
// indicators: how it answered and, when it did, its released reports.
type RegionIndicators struct {
	bildrum.RegionAnswer
	Name    string           `json:"name"`
	Reports []quality.Report `json:"-"`
}

// Quality serves the hub's region-to-region comparison of the screening
// quality indicators: every region side by side against the targets, a
// funnel plot per indicator and year-by-year trends. Every region's figures
// come from its own node, released under the small-cell rule.
type Quality struct {
	// Indicators asks every node for its released reports of a period kind.
	Indicators func(ctx context.Context, period string) ([]RegionIndicators, error)
	Targets    *quality.Targets
	Auth       *auth.Authenticator
	Log        *slog.Logger

	page *template.Template
}

// Routes adds /quality and /api/v1/indicators to mux.
func (q *Quality) Routes(mux *http.ServeMux) {
	q.page = parse("quality.html")
	mux.HandleFunc("GET /quality", q.comparePage)
	mux.HandleFunc("GET /api/v1/indicators", q.Auth.Require(q.api))
}

// indicatorsAnswer is GET /api/v1/indicators: every region's reports and
// how each region answered.
type indicatorsAnswer struct {
	Period   string                 `json:"period"`
	Asked    int                    `json:"asked"`
	Answered int                    `json:"answered"`
	Complete bool                   `json:"complete"`
	Regions  []bildrum.RegionAnswer `json:"regions"`
	Reports  []quality.Report       `json:"reports"`
	Targets  *quality.Targets       `json:"targets"`
	Defs     []quality.Definition   `json:"definitions"`
}

func (q *Quality) gather(ctx context.Context, period string) (indicatorsAnswer, []RegionIndicators, error) {
	if period == "" {
		period = "year"
	}
	if _, err := bildrum.ParsePeriodKind(period); err != nil && period != PeriodAll {
		return indicatorsAnswer{}, nil, bildrum.Errorf(bildrum.EINVALID, "period %q: use year, quarter or all (the whole register)", period)
	}
	regions, err := q.Indicators(ctx, period)
	if err != nil {
		return indicatorsAnswer{}, nil, err
	}
	a := indicatorsAnswer{Period: period, Asked: len(regions), Reports: []quality.Report{}, Targets: q.Targets, Defs: quality.Definitions()}
	for _, r := range regions {
		a.Regions = append(a.Regions, r.RegionAnswer)
		if r.Status == bildrum.AnswerOK {
			a.Answered++
			a.Reports = append(a.Reports, r.Reports...)
		}
	}
	a.Complete = a.Answered == a.Asked
	return a, regions, nil
}

func (q *Quality) api(w http.ResponseWriter, r *http.Request) {
	a, _, err := q.gather(r.Context(), r.URL.Query().Get("period"))
	if err != nil {
		problem.Error(w, r, q.Log, err)
		return
	}
	writeJSON(w, a)
}

// cell is one region's value of one indicator on the comparison page.
type cell struct {
	Text, Interval, Status, Title string
	Suppressed, Missing           bool
}

// indicatorRow is one indicator across the regions.
type indicatorRow struct {
	Def      quality.Definition
	Target   string
	Cells    []cell
	Selected bool
}

// formatRate writes a rate in its unit, as people read it.
func formatRate(v float64, u quality.Unit) string {
	switch u {
	case quality.Percent:
		return strconv.FormatFloat(v, 'f', 1, 64) + " %"
	case quality.PerMille:
		return strconv.FormatFloat(v, 'f', 2, 64) + " ‰"
	case quality.Ratio:
		if v > 0 {
			return "1:" + strconv.FormatFloat(1/v, 'f', 1, 64)
		}
		return "0"
	case quality.Days:
		return strconv.FormatFloat(v, 'f', 0, 64) + " d"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func valueOf(reports []quality.Report, region, period, band, id string) (quality.Value, bool) {
	for _, rep := range reports {
		if rep.Region == region && rep.Period == period && rep.AgeBand == band {
			for _, v := range rep.Indicators {
				if v.ID == id {
					return v, true
				}
			}
		}
	}
	return quality.Value{}, false
}

func (q *Quality) comparePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := pagePrincipal(w, r, q.Auth); !ok {
		return
	}
	qs := r.URL.Query()
	a, regions, err := q.gather(r.Context(), qs.Get("period"))
	if err != nil {
		http.Error(w, bildrum.ErrorMessage(err), problem.Status(bildrum.ErrorCode(err)))
		return
	}
	var periods []string
	for _, rep := range a.Reports {
		if !slices.Contains(periods, rep.Period) {
			periods = append(periods, rep.Period)
		}
	}
	slices.Sort(periods)
	trendReports := a.Reports
	selPeriod := qs.Get("at")
	if selPeriod == "" || selPeriod == PeriodAll {
		// The whole register: each node sums its own periods before the
		// small-cell rule, so small regions show more than "fewer than 10".
		whole, wholeRegions, err := q.gather(r.Context(), PeriodAll)
		if err != nil {
			http.Error(w, bildrum.ErrorMessage(err), problem.Status(bildrum.ErrorCode(err)))
			return
		}
		a.Reports, a.Asked, a.Answered, a.Complete, a.Regions = whole.Reports, whole.Asked, whole.Answered, whole.Complete, whole.Regions
		regions, selPeriod = wholeRegions, PeriodAll
	} else if !slices.Contains(periods, selPeriod) && len(periods) > 0 {
		selPeriod = periods[len(periods)-1]
	}
	band := qs.Get("band")
	if !slices.Contains(append(bildrum.AgeBands(), bildrum.AgeBandAll), band) {
		band = bildrum.AgeBandAll
	}
	selID := qs.Get("indicator")
	if _, ok := quality.DefinitionOf(selID); !ok {
		selID = quality.IDParticipation
	}
	def, _ := quality.DefinitionOf(selID)

	var answered []RegionIndicators
	for _, reg := range regions {
		if reg.Status == bildrum.AnswerOK {
			answered = append(answered, reg)
		}
	}
	var rows []indicatorRow
	for _, d := range quality.Definitions() {
		row := indicatorRow{Def: d, Selected: d.ID == selID}
		if ts := q.Targets.For(d.ID); len(ts) > 0 {
			row.Target = "acceptable " + ts[0].Acceptable.String() + ", desirable " + ts[0].Desirable.String()
		}
		for _, reg := range answered {
			v, ok := valueOf(a.Reports, reg.Region, selPeriod, band, d.ID)
			c := cell{Status: string(v.Status)}
			switch {
			case !ok:
				c.Missing, c.Text = true, "–"
			case v.Suppressed:
				c.Suppressed, c.Text, c.Title = true, "fewer than 10", "suppressed: a count below the small-cell threshold, or a figure from which one could be worked out, is never released"
			case v.Rate == nil:
				c.Text = "–"
			default:
				c.Text = formatRate(*v.Rate, d.Unit)
				if v.Interval != nil {
					c.Interval = formatRate(v.Interval[0], d.Unit) + " – " + formatRate(v.Interval[1], d.Unit)
				}
				if v.Numerator != nil && v.Denominator != nil {
					c.Title = fmt.Sprintf("%d of %d", *v.Numerator, *v.Denominator)
				}
			}
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	var silent []RegionIndicators
	for _, reg := range regions {
		if reg.Status != bildrum.AnswerOK {
			silent = append(silent, reg)
		}
	}
	render(w, r, q.Log, q.page, struct {
		Answer  indicatorsAnswer
		Regions []RegionIndicators
		Silent  []RegionIndicators
		Rows    []indicatorRow
		Periods []string
		Period  string
		Band    string
		Bands   []string
		Def     quality.Definition
		Funnel  funnelPlot
		Trend   trendPlot
	}{a, answered, silent, rows, periods, selPeriod, band, append(bildrum.AgeBands(), bildrum.AgeBandAll), def,
		funnelOf(def, a.Reports, answered, selPeriod, band), trendOf(def, trendReports, answered, periods, band)})
}

// Plot geometry shared by the funnel and trend charts.
const (
	plotW, plotH      = 640, 300
	plotLeft, plotTop = 60, 16
	plotInnerW        = plotW - plotLeft - 20
	plotInnerH        = plotH - plotTop - 40
)

type plotPoint struct {
	X, Y         float64
	Label, Title string
	Outside      bool // beyond the 99.8 % limits
}

type plotTick struct {
	Pos   float64
	Label string
}

// funnelPlot is an indicator's rate against volume, one point per region,
// with 95 % and 99.8 % control limits around the pooled national mean.
type funnelPlot struct {
	OK                              bool
	Why                             string
	Points                          []plotPoint
	MeanY                           float64
	Mean                            string
	Upper95, Lower95                string // SVG path data
	Upper998, Lower998              string
	XTicks, YTicks                  []plotTick
	W, H, Left, Top, InnerW, InnerH int
	Excluded                        []string
}

func funnelOf(def quality.Definition, reports []quality.Report, regions []RegionIndicators, period, band string) funnelPlot {
	f := funnelPlot{W: plotW, H: plotH, Left: plotLeft, Top: plotTop, InnerW: plotInnerW, InnerH: plotInnerH}
	if def.Unit != quality.Percent && def.Unit != quality.PerMille {
		f.Why = "A funnel plot needs a proportion; " + def.NameEN + " is a " + string(def.Unit) + "."
		return f
	}
	var values []quality.Value
	type pt struct {
		name string
		n    int64
		rate float64
	}
	var pts []pt
	for _, reg := range regions {
		v, ok := valueOf(reports, reg.Region, period, band, def.ID)
		if !ok || v.Suppressed || v.Rate == nil || v.Denominator == nil || *v.Denominator == 0 {
			f.Excluded = append(f.Excluded, reg.Region+" "+reg.Name)
			continue
		}
		values = append(values, v)
		pts = append(pts, pt{reg.Region + " " + reg.Name, *v.Denominator, *v.Rate})
	}
	mean, _, ok := quality.PooledMean(values)
	if !ok || len(pts) == 0 {
		f.Why = "No region released this indicator for " + period + "."
		return f
	}
	maxN := int64(1)
	for _, p := range pts {
		maxN = max(maxN, p.n)
	}
	xMax := float64(maxN) * 1.25
	// y range: from the limits at the smallest plotted volume.
	lo, hi := mean, mean
	nMin := max(int64(float64(maxN)*0.02), 5)
	if l, err := quality.FunnelLimits(def.Unit, mean, nMin); err == nil {
		lo, hi = l.Lower998, l.Upper998
	}
	for _, p := range pts {
		lo, hi = math.Min(lo, p.rate), math.Max(hi, p.rate)
	}
	pad := (hi - lo) * 0.08
	if pad == 0 {
		pad = 1
	}
	yMin, yMax := math.Max(lo-pad, 0), hi+pad
	x := func(n float64) float64 { return plotLeft + n/xMax*plotInnerW }
	y := func(v float64) float64 { return plotTop + (1-(v-yMin)/(yMax-yMin))*plotInnerH }
	var u95, l95, u998, l998 strings.Builder
	for i := 0; i <= 60; i++ {
		n := float64(nMin) + (xMax-float64(nMin))*float64(i)/60
		l, err := quality.FunnelLimits(def.Unit, mean, int64(n))
		if err != nil {
			continue
		}
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		clamp := func(v float64) float64 { return math.Min(math.Max(y(v), plotTop), plotTop+plotInnerH) }
		fmt.Fprintf(&u95, "%s%.1f,%.1f ", cmd, x(n), clamp(l.Upper95))
		fmt.Fprintf(&l95, "%s%.1f,%.1f ", cmd, x(n), clamp(l.Lower95))
		fmt.Fprintf(&u998, "%s%.1f,%.1f ", cmd, x(n), clamp(l.Upper998))
		fmt.Fprintf(&l998, "%s%.1f,%.1f ", cmd, x(n), clamp(l.Lower998))
	}
	f.Upper95, f.Lower95, f.Upper998, f.Lower998 = u95.String(), l95.String(), u998.String(), l998.String()
	for _, p := range pts {
		l, _ := quality.FunnelLimits(def.Unit, mean, p.n)
		f.Points = append(f.Points, plotPoint{X: x(float64(p.n)), Y: y(p.rate), Label: p.name,
			Title:   fmt.Sprintf("%s: %s at %d", p.name, formatRate(p.rate, def.Unit), p.n),
			Outside: p.rate < l.Lower998 || p.rate > l.Upper998})
	}
	f.OK, f.MeanY, f.Mean = true, y(mean), formatRate(mean, def.Unit)
	xs := niceStep(int(xMax))
	for v := 0; float64(v) <= xMax; v += xs {
		f.XTicks = append(f.XTicks, plotTick{x(float64(v)), thousands(v)})
	}
	for i := 0; i <= 4; i++ {
		v := yMin + (yMax-yMin)*float64(i)/4
		f.YTicks = append(f.YTicks, plotTick{y(v), formatRate(v, def.Unit)})
	}
	return f
}

// trendPlot is an indicator per period, one line per region.
type trendPlot struct {
	OK                              bool
	Lines                           []trendLine
	XTicks, YTicks                  []plotTick
	W, H, Left, Top, InnerW, InnerH int
}

type trendLine struct {
	Region, Label, Path, Class string
	Points                     []plotPoint
}

func trendOf(def quality.Definition, reports []quality.Report, regions []RegionIndicators, periods []string, band string) trendPlot {
	t := trendPlot{W: plotW, H: plotH, Left: plotLeft, Top: plotTop, InnerW: plotInnerW, InnerH: plotInnerH}
	if len(periods) == 0 {
		return t
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, reg := range regions {
		for _, p := range periods {
			if v, ok := valueOf(reports, reg.Region, p, band, def.ID); ok && v.Rate != nil && !v.Suppressed {
				lo, hi = math.Min(lo, *v.Rate), math.Max(hi, *v.Rate)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return t
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Max(hi*0.1, 1)
	}
	yMin, yMax := math.Max(lo-pad, 0), hi+pad
	step := float64(plotInnerW) / math.Max(float64(len(periods)-1), 1)
	x := func(i int) float64 { return plotLeft + float64(i)*step }
	y := func(v float64) float64 { return plotTop + (1-(v-yMin)/(yMax-yMin))*plotInnerH }
	for ri, reg := range regions {
		line := trendLine{Region: reg.Region, Label: reg.Region + " " + reg.Name, Class: "s" + strconv.Itoa(ri%6)}
		var path strings.Builder
		pen := "M"
		for i, p := range periods {
			v, ok := valueOf(reports, reg.Region, p, band, def.ID)
			if !ok || v.Rate == nil || v.Suppressed {
				pen = "M" // a gap where nothing was released
				continue
			}
			fmt.Fprintf(&path, "%s%.1f,%.1f ", pen, x(i), y(*v.Rate))
			pen = "L"
			line.Points = append(line.Points, plotPoint{X: x(i), Y: y(*v.Rate), Title: fmt.Sprintf("%s %s: %s", line.Label, p, formatRate(*v.Rate, def.Unit))})
		}
		line.Path = path.String()
		t.Lines = append(t.Lines, line)
	}
	every := max(1, len(periods)/8)
	for i, p := range periods {
		if i%every == 0 || i == len(periods)-1 {
			t.XTicks = append(t.XTicks, plotTick{x(i), p})
		}
	}
	for i := 0; i <= 4; i++ {
		v := yMin + (yMax-yMin)*float64(i)/4
		t.YTicks = append(t.YTicks, plotTick{y(v), formatRate(v, def.Unit)})
	}
	t.OK = true
	return t
}
