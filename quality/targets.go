package quality

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/bildrum/bildrum"
)

// DefaultResultWithinDays is the time to result of IDResultWithinDays when
// no targets say otherwise: 21 calendar days, three weeks, for the European
// guidelines' 15 working days.
const DefaultResultWithinDays = 21

//go:embed targets.json
var defaultTargets []byte

// Targets are the configured acceptable and desirable levels of the
// indicators, with the documents they come from: configuration data, not
// code, so that quality staff can follow a new edition of a guideline or add
// a national target without a new program. targets.json in this package is
// the default; docs/quality.md describes the format.
type Targets struct {
	// ResultWithinDays is the number of calendar days within which a
	// result counts as timely for IDResultWithinDays (1 to
	// bildrum.ResultDayBuckets-2).
	ResultWithinDays int `json:"result_within_days"`

	// Sources are the documents the targets cite.
	Sources []Source `json:"sources"`

	// Targets are the levels, at most one per indicator and source. The
	// first listed for an indicator gives a value its Status.
	Targets []Target `json:"targets"`
}

// Source is a document that targets cite.
type Source struct {
	ID       string `json:"id"` // short, cited by Target.Source
	Citation string `json:"citation"`
	URL      string `json:"url,omitempty"`
}

// Target is one source's levels for one indicator, in the indicator's unit.
type Target struct {
	Indicator  string `json:"indicator"`
	Source     string `json:"source"`
	Reference  string `json:"reference"`      // where in the source: table, row
	Acceptable *Level `json:"acceptable"`     // null: the source gives none ("NA")
	Desirable  *Level `json:"desirable"`      // null: the source gives none
	Note       string `json:"note,omitempty"` // how the source's wording was read
}

// Level is a range a rate must lie in: at least Min and at most Max, or
// strictly above and below them when Strict (the guidelines' "> 70 %").
// A missing bound does not limit.
type Level struct {
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	Strict bool     `json:"strict,omitempty"`
}

// Contains reports whether rate lies within the level.
func (l *Level) Contains(rate float64) bool {
	if l.Min != nil && (rate < *l.Min || l.Strict && rate == *l.Min) {
		return false
	}
	if l.Max != nil && (rate > *l.Max || l.Strict && rate == *l.Max) {
		return false
	}
	return true
}

// String writes the level as the guidelines do: "> 70", "≤ 5", "80–90".
func (l *Level) String() string {
	switch {
	case l == nil:
		return "NA"
	case l.Min != nil && l.Max != nil:
		return fmt.Sprintf("%g–%g", *l.Min, *l.Max)
	case l.Min != nil && l.Strict:
		return fmt.Sprintf("> %g", *l.Min)
	case l.Min != nil:
		return fmt.Sprintf("≥ %g", *l.Min)
	case l.Max != nil && l.Strict:
		return fmt.Sprintf("< %g", *l.Max)
	case l.Max != nil:
		return fmt.Sprintf("≤ %g", *l.Max)
	}
	return "any"
}

// DefaultTargets returns the targets embedded from targets.json.
func DefaultTargets() (*Targets, error) {
	t, err := ParseTargets(defaultTargets)
	if err != nil {
		return nil, fmt.Errorf("embedded targets.json: %w", err)
	}
	return t, nil
}

// LoadTargets reads and checks a targets file in the format of targets.json.
func LoadTargets(path string) (*Targets, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "targets file %s: %v: give the path of a JSON file like quality/targets.json", path, err)
	}
	t, err := ParseTargets(b)
	if err != nil {
		return nil, fmt.Errorf("targets file %s: %w", path, err)
	}
	return t, nil
}

// ParseTargets decodes and checks targets. Every problem is an EINVALID
// error that names the target and says what to write instead: unknown
// fields, indicators or sources, a source cited but not listed, a target
// listed twice, a level outside its unit's range, with min above max, or a
// desirable level looser than the acceptable one.
func ParseTargets(b []byte) (*Targets, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t Targets
	if err := dec.Decode(&t); err != nil {
		return nil, bildrum.Errorf(bildrum.EINVALID, "targets: %v: see docs/quality.md for the format", err)
	}
	if dec.More() {
		return nil, bildrum.Errorf(bildrum.EINVALID, "targets: more than one JSON value: give one object")
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *Targets) check() error {
	if max := bildrum.ResultDayBuckets - 2; t.ResultWithinDays < 1 || t.ResultWithinDays > max {
		return bildrum.Errorf(bildrum.EINVALID, "targets: result_within_days is %d: give a number of calendar days from 1 to %d", t.ResultWithinDays, max)
	}
	sources := make(map[string]bool)
	for i, s := range t.Sources {
		switch {
		case s.ID == "":
			return bildrum.Errorf(bildrum.EINVALID, "targets: source %d has no id: give it a short id that targets cite", i+1)
		case sources[s.ID]:
			return bildrum.Errorf(bildrum.EINVALID, "targets: source %q is listed twice: list each source once", s.ID)
		case strings.TrimSpace(s.Citation) == "":
			return bildrum.Errorf(bildrum.EINVALID, "targets: source %q has no citation: say which document it is", s.ID)
		}
		sources[s.ID] = true
	}
	seen := make(map[[2]string]bool)
	for i, g := range t.Targets {
		name := fmt.Sprintf("target %d (%s, %s)", i+1, g.Indicator, g.Source)
		d, ok := DefinitionOf(g.Indicator)
		if !ok {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: unknown indicator %q: use one of %s", name, g.Indicator, strings.Join(indicatorIDs(), ", "))
		}
		if !sources[g.Source] {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: source %q is not among the sources: add it there or correct the id", name, g.Source)
		}
		if seen[[2]string{g.Indicator, g.Source}] {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: the source already has a target for this indicator: give each one once", name)
		}
		seen[[2]string{g.Indicator, g.Source}] = true
		if strings.TrimSpace(g.Reference) == "" {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: no reference: say where in the source the levels are (table and row)", name)
		}
		if g.Acceptable == nil && g.Desirable == nil {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: neither an acceptable nor a desirable level: give at least one, or leave the target out", name)
		}
		for _, l := range []struct {
			kind  string
			level *Level
		}{{"acceptable", g.Acceptable}, {"desirable", g.Desirable}} {
			if err := l.level.check(d.Unit); err != nil {
				return bildrum.Errorf(bildrum.EINVALID, "targets: %s: %s level: %s", name, l.kind, bildrum.ErrorMessage(err))
			}
		}
		if g.Acceptable != nil && g.Desirable != nil && !g.Acceptable.includes(g.Desirable) {
			return bildrum.Errorf(bildrum.EINVALID, "targets: %s: desirable %s is looser than acceptable %s: the desirable level must lie within the acceptable one",
				name, g.Desirable, g.Acceptable)
		}
	}
	return nil
}

// check checks a level (nil is none) against the range of unit.
func (l *Level) check(unit Unit) error {
	if l == nil {
		return nil
	}
	if l.Min == nil && l.Max == nil {
		return bildrum.Errorf(bildrum.EINVALID, "neither min nor max: give a bound, or null for no level")
	}
	upper := map[Unit]float64{Percent: 100, PerMille: 1000}[unit]
	for _, b := range []*float64{l.Min, l.Max} {
		if b == nil {
			continue
		}
		if *b < 0 || upper > 0 && *b > upper {
			if upper > 0 {
				return bildrum.Errorf(bildrum.EINVALID, "bound %g is outside 0–%g %s", *b, upper, unit)
			}
			return bildrum.Errorf(bildrum.EINVALID, "bound %g is negative", *b)
		}
	}
	if l.Min != nil && l.Max != nil && *l.Min > *l.Max {
		return bildrum.Errorf(bildrum.EINVALID, "min %g is above max %g", *l.Min, *l.Max)
	}
	return nil
}

// includes reports whether every rate within m is also within l.
func (l *Level) includes(m *Level) bool {
	if l.Min != nil && (m.Min == nil || *m.Min < *l.Min || *m.Min == *l.Min && l.Strict && !m.Strict) {
		return false
	}
	if l.Max != nil && (m.Max == nil || *m.Max > *l.Max || *m.Max == *l.Max && l.Strict && !m.Strict) {
		return false
	}
	return true
}

func indicatorIDs() []string {
	ids := make([]string, len(definitions))
	for i, d := range definitions {
		ids[i] = d.ID
	}
	return ids
}

// For returns the targets of an indicator, in file order.
func (t *Targets) For(indicator string) []Target {
	if t == nil {
		return nil
	}
	var out []Target
	for _, g := range t.Targets {
		if g.Indicator == indicator {
			out = append(out, g)
		}
	}
	return out
}

// Evaluate returns the status of a rate of the indicator against its first
// target, and that target's source; StatusNoData for a nil rate and
// StatusNoTarget when no target is configured (or t is nil).
func (t *Targets) Evaluate(indicator string, rate *float64) (Status, string) {
	ts := t.For(indicator)
	if len(ts) == 0 {
		return StatusNoTarget, ""
	}
	if rate == nil {
		return StatusNoData, ts[0].Source
	}
	return ts[0].Status(*rate), ts[0].Source
}

// Status returns the status of rate against g: desirable when it meets the
// desirable level (and the acceptable one, if any), acceptable when it
// meets the acceptable level only, and otherwise not met.
func (g Target) Status(rate float64) Status {
	acceptable := g.Acceptable == nil || g.Acceptable.Contains(rate)
	switch {
	case g.Desirable != nil && g.Desirable.Contains(rate) && acceptable:
		return StatusDesirable
	case g.Acceptable != nil && acceptable:
		return StatusAcceptable
	}
	return StatusNotMet
}
