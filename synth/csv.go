package synth

// The register's CSV encoding. It lives here until a register package owns
// it; it depends on nothing else in this package so that it can move as is.

import (
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
)

// EpisodeCSVHeader returns the column names of the register CSV: the JSON
// names of bildrum.ScreeningEpisode's fields, in field order.
func EpisodeCSVHeader() []string {
	return []string{
		"id", "person_id", "region", "unit",
		"round", "invitation_date",
		"attended", "exam_date", "technical_repeat", "views",
		"reader1_birads", "reader2_birads", "consensus_birads", "density", "recalled", "result_date",
		"assessment_date", "additional_imaging", "ultrasound", "needle_biopsy", "open_surgical_biopsy", "assessment_birads",
		"outcome", "detection", "diagnosis_date", "tumour_size_mm", "nodal_status", "stage", "preoperative_diagnosis", "interval_months",
	}
}

// EpisodeCSVRecord returns e as a CSV record in the order of
// EpisodeCSVHeader: views joined with '+', booleans as 0 or 1, dates as
// YYYY-MM-DD or empty when not recorded, and optional numbers (tumour size,
// interval months) empty when zero.
func EpisodeCSVRecord(e bildrum.ScreeningEpisode) []string {
	return []string{
		e.ID, string(e.Person), e.Region, e.Unit,
		strconv.Itoa(e.Round), e.Invited.String(),
		csvBool(e.Attended), e.Examined.String(), csvBool(e.TechnicalRepeat), strings.Join(e.Views, "+"),
		string(e.Reader1), string(e.Reader2), string(e.Consensus), string(e.Density), csvBool(e.Recalled), e.ResultDay.String(),
		e.Assessed.String(), csvBool(e.AdditionalImaging), csvBool(e.Ultrasound), csvBool(e.NeedleBiopsy), csvBool(e.OpenBiopsy), string(e.AssessmentBIRADS),
		string(e.Outcome), string(e.Detection), e.Diagnosed.String(), csvOptionalInt(e.TumourSizeMM), e.NodalStatus, e.Stage, csvBool(e.PreopDiagnosis), csvOptionalInt(e.IntervalMonths),
	}
}

// csvBool writes a boolean as 1 or 0.
func csvBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// csvOptionalInt writes zero as an empty field.
func csvOptionalInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
