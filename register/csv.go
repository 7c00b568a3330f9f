package register

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
)

// The columns of the register CSV, in their published order
// (docs/register.md). Their names are the JSON names of
// bildrum.ScreeningEpisode's fields.
const (
	colID = iota
	colPerson
	colRegion
	colUnit
	colRound
	colInvited
	colAttended
	colExamined
	colTechnicalRepeat
	colViews
	colReader1
	colReader2
	colConsensus
	colDensity
	colRecalled
	colResultDay
	colAssessed
	colAdditionalImaging
	colUltrasound
	colNeedleBiopsy
	colOpenBiopsy
	colAssessmentBIRADS
	colOutcome
	colDetection
	colDiagnosed
	colTumourSize
	colNodalStatus
	colStage
	colPreop
	colIntervalMonths
	numColumns
)

// columnNames are the header of the register CSV.
var columnNames = [numColumns]string{
	"id", "person_id", "region", "unit",
	"round", "invitation_date",
	"attended", "exam_date", "technical_repeat", "views",
	"reader1_birads", "reader2_birads", "consensus_birads", "density", "recalled", "result_date",
	"assessment_date", "additional_imaging", "ultrasound", "needle_biopsy", "open_surgical_biopsy", "assessment_birads",
	"outcome", "detection", "diagnosis_date", "tumour_size_mm", "nodal_status", "stage", "preoperative_diagnosis", "interval_months",
}

// CSVHeader returns the column names of the register CSV in their published
// order (docs/register.md): the JSON names of bildrum.ScreeningEpisode's
// fields, in field order. The caller may modify the slice.
func CSVHeader() []string {
	return append([]string(nil), columnNames[:]...)
}

// CSVRecord returns e as a record of the register CSV, in the order of
// CSVHeader: views joined with '+', booleans as 0 or 1, dates as YYYY-MM-DD
// or empty when not recorded, and optional numbers (tumour size, interval
// months) empty when zero. ImportCSV reads it back to the same episode.
func CSVRecord(e bildrum.ScreeningEpisode) []string {
	return appendRecord(make([]string, 0, numColumns), &e)
}

// appendRecord appends e's fields to rec, which CSVWriter reuses.
func appendRecord(rec []string, e *bildrum.ScreeningEpisode) []string {
	return append(rec,
		e.ID, string(e.Person), e.Region, e.Unit,
		strconv.Itoa(e.Round), e.Invited.String(),
		csvBool(e.Attended), e.Examined.String(), csvBool(e.TechnicalRepeat), strings.Join(e.Views, "+"),
		string(e.Reader1), string(e.Reader2), string(e.Consensus), string(e.Density), csvBool(e.Recalled), e.ResultDay.String(),
		e.Assessed.String(), csvBool(e.AdditionalImaging), csvBool(e.Ultrasound), csvBool(e.NeedleBiopsy), csvBool(e.OpenBiopsy), string(e.AssessmentBIRADS),
		string(e.Outcome), string(e.Detection), e.Diagnosed.String(), csvOptionalInt(e.TumourSizeMM), e.NodalStatus, e.Stage, csvBool(e.PreopDiagnosis), csvOptionalInt(e.IntervalMonths),
	)
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

// CSVWriter writes episodes as a register CSV, one at a time, for writers
// that interleave several files (synth writes one per region). It buffers:
// call Flush at the end. WriteCSV is the simpler form for one sequence.
type CSVWriter struct {
	buf *bufio.Writer
	w   *csv.Writer
	rec []string
}

// NewCSVWriter writes the header to w and returns a writer of rows.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	buf := bufio.NewWriterSize(w, 1<<16)
	c := &CSVWriter{buf: buf, w: csv.NewWriter(buf), rec: make([]string, 0, numColumns)}
	if err := c.w.Write(columnNames[:]); err != nil {
		return nil, fmt.Errorf("register csv: header: %w", err)
	}
	return c, nil
}

// Write writes one episode as a row.
func (c *CSVWriter) Write(e bildrum.ScreeningEpisode) error {
	c.rec = appendRecord(c.rec[:0], &e)
	if err := c.w.Write(c.rec); err != nil {
		return fmt.Errorf("register csv: episode %s: %w", e.ID, err)
	}
	return nil
}

// Flush writes buffered rows to the underlying writer and reports the first
// error of any Write or Flush.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("register csv: %w", err)
	}
	if err := c.buf.Flush(); err != nil {
		return fmt.Errorf("register csv: %w", err)
	}
	return nil
}

// WriteCSV writes the episodes as a register CSV, header first, in exactly
// the format ImportCSV reads, so an export re-imports unchanged. It stops at
// the first error, of the sequence or of w, and returns it; rows written
// before it have been flushed to w.
func WriteCSV(w io.Writer, episodes iter.Seq2[bildrum.ScreeningEpisode, error]) error {
	c, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	for e, err := range episodes {
		if err != nil {
			return errors.Join(fmt.Errorf("register csv: %w", err), c.Flush())
		}
		if err := c.Write(e); err != nil {
			return err
		}
	}
	return c.Flush()
}
