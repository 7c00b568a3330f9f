package register

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bildrum/bildrum"
)

// problems collects what is wrong with one row, column by column, so that
// the consistency rules can skip columns that did not even parse.
type problems struct {
	bad  [numColumns]bool
	list []problem
}

// problem is one thing wrong with one column of a row; col is -1 for the
// row as a whole.
type problem struct {
	col int
	msg string
}

func (p *problems) add(col int, format string, args ...any) {
	if col >= 0 {
		p.bad[col] = true
	}
	p.list = append(p.list, problem{col, fmt.Sprintf(format, args...)})
}

func (p *problems) reset() {
	p.bad = [numColumns]bool{}
	p.list = p.list[:0]
}

// ok reports whether all the columns parsed.
func (p *problems) ok(cols ...int) bool {
	for _, c := range cols {
		if p.bad[c] {
			return false
		}
	}
	return true
}

// checker validates rows for one node's region on one day.
type checker struct {
	region bildrum.Region
	today  bildrum.Date
}

// newChecker returns a checker for the region (a valid county code) with
// "the future" starting the day after now in Sweden.
func newChecker(region string, now time.Time) checker {
	r, _ := bildrum.RegionByCode(region)
	return checker{region: r, today: bildrum.DateOf(now.In(sweden()))}
}

// sweden returns the time zone of Swedish calendar days, or, where the
// system has no zone database, UTC+2 (summer time), which never calls
// today in Sweden a future day. It is loaded once.
var sweden = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("Europe/Stockholm"); err == nil {
		return loc
	}
	return time.FixedZone("CEST", 2*60*60)
})

// parseRow reads the fields of one row (numColumns values, after checkRaw)
// into e, recording what does not parse, and then applies the consistency
// rules between the fields.
func (c *checker) parseRow(rec []string, e *bildrum.ScreeningEpisode, p *problems) {
	*e = bildrum.ScreeningEpisode{}
	c.parseIdentity(rec, e, p)
	c.parseExam(rec, e, p)
	c.parseFollowUp(rec, e, p)
	c.checkRules(e, p)
}

// parseIdentity reads the episode, the woman, the unit and the invitation.
func (c *checker) parseIdentity(rec []string, e *bildrum.ScreeningEpisode, p *problems) {
	if !p.bad[colID] {
		if msg := checkEpisodeID(rec[colID]); msg != "" {
			p.add(colID, "%s", msg)
		} else {
			e.ID = rec[colID]
		}
	}
	if !p.bad[colPerson] {
		if rec[colPerson] == "" {
			p.add(colPerson, "the personnummer or samordningsnummer is missing: write it as 12 digits YYYYMMDDNNNC")
		} else if id, err := bildrum.ParsePersonID(rec[colPerson]); err != nil {
			p.add(colPerson, "%s", bildrum.ErrorMessage(err))
		} else {
			e.Person = id
		}
	}
	if r := rec[colRegion]; r != c.region.Code && !p.bad[colRegion] {
		if other, err := bildrum.RegionByCode(r); err == nil {
			p.add(colRegion, "the row is region %s's but this node keeps region %s's register: import it at the node of %s", other, c.region, other.Name)
		} else {
			p.add(colRegion, "%q is not a county code: this node keeps region %s's register, so write %s", r, c.region, c.region.Code)
		}
	} else {
		e.Region = r
	}
	if msg := checkText(rec[colUnit], 32); msg != "" && !p.bad[colUnit] {
		p.add(colUnit, "the screening unit code %s", msg)
	} else {
		e.Unit = rec[colUnit]
	}
	e.Round = c.parseInt(rec, colRound, p, 1, 50, "the woman's invitation round: 1 for her first invitation", true)
	if rec[colInvited] == "" && !p.bad[colInvited] {
		p.add(colInvited, "the invitation date is missing: every row is an invitation, write its date as YYYY-MM-DD")
	} else {
		e.Invited = c.parseDate(rec, colInvited, p)
	}
}

// parseExam reads the examination and its double reading.
func (c *checker) parseExam(rec []string, e *bildrum.ScreeningEpisode, p *problems) {
	e.Attended = parseBool(rec, colAttended, p)
	e.Examined = c.parseDate(rec, colExamined, p)
	e.TechnicalRepeat = parseBool(rec, colTechnicalRepeat, p)
	e.Views = parseViews(rec, p)
	e.Reader1 = parseBIRADS(rec, colReader1, p, "6")
	e.Reader2 = parseBIRADS(rec, colReader2, p, "6")
	e.Consensus = parseBIRADS(rec, colConsensus, p, "6")
	e.Density = bildrum.Density(parseCode(rec, colDensity, p, densities, "a breast density: write a, b, c or d (ACR BI-RADS breast composition)"))
	e.Recalled = parseBool(rec, colRecalled, p)
	e.ResultDay = c.parseDate(rec, colResultDay, p)
}

// parseFollowUp reads the assessment after a recall and the diagnosis.
func (c *checker) parseFollowUp(rec []string, e *bildrum.ScreeningEpisode, p *problems) {
	e.Assessed = c.parseDate(rec, colAssessed, p)
	e.AdditionalImaging = parseBool(rec, colAdditionalImaging, p)
	e.Ultrasound = parseBool(rec, colUltrasound, p)
	e.NeedleBiopsy = parseBool(rec, colNeedleBiopsy, p)
	e.OpenBiopsy = parseBool(rec, colOpenBiopsy, p)
	e.AssessmentBIRADS = parseBIRADS(rec, colAssessmentBIRADS, p, "5")
	e.Outcome = bildrum.Outcome(parseCode(rec, colOutcome, p, outcomes, "an outcome: write benign, dcis or invasive"))
	e.Detection = bildrum.Detection(parseCode(rec, colDetection, p, detections, "a detection mode: write screen (found after recall) or interval (found between screens)"))
	e.Diagnosed = c.parseDate(rec, colDiagnosed, p)
	e.TumourSizeMM = c.parseInt(rec, colTumourSize, p, 1, 200, "the size of the invasive component in whole millimetres", false)
	e.NodalStatus = parseCode(rec, colNodalStatus, p, nodalStatuses, "a nodal status: write negative or positive")
	e.Stage = parseCode(rec, colStage, p, stages, "a stage: write 0 (DCIS), I, II, III or IV")
	e.PreopDiagnosis = parseBool(rec, colPreop, p)
	e.IntervalMonths = c.parseInt(rec, colIntervalMonths, p, 1, 48, "the whole months from the screen to the interval cancer's diagnosis", false)
}

// Code lists of the coded columns.
var (
	densities     = []string{"a", "b", "c", "d"}
	outcomes      = []string{string(bildrum.OutcomeBenign), string(bildrum.OutcomeDCIS), string(bildrum.OutcomeInvasive)}
	detections    = []string{string(bildrum.DetectedAtScreen), string(bildrum.DetectedInterval)}
	nodalStatuses = []string{bildrum.NodesNegative, bildrum.NodesPositive}
	stages        = []string{"0", "I", "II", "III", "IV"}
)

// maxIDLength bounds episode identifiers.
const maxIDLength = 64

// checkEpisodeID returns what is wrong with an episode identifier, or "".
func checkEpisodeID(id string) string {
	if id == "" {
		return "the episode id is missing: every row needs the id the region's system gives the invitation"
	}
	if len(id) > maxIDLength {
		return fmt.Sprintf("the episode id has %d characters: at most %d are allowed", len(id), maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Sprintf("the episode id %q has the character %q: use only letters A-Z, digits and - _ . :", id, rune(c))
		}
	}
	return ""
}

// checkText returns what is wrong with a short code such as a unit, or "".
func checkText(s string, max int) string {
	if s == "" {
		return "is missing"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("%q has %d characters: at most %d are allowed", s, n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("%q has a control character (such as a line break or tab): remove it", s)
		}
	}
	return ""
}

// parseBool reads 0 or 1.
func parseBool(rec []string, col int, p *problems) bool {
	switch v := rec[col]; v {
	case "1":
		return true
	case "0":
		return false
	default:
		if !p.bad[col] {
			if v == "" {
				p.add(col, "the value is missing: write 1 for yes or 0 for no")
			} else {
				p.add(col, "%q is not 0 or 1: write 1 for yes or 0 for no", v)
			}
		}
		return false
	}
}

// parseInt reads a whole number in [lo, hi]; an optional column may be
// empty (zero).
func (c *checker) parseInt(rec []string, col int, p *problems, lo, hi int, what string, required bool) int {
	v := rec[col]
	if p.bad[col] {
		return 0
	}
	if v == "" {
		if required {
			p.add(col, "the value is missing: give %s", what)
		}
		return 0
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' || i > 3 {
			p.add(col, "%q is not a whole number from %d to %d: give %s", v, lo, hi, what)
			return 0
		}
		n = n*10 + int(v[i]-'0')
	}
	if n < lo || n > hi {
		p.add(col, "%d is out of range: give %s, from %d to %d", n, what, lo, hi)
		return 0
	}
	return n
}

// parseBIRADS reads an optional BI-RADS category from 0 (1 for the
// assessment) to highest.
func parseBIRADS(rec []string, col int, p *problems, highest string) bildrum.BIRADS {
	v := rec[col]
	lowest := "0"
	if col == colAssessmentBIRADS {
		lowest = "1"
	}
	if v == "" || p.bad[col] {
		return ""
	}
	if len(v) != 1 || v < lowest || v > highest {
		p.add(col, "%q is not a BI-RADS category here: write one digit from %s to %s, or leave it empty", v, lowest, highest)
		return ""
	}
	return bildrum.BIRADS(v)
}

// parseCode reads an optional code from a list.
func parseCode(rec []string, col int, p *problems, codes []string, what string) string {
	v := rec[col]
	if v == "" || p.bad[col] {
		return ""
	}
	for _, c := range codes {
		if v == c {
			return c
		}
	}
	for _, c := range codes {
		if strings.EqualFold(v, c) {
			p.add(col, "%q must be written exactly %q", v, c)
			return ""
		}
	}
	p.add(col, "%q is not %s", v, what)
	return ""
}

// knownViews are the view codes of the views column: ImageLaterality and
// the view of ViewCodeSequence (CID 4014).
var knownViews = bildrum.StandardViews()

// parseViews reads views joined with '+'.
func parseViews(rec []string, p *problems) []string {
	v := rec[colViews]
	if v == "" || p.bad[colViews] {
		return nil
	}
	views := strings.Split(v, "+")
	for i, view := range views {
		known := false
		for _, k := range knownViews {
			known = known || view == k
		}
		if !known {
			p.add(colViews, "%q is not a view: write the views taken as RCC, LCC, RMLO and LMLO joined with +, such as RCC+LCC+RMLO+LMLO", view)
			return nil
		}
		for _, earlier := range views[:i] {
			if earlier == view {
				p.add(colViews, "the view %s is listed twice: list each view taken once", view)
				return nil
			}
		}
	}
	return views
}

// parseDate reads an optional date, which must be a real day not in the
// future.
func (c *checker) parseDate(rec []string, col int, p *problems) bildrum.Date {
	v := rec[col]
	if v == "" || p.bad[col] {
		return bildrum.Date{}
	}
	d, msg := parseDate(v)
	if msg != "" {
		p.add(col, "%s", msg)
		return bildrum.Date{}
	}
	if c.today.Before(d) {
		p.add(col, "%s is in the future (today is %s): check the year and the month", v, c.today)
		return bildrum.Date{}
	}
	return d
}

// parseDate reads YYYY-MM-DD strictly and says in words what is wrong.
func parseDate(s string) (bildrum.Date, string) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s[0:4]) || !digits(s[5:7]) || !digits(s[8:10]) {
		return bildrum.Date{}, fmt.Sprintf("%q is not a date written YYYY-MM-DD, such as 2024-03-15", s)
	}
	y, m, d := atoi(s[0:4]), atoi(s[5:7]), atoi(s[8:10])
	if y < 1900 {
		return bildrum.Date{}, fmt.Sprintf("%s: the year %d is not plausible in a screening register", s, y)
	}
	if m < 1 || m > 12 {
		return bildrum.Date{}, fmt.Sprintf("%s is not a real date: there is no month %d", s, m)
	}
	days := daysIn(time.Month(m), y)
	if d < 1 || d > days {
		return bildrum.Date{}, fmt.Sprintf("%s is not a real date: %s %d has %d days", s, time.Month(m), y, days)
	}
	return bildrum.Date{Year: y, Month: time.Month(m), Day: d}, ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// daysIn returns the number of days of the month.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
