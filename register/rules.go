package register

import (
	"strings"

	"github.com/bildrum/bildrum"
)

// The consistency rules between the columns of one row, as docs/register.md
// lists them. Each rule reads only columns that parsed, so one typing error
// gives one message, not a cascade.

// Columns that only an attended examination fills in.
var examColumns = []int{colExamined, colTechnicalRepeat, colViews, colReader1, colReader2, colConsensus, colDensity, colRecalled, colResultDay}

// Columns that only an assessment after recall fills in.
var assessmentColumns = []int{colAssessed, colAdditionalImaging, colUltrasound, colNeedleBiopsy, colOpenBiopsy, colAssessmentBIRADS}

// Columns that only a diagnosis fills in.
var diagnosisColumns = []int{colDetection, colDiagnosed, colTumourSize, colNodalStatus, colStage, colPreop, colIntervalMonths}

// Columns that only a cancer fills in.
var cancerColumns = []int{colTumourSize, colNodalStatus, colStage, colPreop}

// filled reports whether the column holds a value: not empty, not 0 for a
// yes/no column.
func filled(e *bildrum.ScreeningEpisode, col int) bool {
	switch col {
	case colExamined:
		return !e.Examined.IsZero()
	case colTechnicalRepeat:
		return e.TechnicalRepeat
	case colViews:
		return len(e.Views) > 0
	case colReader1:
		return e.Reader1 != ""
	case colReader2:
		return e.Reader2 != ""
	case colConsensus:
		return e.Consensus != ""
	case colDensity:
		return e.Density != ""
	case colRecalled:
		return e.Recalled
	case colResultDay:
		return !e.ResultDay.IsZero()
	case colAssessed:
		return !e.Assessed.IsZero()
	case colAdditionalImaging:
		return e.AdditionalImaging
	case colUltrasound:
		return e.Ultrasound
	case colNeedleBiopsy:
		return e.NeedleBiopsy
	case colOpenBiopsy:
		return e.OpenBiopsy
	case colAssessmentBIRADS:
		return e.AssessmentBIRADS != ""
	case colDetection:
		return e.Detection != ""
	case colDiagnosed:
		return !e.Diagnosed.IsZero()
	case colTumourSize:
		return e.TumourSizeMM != 0
	case colNodalStatus:
		return e.NodalStatus != ""
	case colStage:
		return e.Stage != ""
	case colPreop:
		return e.PreopDiagnosis
	case colIntervalMonths:
		return e.IntervalMonths != 0
	}
	return false
}

// checkRules applies the consistency rules to a parsed row.
func (c *checker) checkRules(e *bildrum.ScreeningEpisode, p *problems) {
	checkPerson(e, p)
	checkAttendance(e, p)
	checkAssessment(e, p)
	checkDiagnosis(e, p)
}

// checkPerson keeps the woman's number out of the id and her invitations
// after her birth.
func checkPerson(e *bildrum.ScreeningEpisode, p *problems) {
	if !p.ok(colID, colPerson) || e.ID == "" || e.Person == "" {
		return
	}
	if containsNumber(e.ID, string(e.Person[2:])) {
		p.add(colID, "the episode id contains the woman's personnummer: an id must not reveal who she is; use the invitation's id in the region's system")
	}
	birth := bildrum.DateOf(e.Person.BirthDate())
	if p.ok(colInvited) && !e.Invited.IsZero() && e.Invited.Before(birth) {
		p.add(colInvited, "the invitation date %s is before the woman's birth on %s (from person_id): check both", e.Invited, birth)
	}
}

// containsNumber reports whether id holds the ten digits of a number,
// also when written with '-' or '+' among them.
func containsNumber(id, digits string) bool {
	if strings.Contains(id, digits) {
		return true
	}
	if !strings.ContainsAny(id, "-+") {
		return false
	}
	stripped := make([]byte, 0, len(id))
	for i := 0; i < len(id); i++ {
		if id[i] != '-' && id[i] != '+' {
			stripped = append(stripped, id[i])
		}
	}
	return strings.Contains(string(stripped), digits)
}

// checkAttendance: the examination's columns only when she attended, and
// then its date and views; its dates in order.
func checkAttendance(e *bildrum.ScreeningEpisode, p *problems) {
	if !p.ok(colAttended) {
		return
	}
	if !e.Attended {
		for _, col := range examColumns {
			if !p.ok(col) || !filled(e, col) {
				continue
			}
			if col == colRecalled {
				p.add(col, "recalled is 1 but attended is 0: only a woman who was examined can be recalled")
				continue
			}
			p.add(col, "%s is filled in but attended is 0: leave the examination's columns empty (0 for yes/no) when she did not attend, or set attended to 1", columnNames[col])
		}
		return
	}
	if p.ok(colExamined) && e.Examined.IsZero() {
		p.add(colExamined, "the exam date is missing but attended is 1: give the day she was examined, as YYYY-MM-DD")
	}
	if p.ok(colViews) && len(e.Views) == 0 {
		p.add(colViews, "no views are listed but attended is 1: list the views taken, such as RCC+LCC+RMLO+LMLO")
	}
	if p.ok(colInvited, colExamined) && !e.Examined.IsZero() && e.Examined.Before(e.Invited) {
		p.add(colExamined, "the exam date %s is before the invitation date %s: the examination follows its invitation", e.Examined, e.Invited)
	}
	if p.ok(colExamined, colResultDay) && !e.ResultDay.IsZero() && !e.Examined.IsZero() && e.ResultDay.Before(e.Examined) {
		p.add(colResultDay, "the result date %s is before the exam date %s: the result is sent after the examination", e.ResultDay, e.Examined)
	}
	if p.ok(colRecalled, colConsensus) && e.Recalled && e.Consensus == "" {
		p.add(colConsensus, "the consensus BI-RADS is missing but recalled is 1: give the consensus that led to the recall")
	}
}

// checkAssessment: the assessment's columns only after a recall, with its
// date, on or after the examination.
func checkAssessment(e *bildrum.ScreeningEpisode, p *problems) {
	if !p.ok(colRecalled) {
		return
	}
	if !e.Recalled {
		for _, col := range assessmentColumns {
			if p.ok(col) && filled(e, col) {
				p.add(col, "%s is filled in but recalled is 0: the assessment's columns are only for a woman recalled after her screen", columnNames[col])
			}
		}
		return
	}
	if p.ok(colAssessed) && e.Assessed.IsZero() {
		for _, col := range assessmentColumns[1:] {
			if p.ok(col) && filled(e, col) {
				p.add(colAssessed, "the assessment date is missing but %s is given: give the day of the assessment", columnNames[col])
				break
			}
		}
	}
	if p.ok(colAssessed, colExamined) && !e.Assessed.IsZero() && !e.Examined.IsZero() && e.Assessed.Before(e.Examined) {
		p.add(colAssessed, "the assessment date %s is before the exam date %s: the assessment follows the screen", e.Assessed, e.Examined)
	}
}

// checkDiagnosis: the diagnosis's columns only with an outcome, and fitting
// it; a screen-detected cancer after a recall, an interval cancer after an
// attended screen; the diagnosis on or after the examination.
func checkDiagnosis(e *bildrum.ScreeningEpisode, p *problems) {
	if !p.ok(colOutcome) {
		return
	}
	if e.Outcome == bildrum.OutcomeNone {
		for _, col := range diagnosisColumns {
			if p.ok(col) && filled(e, col) {
				p.add(col, "%s is filled in but outcome is empty: give the outcome (benign, dcis or invasive), or leave the diagnosis's columns empty", columnNames[col])
			}
		}
		return
	}
	if p.ok(colDiagnosed) && e.Diagnosed.IsZero() {
		p.add(colDiagnosed, "the diagnosis date is missing: an outcome needs the day of diagnosis, as YYYY-MM-DD")
	}
	switch e.Outcome {
	case bildrum.OutcomeBenign:
		checkBenign(e, p)
	case bildrum.OutcomeDCIS, bildrum.OutcomeInvasive:
		checkCancer(e, p)
	}
	checkDiagnosisDates(e, p)
}

// checkBenign: a benign diagnosis is of a finding after recall, and has none
// of a cancer's columns.
func checkBenign(e *bildrum.ScreeningEpisode, p *problems) {
	if p.ok(colDetection) && e.Detection != "" {
		p.add(colDetection, "the outcome is benign, which is not a cancer: leave detection empty")
	}
	if p.ok(colRecalled) && !e.Recalled {
		p.add(colOutcome, "the outcome is benign but recalled is 0: a benign diagnosis is of a finding at screen, after a recall")
	}
	for _, col := range cancerColumns {
		if p.ok(col) && filled(e, col) {
			p.add(col, "%s is only for cancers, but the outcome is benign: leave it empty", columnNames[col])
		}
	}
}

// checkCancer: how it was found, and the tumour's columns fitting DCIS or an
// invasive cancer.
func checkCancer(e *bildrum.ScreeningEpisode, p *problems) {
	if p.ok(colDetection) {
		switch e.Detection {
		case "":
			p.add(colDetection, "the detection is missing: write screen (found after recall) or interval (found between screens)")
		case bildrum.DetectedAtScreen:
			if p.ok(colRecalled) && !e.Recalled {
				p.add(colDetection, "detection is screen but recalled is 0: a screen-detected cancer is found after a recall")
			}
		case bildrum.DetectedInterval:
			if p.ok(colAttended) && !e.Attended {
				p.add(colDetection, "detection is interval but attended is 0: an interval cancer follows a screen she attended")
			}
			if p.ok(colIntervalMonths) && e.IntervalMonths == 0 {
				p.add(colIntervalMonths, "interval_months is missing: give the whole months from the exam date to the diagnosis")
			}
		}
	}
	if e.Outcome == bildrum.OutcomeDCIS {
		if p.ok(colTumourSize) && e.TumourSizeMM != 0 {
			p.add(colTumourSize, "the tumour size is of an invasive component, but the outcome is dcis: leave it empty")
		}
		if p.ok(colNodalStatus) && e.NodalStatus != "" {
			p.add(colNodalStatus, "the nodal status is recorded for invasive cancers, but the outcome is dcis: leave it empty")
		}
		if p.ok(colStage) && e.Stage != "" && e.Stage != "0" {
			p.add(colStage, "stage %s does not fit the outcome dcis: write 0 or leave it empty", e.Stage)
		}
	} else if p.ok(colStage) && e.Stage == "0" {
		p.add(colStage, "stage 0 is DCIS, but the outcome is invasive: write I, II, III or IV")
	}
}

// checkDiagnosisDates: the diagnosis after the screen (or the invitation),
// and interval months only for interval cancers and agreeing with the dates.
func checkDiagnosisDates(e *bildrum.ScreeningEpisode, p *problems) {
	if p.ok(colIntervalMonths, colDetection) && e.IntervalMonths != 0 && e.Detection != bildrum.DetectedInterval {
		p.add(colIntervalMonths, "interval_months is only for interval cancers (detection = interval): leave it empty")
	}
	if !p.ok(colDiagnosed) || e.Diagnosed.IsZero() {
		return
	}
	switch {
	case p.ok(colExamined) && !e.Examined.IsZero():
		if e.Diagnosed.Before(e.Examined) {
			p.add(colDiagnosed, "the diagnosis date %s is before the exam date %s: the diagnosis follows the screen", e.Diagnosed, e.Examined)
			return
		}
	case p.ok(colInvited) && !e.Invited.IsZero():
		if e.Diagnosed.Before(e.Invited) {
			p.add(colDiagnosed, "the diagnosis date %s is before the invitation date %s", e.Diagnosed, e.Invited)
			return
		}
	}
	if e.Detection == bildrum.DetectedInterval && e.IntervalMonths != 0 && p.ok(colIntervalMonths, colExamined) && !e.Examined.IsZero() {
		m := wholeMonths(e.Examined, e.Diagnosed)
		if e.IntervalMonths < m-1 || e.IntervalMonths > m+1 {
			p.add(colIntervalMonths, "interval_months is %d, but from the exam date %s to the diagnosis date %s are %d whole months", e.IntervalMonths, e.Examined, e.Diagnosed, m)
		}
	}
}

// wholeMonths returns the number of whole calendar months from a to b.
func wholeMonths(a, b bildrum.Date) int {
	m := (b.Year-a.Year)*12 + int(b.Month) - int(a.Month)
	if b.Day < a.Day {
		m--
	}
	return m
}
